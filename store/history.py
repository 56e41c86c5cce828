"""A resource's stored snapshot and its timeline entries: how each is written and read. Pure."""

from __future__ import annotations

import calendar
import re
import time
from typing import Any

import orjson

from core.events import event_id, utc_iso
from model.events import Event
from model.resources import Snapshot
from store import record_frame, snapshot_codec
from store.records import CorruptRecord

__all__ = ["NOTE_KINDS", "history_entry", "note_entry", "pack_snapshot", "read_history_entry", "unpack_snapshot"]

NOTE_KINDS = ("silenced", "acknowledged", "reminder", "replayed")
"""What a timeline note records besides the resource's events (`note_entry`)."""


def pack_snapshot(canonical_bytes: bytes) -> bytes:
    """What a snapshot's key holds (`store.snapshot_codec`: deflated with a preset dictionary)."""
    return snapshot_codec.pack(canonical_bytes)


def unpack_snapshot(raw: bytes | None, key: str = "snapshot") -> Snapshot | None:
    """The snapshot of a resource's record as stored (store/record_frame.py; None for none).
    Raises CorruptRecord (naming `key`) for a value that is not a record with a packed snapshot."""
    if raw is None:
        return None
    try:
        packed = record_frame.snapshot_of(raw)
        if packed is None:
            return None
        snap: Snapshot = orjson.loads(snapshot_codec.unpack(packed))
    except Exception as exc:  # zlib.error, a JSON error, a codec's own check: all one thing here
        raise CorruptRecord(key, f"not a snapshot: {type(exc).__name__}") from None
    if not isinstance(snap, dict):
        raise CorruptRecord(key, "not a snapshot: not an object")
    return snap


_ID_PREFIX = "evt_"
_HEX_ID = re.compile(r"evt_[0-9a-f]+")
"""an id `history_entry` stores without its prefix (digests' `dig_…`, summaries' `win_…` and
imported ids are stored whole)"""
_HEX = re.compile(r"[0-9a-f]+")


def _type_prefix(rkey: str) -> str:
    """What the types of `rkey`'s events begin with: its provider and kind ("rev.order.")."""
    provider, kind, *_ = [*rkey.split(":", 2), "", ""]
    return f"{provider}.{kind}."


def history_entry(rkey: str, event: Event) -> bytes:
    """A resource's timeline entry for `event`, as its record stores it: the JSON array
    `[seq, at, type, severity, summary, id]`, `at` in epoch seconds (or the event's own
    text when it is not a whole second in UTC). What the rkey already says is left out:
    a type that begins with the resource's provider and kind keeps only the rest, from
    its dot (".state_changed"), and an event id its hex (without "evt_"; other ids are
    kept whole); `read_history_entry` puts both back."""
    at: int | str = event.detected_at
    try:
        epoch = calendar.timegm(time.strptime(event.detected_at, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        pass
    else:
        if utc_iso(epoch) == event.detected_at:
            at = epoch
    prefix = _type_prefix(rkey)
    event_type = event.type[len(prefix) - 1:] if event.type.startswith(prefix) else event.type
    eid = event.id.removeprefix(_ID_PREFIX) if _HEX_ID.fullmatch(event.id) else event.id
    return orjson.dumps([event.seq, at, event_type, event.severity.value, event.summary, eid])


def note_entry(kind: str, at: float, summary: str, *, seq: int, event_id: str, data: dict[str, Any]) -> bytes:
    """A timeline entry that is not an event of its own: something done to or about one (an
    event muted by a silence, an acknowledgement, a reminder sent). Same array as an event's
    entry, with `kind` as its type, severity "info", and `data` as a seventh element; `seq`
    and `event_id` are those of the event it is about (0 and "" for none)."""
    if kind not in NOTE_KINDS:
        raise ValueError(f"not a timeline note kind: {kind!r}")
    return orjson.dumps([seq, int(at), kind, "info", summary, event_id, data])


def _entry_time(at: int) -> str:
    try:
        return utc_iso(at)
    except (OverflowError, OSError) as exc:  # datetime's range: a time no writer stores
        raise ValueError(f"a timeline entry's time is out of range: {at}") from exc


def read_history_entry(raw: bytes | str, rkey: str) -> dict[str, Any]:
    """A timeline entry of `rkey` as readers see it: id, type, seq, at (ISO), severity,
    summary, and for a note its `note` data. Raises ValueError or TypeError for anything but an entry `history_entry`
    wrote (entries written before ids named the change have no id: it is derived as it
    was derived then; entries written before `history_entry` left out what the rkey says
    have the whole type and id)."""
    item = orjson.loads(raw)
    if not isinstance(item, list):
        raise TypeError("a timeline entry is an array")
    seq, at, event_type, severity, summary, *rest = item
    if not isinstance(event_type, str) or (rest and not isinstance(rest[0], str)):
        raise TypeError("a timeline entry's type and id are strings")
    if event_type.startswith("."):  # `history_entry` left out the provider and kind
        event_type = _type_prefix(rkey)[:-1] + event_type
    eid = rest[0] if rest else event_id(rkey, seq, event_type)
    entry = {
        "id": _ID_PREFIX + eid if _HEX.fullmatch(eid) else eid,
        "type": event_type,
        "seq": seq,
        "at": _entry_time(at) if isinstance(at, int) else at,
        "severity": severity,
        "summary": summary,
    }
    if len(rest) > 1 and isinstance(rest[1], dict):  # a note (`note_entry`): what it says
        entry["note"] = rest[1]
    return entry
