"""A resource's stored snapshot and its timeline entries: how each is written and read. Pure."""

from __future__ import annotations

import calendar
import time
from typing import Any

import orjson

from core.events import event_id, utc_iso
from model.events import Event
from model.resources import Snapshot
from store import snapshot_codec
from store.records import CorruptRecord

__all__ = ["history_entry", "pack_snapshot", "read_history_entry", "unpack_snapshot"]


def pack_snapshot(canonical_bytes: bytes) -> bytes:
    """What a snapshot's key holds (`store.snapshot_codec`: deflated with a preset dictionary)."""
    return snapshot_codec.pack(canonical_bytes)


def unpack_snapshot(raw: bytes | None, key: str = "snapshot") -> Snapshot | None:
    """Raises CorruptRecord (naming `key`) for a value that is not a packed snapshot."""
    if raw is None:
        return None
    try:
        snap: Snapshot = orjson.loads(snapshot_codec.unpack(raw))
    except Exception as exc:  # zlib.error, a JSON error, a codec's own check: all one thing here
        raise CorruptRecord(key, f"not a snapshot: {type(exc).__name__}") from None
    if not isinstance(snap, dict):
        raise CorruptRecord(key, "not a snapshot: not an object")
    return snap


def history_entry(rkey: str, event: Event) -> bytes:
    """A resource's timeline entry for `event`, as the history list stores it: the JSON array
    `[seq, at, type, severity, summary, id]`, `at` in epoch seconds (or the event's own
    text when it is not a whole second in UTC)."""
    at: int | str = event.detected_at
    try:
        epoch = calendar.timegm(time.strptime(event.detected_at, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        pass
    else:
        if utc_iso(epoch) == event.detected_at:
            at = epoch
    return orjson.dumps([event.seq, at, event.type, event.severity.value, event.summary, event.id])


def read_history_entry(raw: bytes | str, rkey: str) -> dict[str, Any]:
    """A timeline entry of `rkey` as readers see it: id, type, seq, at (ISO), severity,
    summary. Raises ValueError or TypeError for anything but an entry `history_entry`
    wrote (entries written before ids named the change have no id: it is derived as it
    was derived then)."""
    item = orjson.loads(raw)
    if not isinstance(item, list):
        raise TypeError("a timeline entry is an array")
    seq, at, event_type, severity, summary, *rest = item
    return {
        "id": rest[0] if rest else event_id(rkey, seq, event_type),
        "type": event_type,
        "seq": seq,
        "at": utc_iso(at) if isinstance(at, int) else at,
        "severity": severity,
        "summary": summary,
    }
