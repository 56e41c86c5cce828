"""The interface every provider implements, and the HTTP plumbing they share.

A provider knows one API: how to authenticate, fetch one resource, list a collection,
normalize a payload (dropping volatile values such as presigned URLs) and name the
events a change means. It knows nothing about Redis or ARQ.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from model.errors import MalformedPayload, NotFound, ProviderError, RateLimited, Unauthorized, Unavailable
from model.events import Change, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef, ScanPage, Snapshot
from model.values import Duration, DurationOrOff
from transport.http import NoReply, Outcome, Reply, error_words, send

__all__ = [
    "NonBlank",
    "Provider",
    "ProviderSettings",
    "ScanFilter",
    "error_for_reply",
    "scan_filter_problems",
]


class ProviderSettings(BaseModel):
    """Settings every provider has. Each provider extends this in its own file."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    max_concurrency: int = Field(default=16, ge=1, le=1024)
    requests_per_second: float = Field(default=20.0, gt=0)
    timeout: Duration = 10.0
    interval_active: Duration | None = None
    interval_idle: Duration | None = None
    terminal_tail: DurationOrOff = 0.0
    terminal_interval: Duration = 3600.0


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float
    issued_at: float = field(default_factory=time.monotonic)
    after_401: bool = False


FRESH_TOKEN = 30.0
"""Seconds during which a refused token is not replaced (it cannot have expired)."""


NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ScanFilter(BaseModel):
    """The keys a provider's scan reads from its spec (a watch's `scan = {…}`, `watch scan -p`).
    Each provider that scans declares its own; any other key is a mistake that would be stored
    with the watch and ignored by every scan."""

    model_config = ConfigDict(extra="forbid")


