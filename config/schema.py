"""The config file's own models beyond routes (model/routes.py): what to watch, and the
watchdog's thresholds (`[watchdog]`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.stall import ANY_STATE
from model.values import Duration, DurationOrOff, ResourceId


class WatchSpec(BaseModel):
    """What to poll: explicit ids, or a scan of a collection (e.g. a project's orders)."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    kind: str | None = None
    ids: list[ResourceId] = Field(default_factory=list)
    scan: dict[str, str] | None = None
    interval: Duration = 60.0
    discovered: bool = Field(default=False, description="emit *.discovered for resources first seen")
    stall_after: dict[str, DurationOrOff] | None = Field(
        default=None, description="seconds a resource may stay in one state before one *.stalled event: one "
        "duration for every state, or a table by state (`*`: any other); 0 is off. Before the provider's")

    @field_validator("stall_after", mode="before")
    @classmethod
    def _one_or_a_table(cls, value: Any) -> Any:
        return value if value is None or isinstance(value, dict) else {ANY_STATE: value}

    @model_validator(mode="after")
    def _ids_or_scan(self) -> WatchSpec:
        if not self.ids and self.scan is None:
            raise ValueError("a watch needs `ids` or `scan`")
        if self.ids and self.scan is not None:
            raise ValueError("a watch has either `ids` or `scan`, not both")
        return self


class WatchdogSettings(BaseModel):
    """When statehook reports on itself (`statehook.provider.*`, `statehook.watch.*`) and how
    far a scan goes to confirm that a resource it no longer lists is gone."""

    model_config = ConfigDict(extra="forbid")

    failed_polls: int = Field(default=5, ge=1, le=100_000, description="consecutive failed polls of a provider "
                              "(5xx, timeouts, bodies that do not parse; none answered between): unhealthy")
    rate_limited_for: Duration = Field(default=600.0, description="a provider answering 429 (pausing every worker) "
                                       "for this long, with no poll answered between, is unhealthy")
    overdue_factor: float = Field(default=3.0, ge=1.5, le=1000.0, description="a watch not polled for this many "
                                  "of its intervals is overdue")
    overdue_min: Duration = Field(default=120.0, description="a watch is never overdue before its poll is this late "
                                  "(a lost poll job is claimed again after poll_lease)")
    overdue_limit: int = Field(default=100, ge=1, le=10_000, description="most late watches one check looks at")
    gone_checks: int = Field(default=100, ge=0, le=100_000, description="direct GETs per scan sweep that confirm "
                             "resources no longer listed are gone (0: none); the rest wait for the next sweep")
