"""A route of the config file: which events (`RouteMatch`) go to which destinations, with
its throttle, digest window, maintenance windows, reminders and template overrides."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.events import Severity
from model.values import Duration, Templates


class RouteMatch(BaseModel):
    """Every given field must match; a list matches when any of its values does.
    `type` takes globs (`*.state_changed`); `tags` matches when the event has any of them."""

    model_config = ConfigDict(extra="forbid")

    provider: list[str] | None = None
    type: list[str] | None = None
    state: list[str] | None = None
    severity: list[Severity] | None = None
    tags: list[str] | None = None
    project: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalars_to_lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in data.items()}
        return data



class Route(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    match: RouteMatch = Field(default_factory=RouteMatch)
    to: list[str] = Field(min_length=1)
    throttle: Duration | None = Field(
        default=None, description="the same event type for the same resource at most once per window"
    )
    digest: Duration | None = Field(
        default=None, description="gather the events of each window into one message (made for email)"
    )
    template: Templates | None = Field(
        default=None, description="template overrides for this route's deliveries (a string is the body)"
    )
    mute_during: list[str] | None = Field(
        default=None, description="names of time intervals ([[time_intervals]]) during which nothing is sent; "
        "what was muted is summarised when they end (after_window)")
    active_during: list[str] | None = Field(
        default=None, description="names of time intervals outside which nothing is sent (summarised when one begins)")
    after_window: Literal["summary", "drop"] = Field(
        default="summary", description="when a window's muting ends: one summary of what it muted per destination, "
        "or nothing")
    repeat_every: Duration | None = Field(
        default=None, description="while a resource stays in the state that raised a critical event, "
        "remind its destinations at this period (until the state changes or it is acknowledged)"
    )
