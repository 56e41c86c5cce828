"""The HTTP API's requests and answers as pydantic models. The handlers (`worker/api_*.py`)
validate with them and the OpenAPI document (`worker/openapi.py`) is built from their JSON
schemas, so a constraint cannot be in one and not the other.

A watch request is a union over the configured providers, told apart by `provider`: each
provider's model names its own kinds, so `{"provider": "rev", "kind": "work_order"}` is
refused by the document as by the handler. Query strings are validated by models too:
an integer parameter is ASCII digits (an optional `-`), an empty value is a value (and
refused by its constraints), not an absent parameter.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    create_model,
)
from pydantic.json_schema import SkipJsonSchema

import providers as provider_registry
from store.watch_cursor import MAX_TOKEN, WatchCursor
from store.watch_cursor import PATTERN as CURSOR_PATTERN
from worker.api_fields import (
    ID_PATTERN,
    INTERVAL_TEXT,
    MAX_IDS,
    MAX_QUERY_RKEYS,
    MAX_RKEY,
    MAX_URL_BYTES,
    RKEY_PATTERN,
    SOURCES,
    STREAM_ID_PATTERN,
    Interval,
    QueryInt,
    ResourceId,
    RKey,
    Source,
    StallAfter,
    absent,
    integer_range_pattern,
    one_line,
    problems,
    query_values,
)

__all__ = [
    "ID_PATTERN",
    "INTERVAL_TEXT",
    "MAX_IDS",
    "MAX_QUERY_RKEYS",
    "MAX_RKEY",
    "MAX_URL_BYTES",
    "RKEY_PATTERN",
    "SOURCES",
    "STREAM_ID_PATTERN",
    "Error",
    "Events",
    "EventsQuery",
    "Health",
    "HealthUnavailable",
    "HookAccepted",
    "Problem",
    "Removed",
    "Resource",
    "ResourcePath",
    "ResourceQuery",
    "RevNotification",
    "UnwatchFields",
    "UnwatchQuery",
    "Watch",
    "WatchFields",
    "WatchResult",
    "Watches",
    "WatchesQuery",
    "WorkerBeat",
    "hook_path",
    "id_kinds",
    "integer_range_pattern",
    "one_line",
    "problems",
    "query_values",
    "unwatch_model",
    "watch_model",
    "watch_union",
]

# ---- requests -------------------------------------------------------------------------------


class WatchFields(BaseModel):
    """What every provider's watch request has; `watch_model` adds `provider` and `kind`."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    kind: str | None = None
    ids: list[ResourceId] = Field(min_length=1, max_length=MAX_IDS)
    interval: Interval | None = None
    discovered: StrictBool = False
    stall_after: StallAfter | None = None


class UnwatchFields(BaseModel):
    """A DELETE body: which resources to forget (an interval means nothing here)."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    kind: str | None = None
    ids: list[ResourceId] = Field(min_length=1, max_length=MAX_IDS)


def id_kinds(provider: str) -> tuple[str, ...]:
    """The kinds `provider` watches by id (a scan is set up in the config file)."""
    return tuple(k for k in provider_registry.REGISTRY[provider].kinds if k != "scan")


def _title(provider: str) -> str:
    return provider[:1].upper() + provider[1:]


def _per_provider(base: type[BaseModel], suffix: str, provider: str) -> type[BaseModel]:
    default = provider_registry.REGISTRY[provider].default_kind
    name: Any = Literal[provider]
    kinds: Any = Literal[id_kinds(provider)]
    return create_model(
        f"{_title(provider)}{suffix}",
        __base__=base,
        __doc__=f"{base.__doc__.splitlines()[0] if base.__doc__ else ''} ({provider})",
        provider=(name, ...),
        kind=(kinds | None, Field(default=None, description=f"default: {default}")),
    )


@cache
def watch_model(provider: str) -> type[WatchFields]:
    """The watch request of one known provider."""
    return _per_provider(WatchFields, "WatchRequest", provider)  # type: ignore[return-value]


@cache
def unwatch_model(provider: str) -> type[UnwatchFields]:
    """The DELETE body of one known provider."""
    return _per_provider(UnwatchFields, "UnwatchRequest", provider)  # type: ignore[return-value]


def _union(models: list[type[BaseModel]]) -> TypeAdapter[Any]:
    if len(models) == 1:
        return TypeAdapter(models[0])
    union: Any = Annotated[Union[tuple(models)], Field(discriminator="provider")]  # noqa: UP007
    return TypeAdapter(union)


@lru_cache(maxsize=32)
def watch_union(providers: tuple[str, ...], *, unwatch: bool = False) -> TypeAdapter[Any]:
    """POST (or DELETE: `unwatch`) body for `providers`, as the document has it: one
    provider's model, or the union of several told apart by `provider`."""
    make = unwatch_model if unwatch else watch_model
    return _union([make(p) for p in providers])


