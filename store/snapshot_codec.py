"""How a snapshot's canonical JSON is stored in Redis: deflated with a preset dictionary.

A stored snapshot is one byte naming the dictionary, then a raw deflate stream made with
it. Most of an order's bytes are its keys and structure, the same in every order; a
dictionary that holds them lets even the first occurrence be a back-reference.

A dictionary file never changes once snapshots were written with it (`sha256` pins it);
a better one gets a new id, and `WRITE_WITH` moves to it. Pure, and cheap: compressing a
1.5 kB order takes about as long as a plain `zlib.compress(body, 1)`, and happens only
when a snapshot is written (a change, a baseline); decompression only when an old
snapshot is diffed.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from dataclasses import dataclass
from importlib import resources

__all__ = ["DICTIONARIES", "WRITE_WITH", "Dictionary", "UnknownDictionary", "pack", "unpack"]

LEVEL = 6
"""zlib's default: level 9 gives the same size on orders, and costs more on big snapshots."""
WBITS = -15
"""Raw deflate with a 32 kB window: no zlib header or checksum (the prefix names the dictionary)."""


@dataclass(frozen=True, slots=True)
class Dictionary:
    id: int
    file: str
    sha256: str


DICTIONARIES: dict[int, Dictionary] = {
    d.id: d
    for d in (
        Dictionary(1, "001-artistree.zdict", "f6b92e6fda9480a34852771e7c4a33e916ba156da194bd6abec0370a1e8e3551"),
    )
}
WRITE_WITH = 1
"""The dictionary new snapshots are written with."""


class UnknownDictionary(ValueError):
    """A stored snapshot names a dictionary this statehook does not have."""


@functools.cache
def dictionary(dict_id: int) -> bytes:
    """The bytes of dictionary `dict_id`, checked against its pinned digest."""
    d = DICTIONARIES.get(dict_id)
    if d is None:
        known = ", ".join(str(i) for i in sorted(DICTIONARIES))
        raise UnknownDictionary(
            f"snapshot written with dictionary {dict_id}, which this statehook does not have "
            f"(it knows {known}); was it written by a newer version?"
        )
    data = resources.files("store.snapshot_dicts").joinpath(d.file).read_bytes()
    if hashlib.sha256(data).hexdigest() != d.sha256:
        raise RuntimeError(f"snapshot dictionary {d.file} is not the one snapshots were written with")
    return data


def pack(canonical: bytes, dict_id: int = WRITE_WITH) -> bytes:
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, WBITS, zdict=dictionary(dict_id))
    return bytes((dict_id,)) + c.compress(canonical) + c.flush()


def unpack(raw: bytes) -> bytes:
    """The canonical JSON of a stored snapshot, with the dictionary its first byte names."""
    if not raw:
        raise ValueError("empty snapshot")
    d = zlib.decompressobj(WBITS, zdict=dictionary(raw[0]))
    out = d.decompress(raw[1:]) + d.flush()
    if not d.eof:
        raise ValueError(f"truncated snapshot (dictionary {raw[0]})")
    return out


assert all(0 < i < 256 for i in DICTIONARIES)
