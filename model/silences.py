"""Silences: an operator's "do not tell these destinations about these events until then",
and the routing facts of an event that a silence is matched against (the live event in the
dispatcher, or the last 24 h of them for a preview).

A silence's matchers are like a route's (every given field must match; a list matches when
any of its values does; `type` takes globs) plus the resource (`rkey` or its provider's `id`)
and the `destination`. No matcher at all would mute everything: refused without `force`."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from model.events import Event, Severity

__all__ = [
    "MATCHER_KEYS",
    "RoutingFacts",
    "Silence",
    "SilenceMatch",
    "SilenceState",
]

Value = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Values = Annotated[list[Value], Field(min_length=1, max_length=100)]


class SilenceMatch(BaseModel):
    """Every given field must match; a list matches when any of its values does. `type`
    takes globs (`*.state_changed`), `state` ignores case, `tags` matches when the event has
    any of them, `destination` names the destinations muted (all of them when not given)."""

    model_config = ConfigDict(extra="forbid")

    provider: Values | None = None
    type: Values | None = None
    rkey: Values | None = None
    id: Values | None = Field(default=None, description="the provider's id of the resource")
    state: Values | None = None
    severity: Annotated[list[Severity], Field(min_length=1, max_length=3)] | None = None
    tags: Values | None = None
    project: Values | None = None
    destination: Values | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalars_to_lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in data.items()}
        return data

    def given(self) -> dict[str, list[str]]:
        """The matchers given, by key (for display)."""
        return {k: [str(x) for x in v] for k, v in self.model_dump(mode="json").items() if v is not None}


MATCHER_KEYS: tuple[str, ...] = tuple(SilenceMatch.model_fields)


class SilenceState(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


class Silence(BaseModel):
    """Times are Unix seconds. Expiring a silence sets its end to now (as Alertmanager does)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    match: SilenceMatch
    starts_at: float
    ends_at: float
    author: str = ""
    comment: str = ""
    created_at: float

    def state(self, now: float) -> SilenceState:
        if now >= self.ends_at:
            return SilenceState.EXPIRED
        return SilenceState.PENDING if now < self.starts_at else SilenceState.ACTIVE


@dataclass(frozen=True, slots=True)
class RoutingFacts:
    """What a silence is matched against: an event's routing fields and the destinations its
    routes selected (kept 24 h for previews, store/recent.py)."""

    id: str
    type: str
    provider: str
    rkey: str
    resource_id: str
    state: str | None
    severity: Severity
    tags: tuple[str, ...]
    project: str | None
    detected_at: str
    destinations: tuple[str, ...]

    @classmethod
    def of(cls, event: Event, destinations: tuple[str, ...]) -> RoutingFacts:
        return cls(event.id, event.type, event.provider, event.rkey, str(event.resource.get("id", "")),
                   event.target_state, event.severity, event.tags, event.project, event.detected_at, destinations)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "provider": self.provider, "rkey": self.rkey,
                "resource_id": self.resource_id, "state": self.state, "severity": self.severity.value,
                "tags": list(self.tags), "project": self.project, "detected_at": self.detected_at,
                "destinations": list(self.destinations)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoutingFacts:
        return cls(str(d["id"]), str(d["type"]), str(d["provider"]), str(d["rkey"]), str(d.get("resource_id", "")),
                   None if d.get("state") is None else str(d["state"]), Severity(d["severity"]),
                   tuple(str(t) for t in d.get("tags") or ()), None if d.get("project") is None else str(d["project"]),
                   str(d.get("detected_at", "")), tuple(str(x) for x in d.get("destinations") or ()))
