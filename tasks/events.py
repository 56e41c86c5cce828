"""From a provider's drafts to events: deterministic ids and per-resource sequence numbers. Pure."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from providers.base import ResourceInfo
from tasks.model import Event, EventDraft, ResourceRef, Snapshot

__all__ = ["build_events", "event_id", "utc_iso"]


def event_id(rkey: str, seq: int, event_type: str) -> str:
    """Same resource, same sequence number, same type: same id. A re-run of a poll whose
    commit was lost names the change again with the same id, so receivers can drop it."""
    h = hashlib.blake2b(f"{rkey}\x00{seq}\x00{event_type}".encode(), digest_size=12).hexdigest()
    return f"evt_{h}"


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_events(
    ref: ResourceRef,
    info: ResourceInfo,
    drafts: list[EventDraft],
    *,
    base_seq: int,
    now: float,
    snapshot: Snapshot | None,
) -> list[Event]:
    resource = {"kind": ref.kind, "id": ref.id, "key": ref.key, "url": info.url, "title": info.title}
    events = []
    for i, draft in enumerate(drafts, start=1):
        seq = base_seq + i
        events.append(
            Event(
                id=event_id(ref.key, seq, draft.type),
                type=draft.type,
                provider=ref.provider,
                resource=resource,
                seq=seq,
                detected_at=utc_iso(now),
                severity=draft.severity,
                summary=draft.summary,
                data=draft.data,
                snapshot=snapshot,
                tags=info.tags,
                project=info.project,
            )
        )
    return events
