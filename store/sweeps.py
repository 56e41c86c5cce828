"""A scan's sweeps as stored: `sh:sweep:cur:{scan}` (the sweep in progress) and
`sh:sweep:prev:{scan}` (the last full one) are LISTs with one entry per listed page, the
page's rkeys joined by newlines, as lua/match_listed.lua appends them with no work of its
own (a page's 1,000 SADD members cost Redis ~1.3 ms and the worker the packing of 1,000
arguments). An entry of rkeys one of which holds a newline is their JSON array instead
(it starts with `[`, which no rkey does: an rkey starts with its provider's name). The
difference of two sweeps is taken by the worker at the sweep's end (`unlisted`). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import orjson

__all__ = ["entry", "members", "unlisted"]


def entry(rkeys: Sequence[str]) -> str:
    """One LIST entry holding `rkeys`."""
    if any("\n" in k for k in rkeys):
        return orjson.dumps(list(rkeys)).decode()
    return "\n".join(rkeys)


def members(entries: Iterable[bytes]) -> Iterator[bytes]:
    """The rkeys (as bytes) of the entries of one sweep."""
    for e in entries:
        if e[:1] == b"[":
            yield from (k.encode() for k in orjson.loads(e))
        elif e:
            yield from e.split(b"\n")


def unlisted(prev: Iterable[bytes], cur: Iterable[bytes], kept: str) -> list[str]:
    """Members of the last full sweep (entries `prev`) that the one in progress (`cur`) did
    not list, sorted: rkeys, and rkeys kept from a sweep before (`kept` + rkey) whose rkey
    it did not list either. A page listed as it was in the last sweep is one equal entry in
    both: only the entries of `prev` that `cur` does not hold are taken apart."""
    cur = list(cur)
    same = set(cur)
    changed = [e for e in prev if e not in same]
    if not changed:
        return []
    listed = set(members(cur))
    mark = kept.encode()
    out: set[bytes] = set()
    for m in members(changed):
        if m not in listed and not (m.startswith(mark) and m[len(mark):] in listed):
            out.add(m)
    return sorted(m.decode(errors="replace") for m in out)
