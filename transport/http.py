"""One way to send an HTTP request and one reading of what came back, for providers and
notifiers alike.

`send` answers a `Reply` (the status, the body, the Retry-After header) or raises `NoReply`
(a timeout, a refused or broken connection). `outcome_of(status)` says what a status means
for whoever sent it; each family turns an outcome into its own errors (a provider's
`Unavailable`, a notifier's `TransientFailure`). Nothing here names the URL in an error: a
webhook or Slack URL is a secret.
"""

from __future__ import annotations

import email.utils
import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import orjson

from model.values import MAX_RETRY_DELAY

__all__ = ["NoReply", "Outcome", "Reply", "error_words", "outcome_of", "parse_retry_after", "send"]


class Outcome(StrEnum):
    OK = "ok"
    """2xx"""
    UNAUTHORIZED = "unauthorized"
    """401, 403: the credentials were refused"""
    NOT_FOUND = "not_found"
    """404"""
    GONE = "gone"
    """410: the target says it is gone for good"""
    RATE_LIMITED = "rate_limited"
    """429: later, after Retry-After"""
    RETRY = "retry"
    """408, 425, 5xx: the same request may work later"""
    REFUSED = "refused"
    """every other status: sending it again will not help"""


_BY_STATUS = {401: Outcome.UNAUTHORIZED, 403: Outcome.UNAUTHORIZED, 404: Outcome.NOT_FOUND, 410: Outcome.GONE,
              429: Outcome.RATE_LIMITED, 408: Outcome.RETRY, 425: Outcome.RETRY}


def outcome_of(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.OK
    if status >= 500:
        return Outcome.RETRY
    return _BY_STATUS.get(status, Outcome.REFUSED)


MAX_RETRY_AFTER = MAX_RETRY_DELAY
"""The longest Retry-After taken as said (`inf`, `1e400` or a date years off: a day), the
longest a delivery's retry waits too."""


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), from 0 to a day;
    `default` when absent or unreadable."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return default
    if math.isnan(seconds):
        return default
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    retry_after_header: str | None = None

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.status)

    def retry_after(self, default: float = 1.0) -> float:
        return parse_retry_after(self.retry_after_header, default)

    def text(self, limit: int = 200) -> str:
        """The body as text, stripped, at most `limit` characters (for an error's reason)."""
        return self.body.decode(errors="replace").strip()[:limit]


class NoReply(Exception):
    """No HTTP answer: `reason` says what (`timeout after 10s`, `connection failed: …`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    data: Any = None,
    max_body: int | None = None,
    read_bufsize: int | None = None,
    allow_redirects: bool = True,
) -> Reply:
    """One request, its whole answer read within `timeout` seconds. `max_body` keeps at most
    that many bytes of the body (a destination's answer is only ever a reason); `read_bufsize`
    is how much may arrive while nobody reads (aiohttp pauses the socket at twice this)."""
    try:
        async with session.request(
            method, url, headers=headers, params=params, data=data, allow_redirects=allow_redirects,
            timeout=_total(timeout), read_bufsize=read_bufsize,
        ) as resp:
            body = await (resp.read() if max_body is None else resp.content.read(max_body))
            return Reply(resp.status, body, resp.headers.get("Retry-After"))
    except TimeoutError as exc:
        raise NoReply(f"timeout after {timeout:g}s") from exc
    except aiohttp.ClientError as exc:
        raise NoReply(f"connection failed: {type(exc).__name__}") from exc


@functools.lru_cache(maxsize=64)
def _total(seconds: float) -> aiohttp.ClientTimeout:
    """One (immutable) timeout object per value, not one per request."""
    return aiohttp.ClientTimeout(total=seconds)


def error_words(body: bytes, keys: tuple[str, ...] = ("detail", "message", "error_description", "error")) -> str:
    """An API's own words for an error: the first string among `keys` of a JSON object
    body (at most 200 characters), else ""."""
    if not body:
        return ""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(parsed, dict):
        for key in keys:
            if isinstance(parsed.get(key), str):
                return str(parsed[key])[:200]
    return ""
