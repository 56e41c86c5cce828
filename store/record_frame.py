"""What a resource's snapshot key holds: its packed snapshot and its timeline, one string.

Two forms, told apart by the first byte:

- plain: the packed snapshot alone (store/snapshot_codec.py: its first byte names a
  dictionary, never 0). A resource written so has no timeline here; one written before the
  timeline moved into the record may still have it in the list `keys.old_timeline(rkey)`,
  which the next write of an entry moves in (store/lua/_record.lua).
- framed: byte 0, the packed snapshot's length (4 bytes, big-endian; 0 for none), the packed
  snapshot, then the timeline's entries newest first, each its length (4 bytes) and bytes.

One key per resource instead of two: a timeline's first entry cost ~380 bytes as a list of
its own, and ~130 inside the record (docs/performance.md). Redis writes the record
(store/lua/_record.lua, included by every script that writes a timeline); this module reads
it, and writes it for tests and loaders. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MARK", "Record", "join", "snapshot_of", "split"]

MARK = 0
"""The first byte of the framed form (no dictionary has id 0)."""
_LEN = 4


@dataclass(frozen=True, slots=True)
class Record:
    snapshot: bytes | None
    """packed (store/history.py); None: the record holds no snapshot (a subject that is not a
    polled resource, as a provider, has a timeline only)"""
    entries: list[bytes]
    """the timeline, newest first"""
    framed: bool
    """False: the plain form, whose older timeline may be in the old list"""


def join(snapshot: bytes | None, entries: Sequence[bytes]) -> bytes:
    """The stored form of a snapshot and its timeline (newest first): plain without entries."""
    if not entries:
        if not snapshot:
            raise ValueError("a record holds a snapshot or a timeline")
        return snapshot
    snap = snapshot or b""
    parts = [bytes((MARK,)), len(snap).to_bytes(_LEN, "big"), snap]
    for entry in entries:
        parts += [len(entry).to_bytes(_LEN, "big"), entry]
    return b"".join(parts)


def snapshot_of(raw: bytes) -> bytes | None:
    """The packed snapshot alone (what a diff reads), without copying the timeline's entries.
    Raises ValueError for a framed value whose snapshot is cut short."""
    if not raw or raw[0] != MARK:
        return raw or None
    return raw[1 + _LEN : _snapshot_end(raw)] or None


def split(raw: bytes) -> Record:
    """Raises ValueError for a framed value whose lengths do not add up."""
    if not raw or raw[0] != MARK:
        return Record(raw or None, [], framed=False)
    size, pos = len(raw), _snapshot_end(raw)
    snapshot = raw[1 + _LEN : pos] or None
    entries = []
    while pos < size:
        n = _length(raw, pos)
        start, pos = pos + _LEN, pos + _LEN + n
        if pos > size:
            raise ValueError("record: timeline entry cut short")
        entries.append(raw[start:pos])
    return Record(snapshot, entries, framed=True)


def _snapshot_end(raw: bytes) -> int:
    """Where a framed value's snapshot ends (its timeline begins)."""
    end = 1 + _LEN + _length(raw, 1)
    if end > len(raw):
        raise ValueError("record: snapshot cut short")
    return end


def _length(raw: bytes, pos: int) -> int:
    if pos + _LEN > len(raw):
        raise ValueError("record: length cut short")
    return int.from_bytes(raw[pos : pos + _LEN], "big")
