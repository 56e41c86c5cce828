"""The HTTP API's plumbing shared by its routes (worker/api.py assembles them): the state an
app holds, JSON answers and refusals, the bearer check, the middlewares that make every
answer JSON and bound the time a request may spend on Redis, and reading a body or a
query string."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from arq.connections import ArqRedis
from pydantic import BaseModel, ValidationError

from config import Config
from store.reads import Reads
from store.registry import WorkerRegistry
from store.snapshots import Store
from worker import api_models as models
from worker.persistence import redis_down, redis_problem

__all__ = [
    "BODY_TIMEOUT",
    "DEADLINE",
    "FORM_ERRORS",
    "REDIS_DEADLINE",
    "RETRY_AFTER",
    "STATE",
    "ApiState",
    "RedisStatus",
    "answer",
    "auth_middleware",
    "check_bearer",
    "error",
    "errors_middleware",
    "json_body",
    "json_response",
    "query_of",
    "read_body",
    "receiving_body",
    "redis_unavailable",
    "start_deadline",
    "state_of",
]

log = logging.getLogger("statehook.api")

RETRY_AFTER = "5"
"""seconds, in the Retry-After of a 503 while Redis is unavailable"""
REDIS_DEADLINE = 3.0
"""seconds a request may spend on Redis (counted once its body is read): past it, 503. Each
call has its own timeouts (worker.persistence.API_TIMEOUTS), but concurrent requests to a
hung Redis queue behind one another's connects in redis-py's pool."""
BODY_TIMEOUT = 10.0
"""seconds a request body may take to arrive: past it, 408 (a client that stops sending
would otherwise hold the request open)."""
FORM_ERRORS = (ValueError, LookupError, RuntimeError)
"""what aiohttp's `request.post()` raises for a body that is no form it can read: not a
multipart body (ValueError), a charset that does not exist (LookupError), a part's unknown
Content-Transfer-Encoding (RuntimeError)"""


CLOSE = web.RequestKey("close", bool)
"""set on a request whose body could not be read: its answer closes the connection"""
PING_TIMEOUT = 1.0
"""seconds the API waits for a PING that would end an outage it logged"""


class RedisStatus:
    """Whether this API process finds Redis unavailable: one log line when that starts,
    one when Redis answers again (not one per refused request)."""

    def __init__(self) -> None:
        self.down_since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("api: Redis unavailable (%s): answering 503 until it is back", redis_problem(exc))

    def ok(self) -> None:
        if self.down_since is not None:
            log.warning("api: Redis available again after %.1fs", time.monotonic() - self.down_since)
            self.down_since = None

    async def answered(self, redis: ArqRedis) -> None:
        """A request was answered: while Redis was found down, a PING says whether it is back
        (a page that never reads Redis, or one that says it is unavailable, proves nothing)."""
        if self.down_since is None:
            return
        try:
            await asyncio.wait_for(redis.ping(), PING_TIMEOUT)
        except Exception:  # still down, in whatever way
            return
        self.ok()


@dataclass
class ApiState:
    config: Config
    redis: ArqRedis
    store: Store
    reads: Reads
    registry: WorkerRegistry
    token: bytes | None
    hook_tokens: dict[str, bytes]
    redis_status: RedisStatus
    openapi: dict[str, Any]


STATE = web.AppKey("statehook", ApiState)
DEADLINE = web.RequestKey("statehook.deadline", asyncio.Timeout)


def start_deadline(request: web.Request) -> None:
    """From now on, the request has REDIS_DEADLINE seconds (called once its body is read:
    a slow upload is not Redis being slow)."""
    deadline = request.get(DEADLINE)
    if deadline is not None and deadline.when() is None:
        deadline.reschedule(asyncio.get_running_loop().time() + REDIS_DEADLINE)


def error(status: int, reason: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> web.Response:
    """A refusal, as the document's Error has it (an undeclared `extra` is a bug: it raises)."""
    body = models.Error(error=reason, **extra).model_dump(exclude_none=True)
    return json_response(body, status=status, headers=headers)


def answer(model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None, *,
           exclude_none: bool = False) -> web.Response:
    return json_response(model.model_dump(mode="json", exclude_none=exclude_none), status=status, headers=headers)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


def state_of(request: web.Request) -> ApiState:
    return request.app[STATE]


