"""The config file's own models beyond routes (model/routes.py): what to watch."""

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
