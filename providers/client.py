"""A provider's HTTP side: one authenticated GET, sent again once after a 401 when the auth
strategy (providers/auth.py) has a fresher credential, and the ProviderError each refused
reply means (transport/http.py's outcomes turned into model.errors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import aiohttp

from model.errors import NotFound, ProviderError, RateLimited, Unauthorized, Unavailable
from transport.http import NoReply, Outcome, Reply, error_words, send

__all__ = ["Auth", "Client", "error_for_reply"]


class Auth(Protocol):
    """How a provider's requests are authenticated (providers/auth.py has the strategies)."""

    async def headers(self, session: aiohttp.ClientSession) -> tuple[dict[str, str], str | None]:
        """Headers that authenticate a request, and the credential they carry that a 401
        would refuse (None when nothing could replace it)."""
        ...

    async def retry_after_401(self, session: aiohttp.ClientSession, rejected: str | None) -> bool:
        """After a 401 refused `rejected`: is there another credential worth one more try?"""
        ...


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


class Client:
    """GETs for provider `name` on a session the worker owns."""

    def __init__(
        self,
        name: str,
        session: aiohttp.ClientSession,
        auth: Auth,
        *,
        timeout: float,
        error_reason: Callable[[bytes], str] = error_words,
    ) -> None:
        self.name = name
        self.session = session
        self.auth = auth
        self.timeout = timeout
        self.error_reason = error_reason

    async def get_bytes(
        self, url: str, *, params: Mapping[str, str] | None = None, read_bufsize: int | None = None
    ) -> bytes:
        """The body of a 2xx answer to GET `url`, else the ProviderError the answer means.
        `read_bufsize`: how much of the body may arrive while nobody reads it (aiohttp
        pauses the socket at twice this; its default, 64 KiB, stalls a multi-megabyte list
        page that is fetched ahead while the page before it is compared)."""
        for attempt in (0, 1):
            headers, used = await self.auth.headers(self.session)
            headers.setdefault("Accept", "application/json")
            try:
                reply = await send(self.session, "GET", url, params=params, headers=headers,
                                   timeout=self.timeout, read_bufsize=read_bufsize)
            except NoReply as exc:
                raise Unavailable(f"{self.name}: {exc.reason}") from exc
            if reply.outcome is Outcome.OK:
                return reply.body
            if (reply.outcome is Outcome.UNAUTHORIZED and attempt == 0
                    and await self.auth.retry_after_401(self.session, used)):
                continue
            raise self.error_for(reply)
        raise AssertionError("unreachable")  # pragma: no cover

    def error_for(self, reply: Reply) -> ProviderError:
        reason = self.error_reason(reply.body)
        return error_for_reply(reply, f"{self.name}: HTTP {reply.status}" + (f": {reason}" if reason else ""))
