"""The field types of the HTTP API's requests (worker/api_models.py builds its models from
them): bounds, patterns, watch intervals as numbers or text, query-string integers; and how
a refusal names each field and its problem.

Character classes are spelled out, never \\s, \\d or `.`: the document's patterns are read by
ECMA-262 engines, pydantic's by Rust's regex and the CLI's by Python's re, and those three
disagree on what \\s and `.` match (U+FEFF, U+0085, \\r) and on Unicode digits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from core.stall import ANY_STATE
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
    "Interval",
    "QueryInt",
    "RKey",
    "ResourceId",
    "Source",
    "StallAfter",
    "absent",
    "integer_range_pattern",
    "one_line",
    "problems",
    "query_values",
]

MAX_IDS = 10_000
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

MAX_STALL_STATES = 64
MAX_STATE_NAME = 100
_STALL_DURATION: dict[str, Any] = {"anyOf": [
    {"type": "number", "enum": [0]},
    {"type": "number", "minimum": MIN_DURATION, "maximum": MAX_DURATION},
    {"type": "string", "pattern": INTERVAL_TEXT},
]}


def _stall_duration(value: Any) -> float:
    if not isinstance(value, bool) and isinstance(value, int | float) and value == 0:
        return 0.0
    return _interval(value)


def _stall_after(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {ANY_STATE: _stall_duration(value)}
    if len(value) > MAX_STALL_STATES:
        raise ValueError(f"at most {MAX_STALL_STATES} states")
    out = {}
    for state, seconds in value.items():
        if not isinstance(state, str) or not 0 < len(state) <= MAX_STATE_NAME:
            raise ValueError(f"a state is a name of 1 to {MAX_STATE_NAME} characters")
        try:
            out[state] = _stall_duration(seconds)
        except ValueError as exc:
            raise ValueError(f"{state}: {exc}") from None
    return out


StallAfter = Annotated[dict[str, float], PlainValidator(_stall_after), WithJsonSchema({
    "anyOf": [_STALL_DURATION, {"type": "object", "maxProperties": MAX_STALL_STATES,
                                "propertyNames": {"minLength": 1, "maxLength": MAX_STATE_NAME},
                                "additionalProperties": _STALL_DURATION}],
    "description": "how long a resource may stay in one state before one *.stalled event: one duration for "
                   "every state, or an object by state name (`*`: any other state); 0 is off",
})]
"""A watch's `stall_after`: one duration (or 0, off) for every state, or a table by state."""

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


def absent(description: str | None = None) -> Any:
    """An optional query parameter: absent is None, which a query string cannot say (so the
    document has neither a null nor a default for it)."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


QueryInt = Annotated[int, BeforeValidator(_query_int)]


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