def scan_filter_problems(provider: type[Provider], spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for each thing wrong with `spec` as `provider`'s scan filter, each
    naming the keys it accepts; [] when it is right."""
    model = provider.scan_filter
    if model is None:
        return [("", f"{provider.name} cannot scan (it watches ids only)")]
    try:
        model.model_validate(spec)
    except ValidationError as exc:
        accepted = f"(accepted: {', '.join(model.model_fields)})" if model.model_fields else "(it takes no parameters)"
        out = []
        for error in exc.errors(include_input=False, include_url=False):
            key = ".".join(str(x) for x in error["loc"])
            if error["type"] == "extra_forbidden":
                out.append((key, f"not a key of {provider.name}'s scan {accepted}"))
            elif error["type"] == "missing":
                out.append((key, f"required by {provider.name}'s scan {accepted}"))
            else:
                out.append((key, str(error["msg"])))
        return out
    return []


def error_for_reply(reply: Reply, message: str) -> ProviderError:
    """The ProviderError a refused request means (`message` says who and why)."""
    match reply.outcome:
        case Outcome.UNAUTHORIZED:
            return Unauthorized(message, status=reply.status)
        case Outcome.NOT_FOUND:
            return NotFound(message, status=reply.status)
        case Outcome.RATE_LIMITED:
            return RateLimited(message, retry_after=reply.retry_after(), status=reply.status)
        case Outcome.RETRY:
            return Unavailable(message, status=reply.status)
        case _:
            return ProviderError(message, status=reply.status)


class Provider(ABC):
    name: ClassVar[str]
    settings_model: ClassVar[type[ProviderSettings]] = ProviderSettings
    default_kind: ClassVar[str] = "order"
    kinds: ClassVar[tuple[str, ...]] = ("order",)
    scan_filter: ClassVar[type[ScanFilter] | None] = None
    """What `scan` reads from its spec; None: this provider cannot scan."""

    def __init__(self, settings: ProviderSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.base_url = settings.base_url.rstrip("/")
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    # ---- what a provider implements -------------------------------------------------

    fingerprint_blanks: tuple[str, ...] | None = None
    """Keys whose string values are volatile wherever they occur in a payload (presigned
    URLs); () when nothing in it is volatile. When set, `fetch_body` gives the raw body, the
    poller fingerprints it with these values blanked, and a body whose fingerprint matches
    the last one is unchanged without a parse. Left None, every poll parses, normalizes and
    digests: for a payload whose volatile values cannot be blanked whole (a presigned URL
    whose path still counts), a fingerprint would differ on every answer."""

    @abstractmethod
    async def fetch(self, ref: ResourceRef) -> Any:
        """The parsed payload of one resource. Raises a ProviderError subclass."""

    async def fetch_body(self, ref: ResourceRef) -> bytes:
        """The raw body of one resource, for providers that set `fingerprint_blanks`."""
        raise NotImplementedError(f"{self.name} does not fetch raw bodies")

    @abstractmethod
    def normalize(self, ref: ResourceRef, payload: Any) -> Snapshot:
        """A canonical snapshot without volatile values. Raises MalformedPayload."""

    @abstractmethod
    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo: ...

    @abstractmethod
    def classify(
        self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]
    ) -> list[EventDraft]: ...

    async def scan(self, ref: ResourceRef, spec: Mapping[str, str]) -> AsyncIterator[ScanPage]:
        """Pages of the resources of a collection. Providers that list override this."""
        raise NotImplementedError(f"{self.name} cannot scan")
        yield []  # pragma: no cover

    # ---- shared behaviour ------------------------------------------------------------

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

    def severity_of_state(self, state: str | None) -> Severity:
        return Severity.INFO

    async def auth_headers(self, *, refresh: bool = False) -> dict[str, str]:
        """Headers that authenticate a request. Token-based providers override `new_token`."""
        token = await self._bearer(refresh=refresh)
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def new_token(self) -> tuple[str, float] | None:
        """(token, lifetime in seconds) for bearer-token providers; None if not one."""
        return None

    @property
    def refreshes_tokens(self) -> bool:
        return type(self).new_token is not Provider.new_token

    async def _bearer(self, *, refresh: bool, rejected: str | None = None) -> str | None:
        """The cached token, or a new one. `rejected` is the token a 401 refused: when
        another task has already replaced it, that replacement is used, so a burst of
        concurrent 401s costs one refresh, not one per request."""
        now = time.monotonic()
        if not refresh and self._token and self._token.expires_at > now:
            return self._token.value
        stale = self._token
        async with self._token_lock:
            current = self._token
            if current and current.expires_at > time.monotonic() and (
                (not refresh and current is not stale) or (rejected is not None and current.value != rejected)
            ):
                return current.value
            got = await self.new_token()
            if got is None:
                return None
            value, lifetime = got
            # refresh a minute early so a token never expires in flight
            self._token = _Token(value, time.monotonic() + max(5.0, lifetime - 60.0))
            return value

    async def _replace(self, rejected: str | None) -> bool:
        """After a 401: is there another token worth one more try? A token that was itself
        fetched moments ago because of a 401, and is refused too, means bad credentials or
        permissions, not expiry: no refresh storm then, one refresh per FRESH_TOKEN at most."""
        current = self._token
        if (
            current is not None
            and current.value == rejected
            and current.after_401
            and time.monotonic() - current.issued_at < FRESH_TOKEN
        ):
            return False
        got = await self._bearer(refresh=True, rejected=rejected)
        if self._token is not None and self._token is not current and got != rejected:
            self._token.after_401 = True
        return got not in (None, rejected)

    async def get_json(self, url: str, *, params: Mapping[str, str] | None = None) -> Any:
        """GET `url` with auth, mapping statuses to ProviderErrors; refreshes the token once on 401."""
        body = await self.get_bytes(url, params=params)
        return self.parse(body)

    async def get_bytes(
        self, url: str, *, params: Mapping[str, str] | None = None, read_bufsize: int | None = None
    ) -> bytes:
        """`read_bufsize`: how much of the body may arrive while nobody reads it (aiohttp
        pauses the socket at twice this; its default, 64 KiB, stalls a multi-megabyte list
        page that is fetched ahead while the page before it is compared)."""
        used: str | None = None
        for attempt in (0, 1):
            headers = await self.auth_headers()
            headers.setdefault("Accept", "application/json")
            used = self._token.value if self._token else None
            try:
                reply = await send(self.session, "GET", url, params=params, headers=headers,
                                   timeout=self.settings.timeout, read_bufsize=read_bufsize)
            except NoReply as exc:
                raise Unavailable(f"{self.name}: {exc.reason}") from exc
            if reply.outcome is Outcome.OK:
                return reply.body
            if (reply.outcome is Outcome.UNAUTHORIZED and attempt == 0 and self.refreshes_tokens
                    and await self._replace(used)):
                continue
            raise self.error_for(reply)
        raise AssertionError("unreachable")  # pragma: no cover

    def error_for(self, reply: Reply) -> ProviderError:
        reason = self.error_reason(reply.body)
        return error_for_reply(reply, f"{self.name}: HTTP {reply.status}" + (f": {reason}" if reason else ""))

    @staticmethod
    def error_reason(body: bytes) -> str:
        """The provider's own words for an error: `{"detail": …}` or `{code, message}`."""
        return error_words(body)

    def parse(self, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedPayload(f"{self.name}: body is not JSON ({exc.msg})") from exc

    async def close(self) -> None:
        """Release anything beyond the shared session (which the worker owns)."""

