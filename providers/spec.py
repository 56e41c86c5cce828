"""What a provider knows without a network: its settings, the kinds of resource it watches,
how a payload becomes a snapshot (dropping volatile values such as presigned URLs) and
which events a change between two snapshots means.

A spec is built from settings alone, with no session, so that normalize and classify are
tested with plain values (tests/pure). The HTTP side is providers/client.py (an
authenticated GET, errors) with a strategy of providers/auth.py; providers/base.py's
`Provider` puts a spec and a client together.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.events import utc_iso
from core.stall import ANY_STATE, human_duration
from model.errors import MalformedPayload
from model.events import Change, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef, Snapshot
from model.values import Duration, DurationOrOff, HttpUrl
from transport.http import error_words

__all__ = ["DAY", "NonBlank", "ProviderSettings", "ProviderSpec", "ScanFilter", "TailedSettings", "parse_json"]

DAY = 86400.0


class ProviderSettings(BaseModel):
    """Settings every provider has. Each provider extends this in its own file, with its own
    defaults for the terminal tail and the stall times."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl
    max_concurrency: int = Field(default=16, ge=1, le=1024)
    requests_per_second: float = Field(default=20.0, ge=0.01, allow_inf_nan=False)
    """0.01: one request every 100 s (a smaller rate is a provider never polled)"""
    timeout: Duration = 10.0
    interval_active: Duration | None = None
    interval_idle: Duration | None = None
    terminal_tail: DurationOrOff = 0.0
    """a terminal resource is polled every `terminal_interval` for this long after its last
    change (0: not at all), then every `terminal_late_interval` until `terminal_late_tail`"""
    terminal_interval: Duration = 3600.0
    terminal_late_tail: DurationOrOff = 0.0
    terminal_late_interval: Duration = DAY
    stall_after: dict[str, DurationOrOff] = Field(default_factory=dict)
    """seconds a non-terminal resource may stay in one state (by name, `*` for any other)
    before one `*.stalled` event; 0 is off. A table is merged over `stall_defaults`; one
    duration applies to every state and replaces them."""

    stall_defaults: ClassVar[dict[str, float]] = {}

    @model_validator(mode="before")
    @classmethod
    def _stall_table(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        given = data.get("stall_after")
        if given is None:
            return {**data, "stall_after": dict(cls.stall_defaults)}
        if isinstance(given, dict):
            return {**data, "stall_after": {**cls.stall_defaults, **given}}
        return {**data, "stall_after": {ANY_STATE: given}}


class TailedSettings(ProviderSettings):
    """The default tail of every provider: a terminal resource is looked at every hour for
    7 days after its last change, then every day until 30 days, so that one moved back out
    of a terminal state (Artistree's Failed → In Progress, Rev's QC re-open) is an event
    within the interval of the tail it is in."""

    terminal_tail: DurationOrOff = 7 * DAY
    terminal_late_tail: DurationOrOff = 30 * DAY


NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ScanFilter(BaseModel):
    """The keys a provider's scan reads from its spec (a watch's `scan = {…}`, `watch scan -p`).
    Each provider that scans declares its own; any other key is a mistake that would be stored
    with the watch and ignored by every scan."""

    model_config = ConfigDict(extra="forbid")


def parse_json(name: str, body: bytes) -> Any:
    """`body` parsed, or MalformedPayload naming provider `name`."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"{name}: body is not JSON ({exc.msg})") from exc


class ProviderSpec(ABC):
    """One provider's pure side. Subclasses set the class attributes and implement
    normalize, describe and classify; the rest has a default."""

    name: ClassVar[str]
    settings_model: ClassVar[type[ProviderSettings]] = ProviderSettings
    default_kind: ClassVar[str] = "order"
    kinds: ClassVar[tuple[str, ...]] = ("order",)
    scan_filter: ClassVar[type[ScanFilter] | None] = None
    """What a scan reads from its spec; None: this provider cannot scan."""

    fingerprint_blanks: tuple[str, ...] | None = None
    """Keys whose string values are volatile wherever they occur in a payload (presigned
    URLs); () when nothing in it is volatile. When set, `fetch_body` gives the raw body, the
    poller fingerprints it with these values blanked, and a body whose fingerprint matches
    the last one is unchanged without a parse. Left None, every poll parses, normalizes and
    digests: for a payload whose volatile values cannot be blanked whole (a presigned URL
    whose path still counts), a fingerprint would differ on every answer."""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")

    @abstractmethod
    def normalize(self, ref: ResourceRef, payload: Any) -> Snapshot:
        """A canonical snapshot without volatile values. Raises MalformedPayload."""

    @abstractmethod
    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo: ...

    @abstractmethod
    def classify(self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]: ...

    def normalize_preview(self, ref: ResourceRef, payload: Any) -> Snapshot:
        """The stable part of a list page's summary of a resource (volatile values dropped)."""
        return self.normalize(ref, payload)

    def label(self, ref: ResourceRef, snapshot: Snapshot) -> str:
        """How summaries name a resource: `Order “Poster v3”`."""
        return f"{ref.kind.replace('_', ' ').capitalize()} “{self.describe(ref, snapshot).title}”"

    def discovered(self, ref: ResourceRef, snapshot: Snapshot) -> EventDraft:
        info = self.describe(ref, snapshot)
        state = f" ({info.state})" if info.state else ""
        return EventDraft(
            type=f"{self.name}.{ref.kind}.discovered",
            severity=Severity.INFO,
            summary=f"{self.label(ref, snapshot)} discovered{state}",
            data={"state": info.state, "terminal": info.terminal},
        )

    def gone(self, ref: ResourceRef, snapshot: Snapshot) -> EventDraft:
        info = self.describe(ref, snapshot)
        return EventDraft(
            type=f"{self.name}.{ref.kind}.gone",
            severity=Severity.WARNING,
            summary=f"{self.label(ref, snapshot)} is gone (404)",
            data={"last_state": info.state},
        )

    def stalled(self, ref: ResourceRef, snapshot: Snapshot, *, state: str, since: float, seconds: float) -> EventDraft:
        """The resource has been in `state` since `since` (unix seconds), `seconds` long."""
        return EventDraft(
            type=f"{self.name}.{ref.kind}.stalled",
            severity=Severity.WARNING,
            summary=f"{self.label(ref, snapshot)} has been {state} for {human_duration(seconds)}",
            data={"state": state, "since": utc_iso(since), "for": int(seconds)},
        )

    def severity_of_state(self, state: str | None) -> Severity:
        return Severity.INFO

    @staticmethod
    def error_reason(body: bytes) -> str:
        """The provider's own words for an error: `{"detail": …}` or `{code, message}`."""
        return error_words(body)

    def parse(self, body: bytes) -> Any:
        return parse_json(self.name, body)
