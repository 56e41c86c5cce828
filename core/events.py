"""From a provider's drafts to events: deterministic ids and per-resource sequence numbers. Pure."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from model.events import Event, EventDraft
from model.resources import ResourceInfo, ResourceRef, Snapshot

__all__ = ["build_events", "change_of", "event_id", "utc_iso"]


def event_id(rkey: str, seq: int, event_type: str, change: str = "") -> str:
    """Names one change for good. `change` says what changed: the dataset's epoch and the
    digests before and after (`change_of`). The same change detected again (a retried poll,
    a commit lost at a failover and made again) has the same resource, sequence number,
    type, epoch and digests, so the same id, and receivers can drop the repeat. A different
    change differs in one of them even when `seq` starts again: after a data loss the
    epoch is new, after a lost commit the digests differ."""
    h = hashlib.blake2b(f"{rkey}\x00{seq}\x00{event_type}\x00{change}".encode(), digest_size=12).hexdigest()
    return f"evt_{h}"


def change_of(epoch: str, old_digest: str, new_digest: str) -> str:
    """What `event_id` takes as the change: where it happened (the dataset) and from what to what."""
    return f"{epoch}\x00{old_digest}\x00{new_digest}"


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
    change: str = "",
    scan: str = "",
) -> list[Event]:
    """Events for `drafts`, numbered from `base_seq + 1`; `change` (see `change_of`) goes
    into their ids; `scan` (the rkey of the scan an item was found by) into their resource."""
    resource = {"kind": ref.kind, "id": ref.id, "key": ref.key, "url": info.url, "title": info.title}
    if scan:
        resource["scan"] = scan
    events = []
    for i, draft in enumerate(drafts, start=1):
        seq = base_seq + i
        events.append(
            Event(
                id=event_id(ref.key, seq, draft.type, change),
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
