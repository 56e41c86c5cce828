"""The values that cross module boundaries: resource references, changes, events.

Everything here is pure data. Providers produce `EventDraft`s; the core turns them into
`Event`s with a deterministic id and a per-resource sequence number.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

from model.resources import Snapshot

__all__ = [
    "Change",
    "Event",
    "EventDraft",
    "Severity",
]


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def _seq(value: Any) -> int:
    seq = int(value)
    if not 0 <= seq < 2**63:  # orjson writes no int past 64 bits: the event could not be written back
        raise ValueError("an event's seq is out of range")
    return seq


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two snapshots, at a JSON pointer path."""

    path: str
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class EventDraft:
    """What a provider's classifier says happened; the core adds id, seq and time."""

    type: str
    severity: Severity
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    provider: str
    resource: dict[str, Any]
    seq: int
    detected_at: str
    severity: Severity
    summary: str
    data: dict[str, Any]
    snapshot: Snapshot | None
    tags: tuple[str, ...] = ()
    project: str | None = None

    @property
    def rkey(self) -> str:
        return str(self.resource["key"])

    @property
    def target_state(self) -> str | None:
        """The state a state change moved the resource to (`data.to` of a `*.state_changed`);
        None for any other event, though it may have a `to` of its own (a confidence change's
        new value is no state: it disarmed the reminders of a Failed order in the same poll)."""
        if not self.type.endswith(".state_changed"):
            return None
        to = self.data.get("to")
        return str(to) if to is not None else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "provider": self.provider,
            "resource": self.resource,
            "seq": self.seq,
            "detected_at": self.detected_at,
            "severity": self.severity.value,
            "summary": self.summary,
            "tags": list(self.tags),
            "project": self.project,
            "data": self.data,
            "snapshot": self.snapshot,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.as_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        """Raises KeyError, TypeError or ValueError for anything `as_dict` would not have
        made: what reads an event (routing, reminders, a batch's job id) relies on its shape."""
        resource, data, tags, project = d["resource"], d.get("data") or {}, d.get("tags") or [], d.get("project")
        if not isinstance(resource, dict) or not isinstance(resource.get("key"), str):
            raise TypeError("an event's resource is an object with a string key")
        if not isinstance(data, dict) or not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TypeError("an event's data is an object and its tags strings")
        if project is not None and not isinstance(project, str):
            raise TypeError("an event's project is a string")
        return cls(
            id=_text(d["id"]),
            type=_text(d["type"]),
            provider=_text(d["provider"]),
            resource=resource,
            seq=_seq(d["seq"]),
            detected_at=_text(d["detected_at"]),
            severity=Severity(d["severity"]),
            summary=_text(d["summary"]),
            data=data,
            snapshot=d.get("snapshot"),
            tags=tuple(tags),
            project=project,
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        return cls.from_dict(orjson.loads(raw))


DIGEST_TYPE = "statehook.digest"
"""The type of the event that carries a digest window's events (see store/digests.py)."""