def _watch_cursor(token: str) -> str:
    WatchCursor.parse(token)  # ValueError: a 400 naming the parameter
    return token


class WatchesQuery(BaseModel):
    """GET /v1/watches."""

    provider: Literal[tuple(sorted(provider_registry.REGISTRY))] | SkipJsonSchema[None] = absent()  # type: ignore[valid-type]
    source: Source | SkipJsonSchema[None] = absent()
    limit: QueryInt = Field(default=100, ge=1, le=1000)
    cursor: Annotated[str, StringConstraints(max_length=MAX_TOKEN, pattern=CURSOR_PATTERN),
                      AfterValidator(_watch_cursor)] = Field(
        default="0", description="from the previous page's answer; 0 (the default) starts")

    @property
    def watch_cursor(self) -> WatchCursor:
        return WatchCursor.parse(self.cursor)


class UnwatchQuery(BaseModel):
    """DELETE /v1/watches: resources by key, beside (or instead of) a body."""

    rkey: list[RKey] = Field(default_factory=list, max_length=MAX_QUERY_RKEYS)


class ResourceQuery(BaseModel):
    """GET /v1/resources/{rkey}."""

    history: QueryInt = Field(default=50, ge=0, le=1000)


class EventsQuery(BaseModel):
    """GET /v1/events."""

    limit: QueryInt = Field(default=100, ge=1, le=1000)
    after: Annotated[str, StringConstraints(pattern=STREAM_ID_PATTERN)] | SkipJsonSchema[None] = absent(
        "a stream id such as 1700000000000-0 (exclusive); without it, the latest")
    rkey: RKey | SkipJsonSchema[None] = absent("one resource's timeline instead of the outbox")


class RevNotification(BaseModel):
    """What Rev posts to a notification URL (JSON or a form): the order is named by
    `order_number`, or by an older spelling (`orderNumber`, `ordernum`, …, or an `order` object)."""

    model_config = ConfigDict(extra="allow")

    order_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] | None = None


# ---- answers ---------------------------------------------------------------------------------


class Problem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    problem: str


class Error(BaseModel):
    """Every refusal: the reason, and for a request that does not match this document the
    fields that do not (`problems`)."""

    model_config = ConfigDict(extra="forbid")

    error: str
    problems: list[Problem] | None = None
    known: list[str] | None = None
    configured: list[str] | None = None
    rkey: str | None = None


class WorkerBeat(BaseModel):
    worker: str
    age: float
    interval: float
    fresh: bool


class Health(BaseModel):
    status: Literal["ok"]
    redis: Literal["ok"]
    workers: list[WorkerBeat]


class HealthUnavailable(BaseModel):
    """503 of /healthz: Redis unreachable (no `workers`), or no fresh heartbeat."""

    status: Literal["unavailable"]
    reason: str
    workers: list[WorkerBeat] | None = None


class WatchResult(BaseModel):
    provider: str
    kind: str
    interval: float
    watched: int
    added: int
    rkeys: list[str]


class WatchView(BaseModel):
    interval: float
    discovered: bool
    scan: dict[str, str] | None
    source: str
    stall_after: dict[str, float] | None = None
    """seconds by state (`*`: any other state; 0: off); None: the provider's"""


class Watch(WatchView):
    rkey: str
    due_at: float | None


class Watches(BaseModel):
    watches: list[Watch]
    cursor: str | None = Field(description="pass it back for the next page; null: this was the last")


class Removed(BaseModel):
    removed: int
    rkeys: list[str]


class StateView(BaseModel):
    digest: str
    seq: int
    changed_at: Any


class TimelineEntry(BaseModel):
    """An event of the resource's timeline (id, type, seq, at, severity, summary), with the
    attempts to deliver it."""

    model_config = ConfigDict(extra="allow")

    id: str
    deliveries: list[dict[str, Any]]


class Resource(BaseModel):
    rkey: str
    provider: str
    kind: str
    id: str
    watch: WatchView | None
    due_at: float | None
    state: StateView | None
    consecutive_errors: int
    snapshot: dict[str, Any] | None
    history: list[TimelineEntry]


class Events(BaseModel):
    rkey: str | None = None
    events: list[dict[str, Any]]
    next: str | None


class HookAccepted(BaseModel):
    rkey: str
    status: Literal["poll scheduled"]



class ResourcePath(BaseModel):
    """The path of GET /v1/resources/{rkey}."""

    rkey: RKey = Field(examples=["rev:order:TC432432"])


@lru_cache(maxsize=8)
def hook_path(providers: tuple[str, ...]) -> type[BaseModel]:
    """The path of POST /v1/hooks/{provider}/{token}, for the providers that have hooks."""
    names: Any = Literal[providers]
    return create_model(
        "HookPath",
        provider=(names, ...),
        token=(str, Field(min_length=1, description="api.hook_tokens.<provider>")),
    )
