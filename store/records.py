"""The records a poll reads and writes of each resource, with their one codec each.

A resource's **state** (`sh:state[rkey]`, `core.state.ResourceState`) is the commit
guard: the commit script compares the stored string with the one the poll read, whole,
and a listing compares a fingerprint with the record's tokens, whole
(lua/commit_poll.lua, lua/match_listed.lua). Neither Lua script reads a field by its position, so a new field
is added in `core.state.ResourceState`, then here: `encode_state` and `decode_state`.

Stored form: `digest|seq|changed_at`, then `|preview` when there is one, then `|t` or `|o`
once a poll recorded whether the resource is terminal (`|preview|t` with an empty
preview is possible). Every form the current code writes reads back to the same string.

A **watch** (`sh:meta[rkey]`, `WatchMeta`) is JSON holding only what differs from the
defaults: `{"i":60.0}` for a plain watch; `d` (discovered) only when true, `s` (the scan
filter) only when there is one, `src` only when it is not "api".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from core.state import ResourceState
from model.values import MAX_DURATION, MIN_DURATION
from store import keys

__all__ = ["CorruptRecord", "ResourceState", "WatchMeta", "decode_meta", "decode_state", "encode_meta",
           "encode_state"]


class CorruptRecord(ValueError):
    """A stored value that cannot be read (written by hand, by another program, or damaged)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


# ---- a resource's state -----------------------------------------------------------------

_TERMINAL = {True: "t", False: "o"}
_TERMINAL_FLAGS = {"t": True, "o": False}


def encode_state(state: ResourceState) -> str:
    base = f"{state.digest}|{state.seq}|{int(state.changed_at)}"
    if state.terminal is not None:
        return f"{base}|{state.preview}|{_TERMINAL[state.terminal]}"
    return f"{base}|{state.preview}" if state.preview else base


def decode_state(raw: bytes | str | None, key: str = keys.STATE) -> ResourceState | None:
    """None for no record; raises CorruptRecord (naming `key`) for a value that is not one."""
    if not raw:
        return None
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        digest, seq, changed_at, *rest = text.split("|")
        terminal = _TERMINAL_FLAGS.get(rest[1]) if len(rest) > 1 else None
        state = ResourceState(digest, int(seq), float(changed_at), rest[0] if rest else "", terminal)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptRecord(key, f"not a state token: {type(exc).__name__}") from None
    if not digest or state.seq < 0 or not math.isfinite(state.changed_at):
        raise CorruptRecord(key, "not a state token")
    return state


# ---- a watch ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchMeta:
    interval: float
    discovered: bool = False
    scan: dict[str, str] | None = None
    source: str = "api"

    def to_json(self) -> bytes:
        """The stored form (`encode_meta`)."""
        return encode_meta(self)

    @classmethod
    def from_json(cls, raw: bytes | str | None, key: str = keys.META) -> WatchMeta | None:
        """The watch stored as `raw` (`decode_meta`)."""
        return decode_meta(raw, key)


def encode_meta(meta: WatchMeta) -> bytes:
    """Only what differs from the defaults: 10 bytes for a plain watch, in every watched
    resource's field."""
    d: dict[str, Any] = {"i": meta.interval}
    if meta.discovered:
        d["d"] = True
    if meta.scan is not None:
        d["s"] = meta.scan
    if meta.source != "api":
        d["src"] = meta.source
    return orjson.dumps(d)


def decode_meta(raw: bytes | str | None, key: str = keys.META) -> WatchMeta | None:
    """None for no record; raises CorruptRecord (naming `key`) for a value that is not a
    watch, or that spells out a default (`encode_meta` never writes one)."""
    if not raw:
        return None
    try:
        d = orjson.loads(raw)
        interval = float(d["i"])
        discovered, scan, source = d.get("d", True), d.get("s", {}), d.get("src", "")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptRecord(key, f"not a watch: {type(exc).__name__}") from None
    if not (math.isfinite(interval) and MIN_DURATION <= interval <= MAX_DURATION):
        raise CorruptRecord(key, "not a watch: its interval is out of bounds")
    if discovered is not True:
        raise CorruptRecord(key, "not a watch: discovered is stored only when true")
    if not (isinstance(scan, dict) and all(isinstance(v, str) for v in scan.values())):
        raise CorruptRecord(key, "not a watch: its scan is not a table of strings")
    if not isinstance(source, str) or source == "api":
        raise CorruptRecord(key, "not a watch: its source is not a string other than the default")
    return WatchMeta(interval=interval, discovered="d" in d, scan=scan if "s" in d else None,
                     source=source if "src" in d else "api")
