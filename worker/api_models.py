"""The HTTP API's requests and answers as pydantic models. The handlers (`worker/api.py`)
validate with them and the OpenAPI document (`worker/openapi.py`) is built from their JSON
schemas, so a constraint cannot be in one and not the other.

A watch request is a union over the configured providers, told apart by `provider`: each
provider's model names its own kinds, so `{"provider": "rev", "kind": "work_order"}` is
refused by the document as by the handler. Query strings are validated by models too:
an integer parameter is ASCII digits (an optional `-`), an empty value is a value (and
refused by its constraints), not an absent parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic.json_schema import SkipJsonSchema

import providers as provider_registry
from model.values import ID_PATTERN, ID_RULE, MAX_DURATION, MIN_DURATION, check_duration, format_seconds, parse_duration

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

MAX_IDS = 10_000

# Character classes are spelled out, never \s, \d or `.`: the document's patterns are read by
# ECMA-262 engines, pydantic's by Rust's regex and the CLI's by Python's re, and those three
# disagree on what \s and `.` match (U+FEFF, U+0085, \r) and on Unicode digits.
RKEY_PATTERN = r"^[^:]+:[^:]+:[\s\S]+$"
"""provider:kind:id, each part non-empty (the id may hold colons), as `ResourceRef.parse` reads it."""
MAX_RKEY = 512
MAX_QUERY_RKEYS = 50
"""?rkey= of DELETE /v1/watches, at most (more go in the body): with MAX_RKEY, the request
line stays under MAX_URL_BYTES however its characters are percent-encoded (12 bytes each at most)."""
MAX_URL_BYTES = 512 * 1024
"""The longest request line the API reads (aiohttp's default, 8190 bytes, is shorter than a
query this document allows; past it, aiohttp answers in plain text)."""
STREAM_ID_PATTERN = r"^[0-9]{1,19}(-[0-9]{1,19})?$"
"""A Redis stream id (ms-seq); 19 digits at most, so each part fits Redis's 64 bits."""
Source = Literal["config", "api", "cli", "scan"]
"""Where a watch came from: the config file, POST /v1/watches, `statehook watch`, a scan's listing."""
SOURCES: tuple[str, ...] = get_args(Source)



def _fixed_width(lo: str, hi: str) -> list[str]:
    """Regexes matching exactly the digit strings from `lo` to `hi`, both of one length."""
    if not lo:
        return [""]
    if lo[0] == hi[0]:
        return [lo[0] + p for p in _fixed_width(lo[1:], hi[1:])]
    rest = len(lo) - 1
    first, last = int(lo[0]), int(hi[0])
    head: list[str] = []
    tail: list[str] = []
    if lo[1:] != "0" * rest:
        head = [lo[0] + p for p in _fixed_width(lo[1:], "9" * rest)]
        first += 1
    if hi[1:] != "9" * rest:
        tail = [hi[0] + p for p in _fixed_width("0" * rest, hi[1:])]
        last -= 1
    middle = []
    if first <= last:
        digit = str(first) if first == last else f"[{first}-{last}]"
        middle = [digit + ("[0-9]" + (f"{{{rest}}}" if rest > 1 else "") if rest else "")]
    return head + middle + tail


def integer_range_pattern(lo: int, hi: int) -> str:
    """A regex (no anchors) matching exactly the decimal integers from `lo` to `hi` (lo >= 1),
    written without leading zeros: how the document bounds a number inside a string."""
    parts: list[str] = []
    while lo <= hi:
        width_end = min(hi, 10 ** len(str(lo)) - 1)
        parts += _fixed_width(str(lo), str(width_end))
        lo = width_end + 1
    return "|".join(parts)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _amounts(size: float) -> str:
    """The amounts of a unit of `size` seconds that are within the bounds: from a whole one
    (or the smallest tenth, below one) up to the largest whole one, decimals between."""
    lo, hi = MIN_DURATION / size, MAX_DURATION / size
    first, last = max(1, math.ceil(lo - 1e-9)), math.floor(hi + 1e-9)
    forms = [f"(?:{integer_range_pattern(first, last - 1)})(?:\\.[0-9]+)?", f"{last}(?:\\.0+)?"]
    tenths = round(lo * 10, 9)
    if lo < 1 and tenths.is_integer():  # 0.1 s and up: 0.1, 0.25, 0.9
        forms.append(f"0\\.[{int(tenths)}-9][0-9]*")
    return "|".join(forms)


def _interval_text() -> str:
    forms = [f"(?:{_amounts(size)}){unit}{'?' if unit == 's' else ''}" for unit, size in _UNITS.items()]
    return "^(?:" + "|".join(forms) + ")$"


INTERVAL_TEXT = _interval_text()
"""An interval as text: an amount of one unit within the bounds: `250ms`, `0.2s`, `90` or `90s`,
`5m`, `1.5h`, `30d` (a unit larger than a second takes at least 1 of it; 1h30m is 5400). The
bounds are in the pattern itself, so the document says exactly which texts are accepted."""

ResourceId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
RKey = Annotated[str, StringConstraints(pattern=RKEY_PATTERN, max_length=MAX_RKEY)]
_INTERVAL_TEXT = re.compile(INTERVAL_TEXT)
_BOUNDS = f"from {format_seconds(MIN_DURATION)} to {format_seconds(MAX_DURATION)}"