def is_management(path: str) -> bool:
    return path.startswith("/v1/") and not path.startswith("/v1/hooks/")


def check_bearer(header: str | None, token: bytes | None) -> str | None:
    """Why a management call is refused, or None. Constant-time comparison."""
    if token is None:
        return "management API disabled: set STATEHOOK_API__TOKEN"
    if not header:
        return "missing Authorization: Bearer <token>"
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "Authorization must be: Bearer <token>"
    # a header's bytes that are not UTF-8 arrive as surrogate escapes: compared as the bytes sent
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token):
        return "invalid token"
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def redis_unavailable(exc: BaseException) -> web.Response:
    """503 for a Redis that cannot serve now: its kind of failure, never its message (which
    can carry a host or the URL)."""
    return error(503, f"redis unavailable: {redis_problem(exc)}", headers={"Retry-After": RETRY_AFTER})


_KEPT = ("Allow", "Retry-After", "WWW-Authenticate")


def kept_headers(exc: web.HTTPException) -> dict[str, str]:
    """What an aiohttp refusal says in its headers that its JSON rewrite must keep: a 405's
    Allow above all."""
    return {name: exc.headers[name] for name in _KEPT if name in exc.headers}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON, including aiohttp's own 404/405/413 and unexpected errors:
    Redis unavailable is 503 (with Retry-After), anything else unexpected 500 (the
    traceback goes to the log, never into the answer)."""
    status = state_of(request).redis_status
    try:
        async with asyncio.timeout(None) as deadline:
            request[DEADLINE] = deadline
            if request.method in ("GET", "HEAD") or not request.can_read_body:
                start_deadline(request)  # else once the handler has read the body
            response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        refused = error(exc.status, exc.reason, headers=kept_headers(exc))
        if request.get(CLOSE):
            refused.force_close()
        return refused
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if redis_down(exc):
            status.failed(exc)
            return redis_unavailable(exc)
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal error")
    if response.status < 300 and request.path != "/openapi.json":
        await status.answered(state_of(request).redis)
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_management(request.path):
        token = state_of(request).token
        reason = check_bearer(request.headers.get("Authorization"), token)
        if reason is not None:
            if token is None:
                return error(403, reason)
            return error(401, reason, headers={"WWW-Authenticate": 'Bearer realm="statehook"'})
    return await handler(request)


@contextlib.asynccontextmanager
async def receiving_body(request: web.Request) -> AsyncIterator[None]:
    """Around a read of the body: 408 past BODY_TIMEOUT, 400 for a body aiohttp cannot read
    (a Content-Encoding whose data does not decode: it raised out of the handler, a 500).
    Such a body is not read further: the answer closes the connection, and aiohttp does not
    drain the rest (which raised again, an "Unhandled exception" in the log)."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            yield
    except TimeoutError:
        raise web.HTTPRequestTimeout(reason=f"the body took longer than {BODY_TIMEOUT:g}s to arrive") from None
    except RequestPayloadError:
        request.content.feed_eof()
        request[CLOSE] = True
        raise web.HTTPBadRequest(reason="the body could not be read: its Content-Encoding does not decode") from None


async def read_body(request: web.Request) -> bytes:
    """The body, within BODY_TIMEOUT; then the Redis deadline starts."""
    async with receiving_body(request):
        raw = await request.read()
    start_deadline(request)
    return raw


async def json_body(request: web.Request) -> dict[str, Any] | web.Response:
    if not request.can_read_body:
        return error(400, "a JSON body is required")
    try:
        data = orjson.loads(await read_body(request))
    except orjson.JSONDecodeError as exc:
        return error(400, f"body is not JSON: {exc.msg}")
    if not isinstance(data, dict):
        return error(400, "body must be a JSON object")
    return data


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Mapping[str, Any], what: str) -> M | web.Response:
    """`data` validated by `model`; 400 `invalid {what}: …` naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = models.problems(exc)
        return error(400, f"invalid {what}: {models.one_line(problems)}", problems=problems)


def query_of(request: web.Request, model: type[M]) -> M | web.Response:
    """The query string, validated by `model`; 400 naming each bad parameter."""
    try:
        return model.model_validate(models.query_values(model, request.query, request.query.getall))
    except ValidationError as exc:
        problems = models.problems(exc)
        return error(400, f"invalid query: {models.one_line(problems)}", problems=problems)

