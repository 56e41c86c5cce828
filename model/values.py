"""The config file's own models: watches and routes, and the small value types they use.

Providers and destinations are validated by the models their own modules declare
(`Provider.settings_model`, `Notifier.settings_model`), so that adding one touches
nothing here.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

__all__ = [
    "ID_PATTERN",
    "ID_RULE",
    "MAX_DURATION",
    "MAX_RETRIES",
    "MAX_RETRY_DELAY",
    "MAX_RETRY_SPAN",
    "MIN_DURATION",
    "MIN_TUNING",
    "TEMPLATE_KEYS",
    "Duration",
    "DurationOrOff",
    "HttpUrl",
    "HttpUrlOrDerived",
    "ResourceId",
    "RetryDelay",
    "RetrySchedule",
    "TemplateKey",
    "Templates",
    "TuningDuration",
    "check_duration",
    "format_seconds",
    "parse_duration",
]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"5m"`, `"1h30m"`, `"250ms"`. Unbounded (`inf` and `nan`
    parse): the types below check the bounds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an int past 1e308
            return math.inf
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    text = value.strip().lower().replace(" ", "")
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        # never the value: a secret pasted into the wrong variable would be printed
        raise ValueError("not a duration: a number of seconds, or amounts of ms, s, m, h, d (e.g. 30s, 5m, 1h30m)")
    return total


MAX_DURATION = 30 * 86400.0
"""No duration is longer than 30 days (a longer one is a typo, or an attempt to stop polling)."""
MIN_DURATION = 0.1
"""The shortest watch interval, throttle, digest window, lease or timeout. (1 s is the aim; the
test suite's own configs poll every 0.2 s and throttle at 0.4 s.)"""
MIN_TUNING = 0.05
"""The shortest worker tuning period (`health_interval`, `reclaim_idle`): benchmarks beat every 0.25 s."""


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_seconds(seconds: float) -> str:
    """`0.1` → `100ms`, `30` → `30s`, `2592000` → `30d`, `311040` → `3d 14h 24m`: how a
    bound or a total reads in an error."""
    if seconds >= 1 and float(seconds).is_integer():
        left, parts = int(seconds), []
        for unit, size in _UNITS:
            if left >= size:
                parts.append(f"{left // size}{unit}")
                left %= size
        return " ".join(parts)
    return f"{seconds * 1000:g}ms"


def check_duration(seconds: float, lo: float = MIN_DURATION, hi: float = MAX_DURATION, *,
                   zero: bool = False) -> float:
    """`seconds` when it is finite and within [lo, hi] (or 0 when `zero` allows "off");
    else ValueError saying the bounds (not the value)."""
    if zero and seconds == 0:
        return 0.0
    bounds = f"from {format_seconds(lo)} to {format_seconds(hi)}{' (or 0: off)' if zero else ''}"
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite duration: use e.g. 30s, 5m, 1h ({bounds})")
    if seconds < lo:
        raise ValueError(f"too short: a duration here is {bounds}")
    if seconds > hi:
        raise ValueError(f"too long: a duration here is {bounds}")
    return seconds


def _duration(value: float) -> float:
    return check_duration(value)


def _tuning(value: float) -> float:
    return check_duration(value, MIN_TUNING)


def _or_off(value: float) -> float:
    return check_duration(value, zero=True)


Duration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_duration)]
"""Seconds, finite, from MIN_DURATION to MAX_DURATION: watch intervals, throttles, digests,
leases, timeouts, the providers' intervals. `90`, `"90s"`, `"5m"`, `"1h30m"`."""

TuningDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_tuning)]
"""A Duration that may be as short as MIN_TUNING: the worker's heartbeat and reclaim periods."""

DurationOrOff = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_or_off)]
"""A Duration, or 0 for "off" (a terminal resource's slow-poll tail)."""

MAX_RETRY_DELAY = 86_400.0
"""The longest wait before one retry, a destination's Retry-After included: ARQ forgets a
job's try count when it waits longer than ~24.5 h (its schedule would start over)."""
MAX_RETRY_SPAN = 2 * 86_400.0
"""The longest a retry schedule may add up to, jitter included: a delivery job expires three
days after it was enqueued (worker/queue.py DELIVER_EXPIRES), and a job that expires is lost."""


def _retry_delay(value: float) -> float:
    return check_duration(value, 0.0, MAX_RETRY_DELAY)


RetryDelay = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_retry_delay)]
"""Seconds before a retry: from 0 (retry at once) to a day."""

MAX_RETRIES = 100

RetrySchedule = Annotated[list[RetryDelay], Field(max_length=MAX_RETRIES)]
"""The delays before retries 1..n (`[5, "5m", "30m"]`); its length is the number of retries."""

TemplateKey = Literal[
    "subject", "body", "text", "html", "slack", "digest_subject", "digest_text", "digest_html", "digest_slack"
]
"""What a template renders: `subject` (email subject and Slack fallback text), `text` and
`html` (email parts), `slack` (the Slack message section), `body` (text and Slack at once);
the `digest_` ones render a digest of several events. See notifiers/templates.py."""

TEMPLATE_KEYS: tuple[str, ...] = get_args(TemplateKey)


def _body_shorthand(value: Any) -> Any:
    return {"body": value} if isinstance(value, str) else value


Templates = Annotated[dict[TemplateKey, str], BeforeValidator(_body_shorthand)]
"""Jinja2 sources by what they render. A plain string is the `body`."""


# Character classes are spelled out, never \s, \d or `.`: the API's document is read by
# ECMA-262 engines, pydantic's patterns by Rust's regex and the rest by Python's re, and those
# three disagree on what \s and `.` match (U+FEFF, U+0085, \r) and on Unicode digits.
_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
ID_PATTERN = rf"^[^{_SPACE}/?#]{{1,256}}$"
"""A resource id wherever one is given (the file, the API, the CLI): no whitespace, no URL
delimiters (an id is part of its resource's key, and the key of a URL path)."""
ID_RULE = "an id is 1 to 256 characters, without whitespace, '/', '?' or '#'"
_ID = re.compile(ID_PATTERN)


def _resource_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(ID_RULE)
    return value


ResourceId = Annotated[str, AfterValidator(_resource_id)]
"""A provider's id of one resource (ID_PATTERN), as given."""


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")  # the value may hold a credential
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""A provider's base or token URL: http(s) with a host, kept as written."""

HttpUrlOrDerived = Annotated[str, AfterValidator(lambda value: value and _http_url(value))]
"""An HttpUrl, or "" for one the provider derives from its other settings."""