def _interval(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a duration is a number of seconds or a string like '5m' ({_BOUNDS})")
    if isinstance(value, str) and not _INTERVAL_TEXT.fullmatch(value):
        raise ValueError(f"not a duration: a number of seconds, or an amount of one unit such as 250ms, 30s,"
                         f" 5m, 1.5h, 30d ({_BOUNDS})")
    return check_duration(parse_duration(value))


Interval = Annotated[float, PlainValidator(_interval), WithJsonSchema({
    "anyOf": [{"type": "number", "minimum": MIN_DURATION, "maximum": MAX_DURATION},
              {"type": "string", "pattern": INTERVAL_TEXT}],
    "description": f"seconds, or an amount of one unit: 250ms, 0.2s, 5m, 1.5h, 30d; {_BOUNDS}",
})]
"""A watch interval: seconds, or one of INTERVAL_TEXT; finite and within the bounds."""

_QUERY_INT = re.compile(r"-?[0-9]+")


def _query_int(value: Any) -> Any:
    """A query string's integer: ASCII digits only (int() would take ' 5', '+5', '1_0', '٥')."""
    if isinstance(value, str):
        if not _QUERY_INT.fullmatch(value):
            raise ValueError("must be an integer")
        return int(value)
    return value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _absent(description: str | None = None) -> Any:
    """An optional query parameter: absent is None, which a query string cannot say (so the
    document has neither a null nor a default for it)."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


QueryInt = Annotated[int, BeforeValidator(_query_int)]


# ---- requests -------------------------------------------------------------------------------


class WatchFields(BaseModel):
    """What every provider's watch request has; `watch_model` adds `provider` and `kind`."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    kind: str | None = None
    ids: list[ResourceId] = Field(min_length=1, max_length=MAX_IDS)
    interval: Interval | None = None
    discovered: StrictBool = False


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


class WatchesQuery(BaseModel):
    """GET /v1/watches."""

    provider: Literal[tuple(sorted(provider_registry.REGISTRY))] | SkipJsonSchema[None] = _absent()  # type: ignore[valid-type]
    source: Source | SkipJsonSchema[None] = _absent()
    limit: QueryInt = Field(default=100, ge=1, le=1000)
    cursor: QueryInt = Field(default=0, ge=0, le=2**64 - 1,
                             description="from the previous page's answer; 0 (the default) starts")


class UnwatchQuery(BaseModel):
    """DELETE /v1/watches: resources by key, beside (or instead of) a body."""

    rkey: list[RKey] = Field(default_factory=list, max_length=MAX_QUERY_RKEYS)


class ResourceQuery(BaseModel):
    """GET /v1/resources/{rkey}."""

    history: QueryInt = Field(default=50, ge=0, le=1000)


class EventsQuery(BaseModel):
    """GET /v1/events."""

    limit: QueryInt = Field(default=100, ge=1, le=1000)
    after: Annotated[str, StringConstraints(pattern=STREAM_ID_PATTERN)] | SkipJsonSchema[None] = _absent(
        "a stream id such as 1700000000000-0 (exclusive); without it, the latest")
    rkey: RKey | SkipJsonSchema[None] = _absent("one resource's timeline instead of the outbox")


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


# ---- reading requests ------------------------------------------------------------------------------


_PATTERN_MEANS = {
    ID_PATTERN: ID_RULE,
    RKEY_PATTERN: "expected provider:kind:id",
    STREAM_ID_PATTERN: "expected a stream id such as 1700000000000-0",
}
"""What a pattern stands for, said instead of the pattern in a refusal."""
_MEMBER_LABELS = frozenset({"none", "str", "int", "float", "bool", "list", "dict"})


def _is_member_label(part: str | int) -> bool:
    """Whether a location part names a member of a union (`literal['a','b']`,
    `constrained-str`, `none`), not a field."""
    return isinstance(part, str) and (part in _MEMBER_LABELS or not part.isidentifier())


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Each error as {field, problem}, once per field and problem. Of an optional field
    (a union with None) the other member's problem is the one that says something."""
    errors = exc.errors(include_input=False, include_url=False)
    fields = [".".join(str(x) for x in e["loc"] if not _is_member_label(x)) or "body" for e in errors]
    out: list[dict[str, str]] = []
    for field, e in zip(fields, errors, strict=True):
        if e["type"] == "none_required" and fields.count(field) > 1:
            continue
        problem = e["msg"].removeprefix("Value error, ")
        if e["type"] == "string_pattern_mismatch":
            problem = _PATTERN_MEANS.get(str((e.get("ctx") or {}).get("pattern")), problem)
        item = {"field": field, "problem": problem}
        if item not in out:
            out.append(item)
    return out


def query_values(model: type[BaseModel], query: Mapping[str, str], getall: Any) -> dict[str, Any]:
    """The parameters of `model` found in a query string (repeated ones for list fields)."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name not in query:
            continue
        origin = getattr(field.annotation, "__origin__", None)
        out[name] = getall(name) if origin is list else query[name]
    return out


def one_line(items: Iterable[Mapping[str, str]]) -> str:
    return "; ".join(f"{p['field']}: {p['problem']}" for p in items)


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
