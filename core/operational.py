"""An operational event (model/operational.py) as an Event. Pure."""

from __future__ import annotations

from typing import Any

from core.events import event_id, utc_iso
from model.events import Event, Severity
from model.operational import OPERATIONAL_PROVIDER, Subject

__all__ = ["operational_event"]


def operational_event(event_type: str, subject: Subject, *, severity: Severity, summary: str,
                      data: dict[str, Any], seq: int, now: float, epoch: str = "") -> Event:
    """`seq` numbers the subject's operational events (store/operational.py keeps it)."""
    return Event(
        id=event_id(subject.key, seq, event_type, epoch),
        type=event_type,
        provider=OPERATIONAL_PROVIDER,
        resource=subject.resource(),
        seq=seq,
        detected_at=utc_iso(now),
        severity=severity,
        summary=summary,
        data=data,
        snapshot=None,
    )
