"""The config file's own models beyond routes (model/routes.py): what to watch."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.values import Duration, ResourceId


class WatchSpec(BaseModel):
    """What to poll: explicit ids, or a scan of a collection (e.g. a project's orders)."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    kind: str | None = None
    ids: list[ResourceId] = Field(default_factory=list)
    scan: dict[str, str] | None = None
    interval: Duration = 60.0
    discovered: bool = Field(default=False, description="emit *.discovered for resources first seen")

    @model_validator(mode="after")
    def _ids_or_scan(self) -> WatchSpec:
        if not self.ids and self.scan is None:
            raise ValueError("a watch needs `ids` or `scan`")
        if self.ids and self.scan is not None:
            raise ValueError("a watch has either `ids` or `scan`, not both")
        return self
