"""How providers authenticate, one strategy each: a static header (Rev, Deepomatic), or a
bearer token from an OAuth2 token endpoint, by client credentials (Artistree) or by the
password grant (Sartiq).

A token is asked for once and cached until a minute before it expires; the token endpoint
call, its errors and the cache are written once, in `TokenGrant`. A strategy holds no
session: the client passes its own.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
import orjson
from pydantic import SecretStr

from model.errors import ProviderError, Unauthorized, Unavailable
from providers.client import error_for_reply
from providers.spec import parse_json
from transport.http import NoReply, Outcome, Reply, error_words, send

__all__ = ["FRESH_TOKEN", "ClientCredentials", "PasswordGrant", "StaticHeader", "TokenGrant", "jwt_lifetime"]

FRESH_TOKEN = 30.0
"""Seconds during which a refused token is not replaced (it cannot have expired)."""


class StaticHeader:
    """Fixed headers (API keys): nothing to refresh, so a 401 is final."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    async def headers(self, session: aiohttp.ClientSession) -> tuple[dict[str, str], str | None]:
        return dict(self._headers), None

    async def retry_after_401(self, session: aiohttp.ClientSession, rejected: str | None) -> bool:
        return False


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float
    issued_at: float = field(default_factory=time.monotonic)
    after_401: bool = False


class TokenGrant(ABC):
    """A bearer token POSTed for at `url` (a form), cached, replaced after expiry or a 401.
    Subclasses say what the form and headers hold, what a refusal means and how long an
    answered token lives."""

    endpoint: ClassVar[str] = "token endpoint"
    """How errors name the token endpoint."""

    def __init__(self, name: str, url: str, *, timeout: float, default_lifetime: float = 3600.0) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self.default_lifetime = default_lifetime
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    # ---- what a grant says ----------------------------------------------------------

    @abstractmethod
    def form(self) -> dict[str, str]: ...

    def request_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    @abstractmethod
    def refused(self, reply: Reply) -> ProviderError:
        """The error a non-2xx answer of the token endpoint means."""

    @abstractmethod
    def lifetime(self, answer: dict[str, Any], token: str) -> float:
        """Seconds the token in `answer` lives."""

    # ---- the token endpoint, once for every grant ---------------------------------------

    async def new_token(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        """(token, lifetime in seconds), asked of the token endpoint."""
        try:
            reply = await send(session, "POST", self.url, data=self.form(), headers=self.request_headers(),
                               timeout=self.timeout)
        except NoReply as exc:
            raise Unavailable(f"{self.name}: {self.endpoint} unreachable ({exc.reason})") from exc
        if reply.outcome is not Outcome.OK:
            raise self.refused(reply)
        answer = parse_json(self.name, reply.body)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise Unauthorized(f"{self.name}: {self.endpoint} answered without an access_token")
        return token, self.lifetime(answer, token)

    # ---- the cache ----------------------------------------------------------------------

    async def headers(self, session: aiohttp.ClientSession) -> tuple[dict[str, str], str | None]:
        token = await self._bearer(session, refresh=False)
        return {"Authorization": f"Bearer {token}"}, token

    async def _bearer(self, session: aiohttp.ClientSession, *, refresh: bool, rejected: str | None = None) -> str:
        """The cached token, or a new one. `rejected` is the token a 401 refused: when
        another task has already replaced it, that replacement is used, so a burst of
        concurrent 401s costs one refresh, not one per request."""
        now = time.monotonic()
        if not refresh and self._token and self._token.expires_at > now:
            return self._token.value
        stale = self._token
        async with self._lock:
            current = self._token
            if current and current.expires_at > time.monotonic() and (
                (not refresh and current is not stale) or (rejected is not None and current.value != rejected)
            ):
                return current.value
            value, lifetime = await self.new_token(session)
            # refresh a minute early so a token never expires in flight
            self._token = _Token(value, time.monotonic() + max(5.0, lifetime - 60.0))
            return value

    async def retry_after_401(self, session: aiohttp.ClientSession, rejected: str | None) -> bool:
        """A token that was itself fetched moments ago because of a 401, and is refused
        too, means bad credentials or permissions, not expiry: no refresh storm then, one
        refresh per FRESH_TOKEN at most."""
        current = self._token
        if (
            current is not None
            and current.value == rejected
            and current.after_401
            and time.monotonic() - current.issued_at < FRESH_TOKEN
        ):
            return False
        got = await self._bearer(session, refresh=True, rejected=rejected)
        if self._token is not None and self._token is not current and got != rejected:
            self._token.after_401 = True
        return got != rejected


class ClientCredentials(TokenGrant):
    """OAuth2 client credentials (RFC 6749 §4.4), the client authenticated with HTTP Basic."""

    def __init__(self, name: str, url: str, client_id: str, client_secret: SecretStr, *, scope: str | None,
                 timeout: float) -> None:
        super().__init__(name, url, timeout=timeout)
        self.client_id, self.client_secret, self.scope = client_id, client_secret, scope

    def form(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        return form

    def request_headers(self) -> dict[str, str]:
        cred = f"{self.client_id}:{self.client_secret.get_secret_value()}"
        return {"Authorization": "Basic " + base64.b64encode(cred.encode()).decode()}

    def refused(self, reply: Reply) -> ProviderError:
        if reply.status == 400 or reply.outcome is Outcome.UNAUTHORIZED:  # OAuth's invalid_client is a 400
            return Unauthorized(f"{self.name}: {self.endpoint} refused the client credentials (HTTP {reply.status})",
                                status=reply.status)
        return Unavailable(f"{self.name}: {self.endpoint} HTTP {reply.status}", status=reply.status)

    def lifetime(self, answer: dict[str, Any], token: str) -> float:
        """The answer's `expires_in` when it is a number of seconds, else `default_lifetime`."""
        return _seconds(answer.get("expires_in")) or self.default_lifetime


class PasswordGrant(TokenGrant):
    """OAuth2 password grant (RFC 6749 §4.3): a form-encoded username and password. The
    lifetime is the answer's `expires_in`, else the JWT's `exp`, else `default_lifetime`."""

    endpoint = "login endpoint"

    def __init__(self, name: str, url: str, username: str, password: SecretStr, *, timeout: float,
                 default_lifetime: float) -> None:
        super().__init__(name, url, timeout=timeout, default_lifetime=default_lifetime)
        self.username, self.password = username, password

    def form(self) -> dict[str, str]:
        return {"grant_type": "password", "username": self.username, "password": self.password.get_secret_value()}

    def refused(self, reply: Reply) -> ProviderError:
        """A refused login names the user and the API's reason, never the password (a 422
        echoes the form's input, so only a string `detail` is quoted, and scrubbed)."""
        reason = error_words(reply.body).replace(self.password.get_secret_value(), "***")
        message = f"{self.name}: login as {self.username!r} refused (HTTP {reply.status})" + (
            f": {reason}" if reason else ""
        )
        if reply.status in (400, 422):  # a refused password grant, or FastAPI's form validation
            return Unauthorized(message, status=reply.status)
        return error_for_reply(reply, message)

    def lifetime(self, answer: dict[str, Any], token: str) -> float:
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return float(expires_in)
        return jwt_lifetime(token) or self.default_lifetime


def jwt_lifetime(token: str) -> float | None:
    """Seconds until a JWT's `exp`, read without verifying (only to schedule a refresh)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    return exp - time.time()


def _seconds(value: Any) -> float | None:
    """A token endpoint's `expires_in` (a number, or digits in a string), None for anything
    else: a lifetime that cannot be read is the default one, not a failed sign-in."""
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None
