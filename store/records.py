"""The records a poll reads and writes of each resource, with their one codec each.

A resource's **state** (`sh:state[rkey]`, `core.state.ResourceState`) is the commit
guard: the commit script compares the stored string with the one the poll read, whole,
and a listing compares a fingerprint with the record's tokens, whole
(lua/commit_poll.lua, lua/match_listed.lua). Neither Lua script reads a field by its position, so a new field
is added in `core.state.ResourceState`, then here: `encode_state` and `decode_state`.

Stored form: `digest|seq|changed_at`, then `|preview` when there is one, then `|t` or `|o`
once a poll recorded whether the resource is terminal (`|preview|t` with an empty
preview is possible). A record that tracks stalls (core/stall.py) always has all of it and
two fields more: `digest|seq|changed_at|preview|flag|entered_at|stall`, where the flag may
be empty and `stall` is `~<when>` (armed), `!` (fired for this entry into the state) or `-`
(no stall time applies). No other field can hold `~`, `!` or `-` (digests and fingerprints
are hex, with an `l` in front), so lua/match_listed.lua finds the armed token as `|~`
without counting fields. A record without these fields (written before) reads with
`entered_at` None. Every form the current code writes reads back to the same string.

A **watch** (`sh:meta[rkey]`, `WatchMeta`) is JSON holding only what differs from the
defaults: `{"i":60.0}` for a plain watch; `d` (discovered) only when true, `s` (the scan
filter) only when there is one, `src` only when it is not "api", `st` (the watch's stall
times, seconds by state) only when the watch sets them.
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
    if state.entered_at is not None:
        flag = "" if state.terminal is None else _TERMINAL[state.terminal]
        return f"{base}|{state.preview}|{flag}|{int(state.entered_at)}|{_stall_token(state)}"
    if state.terminal is not None:
        return f"{base}|{state.preview}|{_TERMINAL[state.terminal]}"
    return f"{base}|{state.preview}" if state.preview else base


def _stall_token(state: ResourceState) -> str:
    if state.stalled:
        return "!"
    return "-" if state.stall_at is None else f"~{int(state.stall_at)}"


def decode_state(raw: bytes | str | None, key: str = keys.STATE) -> ResourceState | None:
    """None for no record; raises CorruptRecord (naming `key`) for a value that is not one,
    and for one that `encode_state` would not write back the same (`|01|`, a fractional
    time, a trailing `|`): the commit compares the stored string with the one encoded from
    what was read, so such a record would refuse every commit of its resource for good."""
    if not raw:
        return None
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        digest, seq, changed_at, *rest = text.split("|")
        terminal = _TERMINAL_FLAGS.get(rest[1]) if len(rest) > 1 else None
        entered_at, stall_at, stalled = _stall_fields(rest[2:])
        state = ResourceState(digest, int(seq), float(changed_at), rest[0] if rest else "", terminal,
                              entered_at, stall_at, stalled)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptRecord(key, f"not a state token: {type(exc).__name__}") from None
    if not digest or state.seq < 0 or not math.isfinite(state.changed_at):
        raise CorruptRecord(key, "not a state token")
    if encode_state(state) != text:
        raise CorruptRecord(key, "not a state token as statehook writes it")
    return state


def _stall_fields(fields: list[str]) -> tuple[float | None, float | None, bool]:
    """entered_at, stall_at, stalled of a record's last two fields (none: an older record)."""
    if not fields:
        return None, None, False
    entered, token = fields  # ValueError when there are not exactly two
    if not entered.isdigit():
        raise ValueError("entered_at")
    if token == "!":
        return float(entered), None, True
    if token == "-":
        return float(entered), None, False
    if token[:1] == "~" and token[1:].isdigit():
        return float(entered), float(token[1:]), False
    raise ValueError("stall")


# ---- a watch ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchMeta:
    interval: float
    discovered: bool = False
    scan: dict[str, str] | None = None
    source: str = "api"
    stall_after: dict[str, float] | None = None

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
    if meta.stall_after is not None:
        d["st"] = meta.stall_after
    return orjson.dumps(d)


def decode_meta(raw: bytes | str | None, key: str = keys.META) -> WatchMeta | None:
    """None for no record; raises CorruptRecord (naming `key`) for a value that is not a
    watch, or that spells out a default (`encode_meta` never writes one)."""
    if not raw:
        return None
    try:
        d = orjson.loads(raw)
        interval = float(d["i"])
        discovered, scan, source, stall = d.get("d", True), d.get("s", {}), d.get("src", ""), d.get("st", {})
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
    if not (isinstance(stall, dict) and all(_stall_seconds(v) for v in stall.values())):
        raise CorruptRecord(key, "not a watch: its stall times are not a table of durations")
    return WatchMeta(interval=interval, discovered="d" in d, scan=scan if "s" in d else None,
                     source=source if "src" in d else "api",
                     stall_after={k: float(v) for k, v in stall.items()} if "st" in d else None)


def _stall_seconds(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            and 0 <= value <= MAX_DURATION)
