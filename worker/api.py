"""`statehook api`: the HTTP API (aiohttp.web). Stateless: everything it reads and writes
is in Redis, so any number of API processes can run beside the workers.

Routes:
    GET  /healthz               Redis reachable and a fresh worker heartbeat: 200, else 503
    GET  /metrics               Prometheus text (see `worker.metrics`)
    GET  /openapi.json          this API, described
    POST/GET/DELETE /v1/watches register, list, forget watched resources      (bearer)
    GET  /v1/resources/{rkey}   snapshot, state, timeline of events and deliveries (bearer)
    GET  /v1/events             recent events from the outbox, or one resource's (bearer)
    POST /v1/hooks/{provider}/{token}  a provider's notification, taken as a hint to poll

Management calls need `Authorization: Bearer <api.token>`; inbound hooks the provider's
token from `api.hook_tokens` in the path (providers such as Rev cannot send headers).
Both are compared in constant time. Every refusal is JSON: `{"error": reason}`; a request
that does not match the OpenAPI document is 400 with `problems` naming each field. Requests
are validated with the models of `worker.api_models`, which the document is generated from
(`worker.openapi`); docs/api.md describes the routes.

The API degrades, it does not fail: it starts and listens while Redis is down (its client
connects when a request needs it), and while Redis cannot serve (refused, hung, LOADING,
READONLY, NOREPLICAS, MASTERDOWN…) every route that needs it answers 503
`{"error": "redis unavailable: <kind>"}` with a `Retry-After` (/healthz: its own body,
/metrics: 503 text), within about 3 s however Redis fails; it answers again as soon as
Redis does. A stored record that cannot be read is logged with its key, counted
(`corrupt_records`) and left out of the answer.

An inbound hook never carries state into statehook: it makes the resource due now and
runs the scheduler at once, and the poll reads the state from the provider's API. A hook
for a resource that is not watched is refused (404): a notification URL is no way to add
watches (use POST /v1/watches).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from arq.connections import ArqRedis
from pydantic import BaseModel, ValidationError

import providers as provider_registry
from config import Config
from config.schema import WatchSpec
from model.resources import ResourceRef
from store import keys
from store.snapshots import CorruptRecord, ResourceState, Store, WatchMeta, read_history_entry, unpack_snapshot
from worker import api_models as models
from worker import metrics
from worker.api_models import ID_PATTERN, MAX_IDS, UnwatchFields, WatchFields
from worker.openapi import openapi_spec
from worker.persistence import api_redis, redis_down, redis_problem
from worker.settings import SCHEDULE_NOW

__all__ = [
    "HOOK_IDS",
    "ID_PATTERN",
    "MAX_IDS",
    "ApiState",
    "InvalidWatch",
    "RedisStatus",
    "Unreadable",
    "forget_watches",
    "make_app",
    "open_redis",
    "openapi_document",
    "resource_view",
    "run_api",
    "start_api",
    "validate_unwatch",
    "validate_watch",
]

log = logging.getLogger("statehook.api")

HEALTH_TIMEOUT = 2.0
RETRY_AFTER = "5"
"""seconds, in the Retry-After of a 503 while Redis is unavailable"""
REDIS_DEADLINE = 3.0
"""seconds a request may spend on Redis (counted once its body is read): past it, 503. Each
call has its own timeouts (worker.persistence.API_TIMEOUTS), but concurrent requests to a
hung Redis queue behind one another's connects in redis-py's pool."""
BODY_TIMEOUT = 10.0
"""seconds a request body may take to arrive: past it, 408 (a client that stops sending
would otherwise hold the request open)."""


# ---- inbound hooks: where each provider puts the id of the resource it talks about ----

_ORDER_NUMBER = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_REV_FIELDS = ("order_number", "orderNumber", "OrderNumber", "ordernum", "order_num", "order_id", "orderId")


def rev_order_number(body: Mapping[str, Any]) -> str | None:
    """Rev's notification names the order as `order_number` (older callbacks and form
    posts use other spellings; an `order` object may wrap it)."""
    nested = body.get("order") or body.get("Order")
    if isinstance(nested, Mapping):
        found = rev_order_number(nested)
        if found:
            return found
    for name in _REV_FIELDS:
        value = body.get(name)
        if isinstance(value, str) and _ORDER_NUMBER.match(value.strip()):
            return value.strip()
    return None


HOOK_IDS: dict[str, tuple[str, Callable[[Mapping[str, Any]], str | None]]] = {
    "rev": ("order", rev_order_number),
}
"""provider → (kind, how to find the resource id in the notification's body)."""


# ---- the app --------------------------------------------------------------------------


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


@dataclass
class ApiState:
    config: Config
    redis: ArqRedis
    store: Store
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
    return _json(body, status=status, headers=headers)


def _answer(model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None, *,
            exclude_none: bool = False) -> web.Response:
    return _json(model.model_dump(mode="json", exclude_none=exclude_none), status=status, headers=headers)


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


def _state(request: web.Request) -> ApiState:
    return request.app[STATE]


def _is_management(path: str) -> bool:
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
    if not hmac.compare_digest(given.strip().encode(), token):
        return "invalid token"
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def redis_unavailable(exc: BaseException) -> web.Response:
    """503 for a Redis that cannot serve now: its kind of failure, never its message (which
    can carry a host or the URL)."""
    return error(503, f"redis unavailable: {redis_problem(exc)}", headers={"Retry-After": RETRY_AFTER})


_KEPT = ("Allow", "Retry-After", "WWW-Authenticate")


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    """What an aiohttp refusal says in its headers that its JSON rewrite must keep: a 405's
    Allow above all."""
    return {name: exc.headers[name] for name in _KEPT if name in exc.headers}


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON, including aiohttp's own 404/405/413 and unexpected errors:
    Redis unavailable is 503 (with Retry-After), anything else unexpected 500 (the
    traceback goes to the log, never into the answer)."""
    status = _state(request).redis_status
    try:
        async with asyncio.timeout(None) as deadline:
            request[DEADLINE] = deadline
            if request.method in ("GET", "HEAD") or not request.can_read_body:
                start_deadline(request)  # else once the handler has read the body
            response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason, headers=_kept_headers(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if redis_down(exc):
            status.failed(exc)
            return redis_unavailable(exc)
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal error")
    if response.status < 300 and request.path != "/openapi.json":
        status.ok()
    return response


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_management(request.path):
        token = _state(request).token
        reason = check_bearer(request.headers.get("Authorization"), token)
        if reason is not None:
            if token is None:
                return error(403, reason)
            return error(401, reason, headers={"WWW-Authenticate": 'Bearer realm="statehook"'})
    return await handler(request)


def openapi_document(config: Config) -> dict[str, Any]:
    """The document for `config`: watch requests name a configured provider (every known one
    when none is configured: each is then refused as not configured)."""
    configured = [p for p in config.providers if p in provider_registry.REGISTRY]
    return openapi_spec(configured or provider_registry.REGISTRY, HOOK_IDS)


def make_app(config: Config, redis: ArqRedis) -> web.Application:
    api = config.settings.api
    app = web.Application(middlewares=[_errors, _auth], client_max_size=8 * 1024 * 1024)
    app[STATE] = ApiState(
        config=config,
        redis=redis,
        store=Store(redis, history_length=config.settings.worker.history_length),
        token=api.token.get_secret_value().encode() if api.token else None,
        hook_tokens={name: t.get_secret_value().encode() for name, t in api.hook_tokens.items()},
        redis_status=RedisStatus(),
        openapi=openapi_document(config),
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/openapi.json", openapi_view)
    app.router.add_post("/v1/watches", add_watches)
    app.router.add_get("/v1/watches", list_watches)
    app.router.add_delete("/v1/watches", remove_watches)
    app.router.add_get("/v1/resources/{rkey}", get_resource)
    app.router.add_get("/v1/events", list_events)
    app.router.add_post("/v1/hooks/{provider}/{token}", hook)
    return app


# ---- health and metrics ---------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    st = _state(request)
    try:
        await asyncio.wait_for(st.redis.ping(), timeout=HEALTH_TIMEOUT)
        workers = await asyncio.wait_for(metrics.fresh_workers(st.redis), timeout=HEALTH_TIMEOUT)
    except Exception as exc:
        if redis_down(exc):
            st.redis_status.failed(exc)
            reason = f"redis unreachable: {redis_problem(exc)}"
        else:
            log.exception("healthz: reading the heartbeats failed")
            reason = f"health check failed: {type(exc).__name__}"
        return _unhealthy(models.HealthUnavailable(status="unavailable", reason=reason))
    beats = [models.WorkerBeat.model_validate(w) for w in workers]
    if not any(b.fresh for b in beats):
        if beats:
            newest = min(beats, key=lambda b: b.age)
            reason = f"no fresh worker heartbeat: the newest is {newest.age:.1f}s old (interval {newest.interval}s)"
        else:
            reason = "no worker heartbeat"
        return _unhealthy(models.HealthUnavailable(status="unavailable", reason=reason, workers=beats))
    return _answer(models.Health(status="ok", redis="ok", workers=beats))


def _unhealthy(body: models.HealthUnavailable) -> web.Response:
    return _answer(body, status=503, headers={"Retry-After": RETRY_AFTER}, exclude_none=True)


async def metrics_view(request: web.Request) -> web.Response:
    """The metrics read from Redis now; 503 (plain text, Retry-After) when Redis cannot
    serve: nothing here is process-local, and an empty exposition would read as zeros."""
    st = _state(request)
    try:
        body = await metrics.render(st.redis)
    except Exception as exc:
        if not redis_down(exc):
            raise
        st.redis_status.failed(exc)
        return web.Response(status=503, text=f"# redis unavailable: {redis_problem(exc)}\n",
                            headers={"Retry-After": RETRY_AFTER})
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})


# ---- watches ----------------------------------------------------------------------------


async def _read_body(request: web.Request) -> bytes:
    """The body, within BODY_TIMEOUT; then the Redis deadline starts."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            raw = await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(reason=f"the body took longer than {BODY_TIMEOUT:g}s to arrive") from None
    start_deadline(request)
    return raw


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    if not request.can_read_body:
        return error(400, "a JSON body is required")
    try:
        data = orjson.loads(await _read_body(request))
    except orjson.JSONDecodeError as exc:
        return error(400, f"body is not JSON: {exc.msg}")
    if not isinstance(data, dict):
        return error(400, "body must be a JSON object")
    return data


class InvalidWatch(ValueError):
    """A watch request that does not match the document; `detail` says what, for the caller
    (`problems`: each field and its problem)."""

    def __init__(self, reason: str, **detail: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _shown(value: str) -> str:
    """A caller's value in a refusal, cut short."""
    return repr(value if len(value) <= 64 else value[:64] + "…")


def _provider_of(config: Config, data: Mapping[str, Any]) -> str:
    """The request's provider when it is a known, configured one; else InvalidWatch."""
    provider = data.get("provider")
    if provider is None:
        raise InvalidWatch("invalid watch request", problems=[{"field": "provider", "problem": "Field required"}])
    if not isinstance(provider, str) or provider not in provider_registry.REGISTRY:
        shown = _shown(provider) if isinstance(provider, str) else f"of type {type(provider).__name__}"
        raise InvalidWatch(f"unknown provider {shown}", known=sorted(provider_registry.REGISTRY))
    if provider not in config.providers:
        raise InvalidWatch(f"provider {provider!r} is not configured", configured=sorted(config.providers))
    kind = data.get("kind")
    if isinstance(kind, str) and kind not in models.id_kinds(provider):
        raise InvalidWatch(f"{provider} has no kind {_shown(kind)} to watch by id",
                           known=list(models.id_kinds(provider)))
    return provider


def _validated(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidWatch("invalid watch request", problems=models.problems(exc)) from None


def validate_watch(config: Config, data: Mapping[str, Any]) -> tuple[WatchFields, str]:
    """The validated request and the resource kind. Raises InvalidWatch. Shared by the API
    and the CLI: a provider must be known and configured, the kind one it watches by id
    (what the document's union of the configured providers' models says)."""
    provider = _provider_of(config, data)
    req: WatchFields = _validated(models.watch_model(provider), data)
    return req, req.kind or provider_registry.REGISTRY[provider].default_kind


def validate_unwatch(config: Config, data: Mapping[str, Any]) -> list[str]:
    """The rkeys a DELETE body names. Raises InvalidWatch."""
    provider = _provider_of(config, data)
    req: UnwatchFields = _validated(models.unwatch_model(provider), data)
    kind = req.kind or provider_registry.REGISTRY[provider].default_kind
    return [ResourceRef(provider, kind, rid).key for rid in req.ids]


def _refused(exc: InvalidWatch) -> web.Response:
    problems = exc.detail.get("problems")
    reason = f"{exc.reason}: {models.one_line(problems)}" if problems else exc.reason
    return error(400, reason, **exc.detail)


M = TypeVar("M", bound=BaseModel)


def _query(request: web.Request, model: type[M]) -> M | web.Response:
    """The query string, validated by `model`; 400 naming each bad parameter."""
    try:
        return model.model_validate(models.query_values(model, request.query, request.query.getall))
    except ValidationError as exc:
        problems = models.problems(exc)
        return error(400, f"invalid query: {models.one_line(problems)}", problems=problems)


async def add_watches(request: web.Request) -> web.Response:
    st = _state(request)
    data = await _body(request)
    if isinstance(data, web.Response):
        return data
    try:
        req, kind = validate_watch(st.config, data)
    except InvalidWatch as exc:
        return _refused(exc)
    interval = float(req.interval or WatchSpec.model_fields["interval"].default)
    meta = WatchMeta(interval=interval, discovered=req.discovered, source="api")
    rkeys = list(dict.fromkeys(ResourceRef(req.provider, kind, rid).key for rid in req.ids))
    added = await st.store.add_watches((rkey, meta) for rkey in rkeys)
    log.info("api: %d watches registered for %s (%d new)", len(rkeys), req.provider, added)
    return _answer(models.WatchResult(provider=req.provider, kind=kind, interval=interval, watched=len(rkeys),
                                      added=added, rkeys=rkeys), status=201 if added else 200)


async def remove_watches(request: web.Request) -> web.Response:
    """The resources of `?rkey=` (repeated) and those of the body, if there is one."""
    st = _state(request)
    query = _query(request, models.UnwatchQuery)
    if isinstance(query, web.Response):
        return query
    rkeys = list(query.rkey)
    if request.can_read_body:
        data = await _body(request)
        if isinstance(data, web.Response):
            return data
        try:
            rkeys += validate_unwatch(st.config, data)
        except InvalidWatch as exc:
            return _refused(exc)
    else:
        start_deadline(request)
    removed = await forget_watches(st.store, rkeys)
    log.info("api: %d watches removed", removed)
    return _answer(models.Removed(removed=removed, rkeys=rkeys))


async def forget_watches(store: Store, rkeys: list[str]) -> int:
    """Remove watches; returns how many were watched. (`Store.remove_watches` counts what
    left the due set, which a finished resource already had.)"""
    rkeys = list(dict.fromkeys(rkeys))
    if not rkeys:
        return 0
    watched = sum(1 for m in await store.redis.hmget(keys.META, rkeys) if m is not None)  # type: ignore[misc]
    await store.remove_watches(rkeys)
    return watched


def _meta_view(meta: WatchMeta) -> dict[str, Any]:
    return {"interval": meta.interval, "discovered": meta.discovered, "scan": meta.scan, "source": meta.source}


async def list_watches(request: web.Request) -> web.Response:
    """A page of watches (HSCAN: about `limit` per page; pass `cursor` back for the next)."""
    st = _state(request)
    query = _query(request, models.WatchesQuery)
    if isinstance(query, web.Response):
        return query
    match = f"{query.provider}:*" if query.provider else None
    found: dict[bytes, bytes] = {}
    cursor = query.cursor
    while True:
        cursor, page = await st.redis.hscan(keys.META, cursor, match=match, count=query.limit)
        found.update(page)
        if cursor == 0 or len(found) >= query.limit:
            break
    rkeys = [k.decode(errors="replace") for k in found]
    dues = await st.redis.zmscore(keys.DUE, rkeys) if rkeys else []
    watches, bad = [], Unreadable()
    for rkey, raw, due in zip(rkeys, found.values(), dues, strict=True):
        meta = bad.read(f"{keys.META}[{rkey}]", WatchMeta.from_json, raw)
        if meta is None or (query.source is not None and meta.source != query.source):
            continue
        watches.append(models.Watch(rkey=rkey, **_meta_view(meta), due_at=due))
    await bad.report(st.redis)
    return _answer(models.Watches(watches=watches, cursor=str(cursor) if cursor else None))


# ---- unreadable records ----------------------------------------------------------------------

T = TypeVar("T")


class Unreadable:
    """The stored records a read could not parse: each is left out of the answer, then
    logged with its key and counted (`corrupt_records`, `Store.count_corrupt`) by `report`."""

    def __init__(self) -> None:
        self.records: list[CorruptRecord] = []

    def read(self, key: str, parse: Callable[..., T], *args: Any) -> T | None:
        """`parse(*args)`, or None (and the record noted) when it cannot be read."""
        try:
            return parse(*args)
        except CorruptRecord as exc:
            self.records.append(CorruptRecord(key, exc.reason))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            self.records.append(CorruptRecord(key, f"unreadable: {type(exc).__name__}"))
        return None

    async def report(self, redis: aioredis.Redis) -> None:
        """Log and count what was skipped. Counting is best effort: a Redis that serves
        reads but refuses writes (READONLY during a failover) does not fail the read."""
        if not self.records:
            return
        try:
            await Store(redis).count_corrupt(self.records)
        except Exception as exc:
            if not redis_down(exc):
                raise
            log.warning("api: %d unreadable record(s) not counted: Redis refused (%s)", len(self.records),
                        redis_problem(exc))


def _json_object(raw: bytes | str) -> dict[str, Any]:
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value


def _timeline_entry(raw: bytes | str, rkey: str) -> dict[str, Any]:
    item = read_history_entry(raw, rkey)
    if not isinstance(item.get("id"), str):
        raise TypeError("a timeline entry without an id")
    return item


# ---- resources and events ------------------------------------------------------------------


async def resource_view(redis: aioredis.Redis, rkey: str, *, history: int = 50) -> dict[str, Any] | None:
    """What statehook knows of one resource: its watch, due time, commit state, snapshot,
    and its timeline (newest first), each event with its delivery attempts. None if
    it is neither watched nor ever polled. A part that cannot be read is left out (None,
    or missing from the timeline), logged with its key and counted."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hget(keys.META, rkey)
        pipe.hget(keys.STATE, rkey)
        pipe.hget(keys.ERRORS, rkey)
        pipe.zscore(keys.DUE, rkey)
        pipe.get(keys.snapshot(rkey))
        pipe.lrange(keys.history(rkey), 0, history - 1)
        meta_raw, state_raw, errors, due, snap_raw, hist_raw = await pipe.execute()
    if meta_raw is None and state_raw is None and snap_raw is None:
        return None
    bad = Unreadable()
    meta = bad.read(f"{keys.META}[{rkey}]", WatchMeta.from_json, meta_raw)
    state = bad.read(f"{keys.STATE}[{rkey}]", ResourceState.parse, state_raw)
    snapshot = bad.read(keys.snapshot(rkey), unpack_snapshot, snap_raw)
    timeline = [item for item in (bad.read(keys.history(rkey), _timeline_entry, x, rkey) for x in hist_raw)
                if item is not None]
    if timeline:
        async with redis.pipeline(transaction=False) as pipe:
            for item in timeline:
                pipe.lrange(keys.attempts(item["id"]), 0, -1)
            attempts = await pipe.execute()
        for item, raw in zip(timeline, attempts, strict=True):
            read = (bad.read(keys.attempts(item["id"]), _json_object, a) for a in reversed(raw))
            item["deliveries"] = [d for d in read if d is not None]
    await bad.report(redis)
    ref = ResourceRef.parse(rkey)
    return {
        "rkey": rkey,
        "provider": ref.provider,
        "kind": ref.kind,
        "id": ref.id,
        "watch": _meta_view(meta) if meta else None,
        "due_at": due,
        "state": {"digest": state.digest, "seq": state.seq, "changed_at": state.changed_at} if state else None,
        "consecutive_errors": int(errors) if errors and errors.isdigit() else 0,
        "snapshot": snapshot,
        "history": timeline,
    }


async def get_resource(request: web.Request) -> web.Response:
    rkey = request.match_info["rkey"]
    try:
        models.ResourcePath(rkey=rkey)
    except ValidationError:
        return error(400, "not a resource key: expected provider:kind:id",
                     problems=[{"field": "rkey", "problem": "expected provider:kind:id"}])
    query = _query(request, models.ResourceQuery)
    if isinstance(query, web.Response):
        return query
    view = await resource_view(_state(request).redis, rkey, history=query.history)
    if view is None:
        return error(404, f"{rkey} is not watched and was never polled")
    return _json(view)


async def list_events(request: web.Request) -> web.Response:
    """Without `rkey`: events of the outbox stream, oldest first, after `after` (a stream
    id; without it, the latest `limit`). The outbox is trimmed once every consumer has
    dispatched an entry, so it holds recent events; a resource's own timeline (`rkey=`)
    keeps its last `history_length` events."""
    st = _state(request)
    query = _query(request, models.EventsQuery)
    if isinstance(query, web.Response):
        return query
    limit, after = query.limit, query.after
    if query.rkey is not None:
        hist = await st.store.history(query.rkey, limit)
        return _json({"rkey": query.rkey, "events": hist, "next": None})
    if after is None:
        entries = list(reversed(await st.redis.xrevrange(keys.OUTBOX, count=limit)))
    else:
        entries = await st.redis.xrange(keys.OUTBOX, min=f"({after}", count=limit)
    events, bad = [], Unreadable()
    for entry_id, fields in entries:
        raw = fields.get(b"e")
        event = bad.read(f"{keys.OUTBOX}[{entry_id.decode()}]", _json_object, raw) if raw is not None else None
        if event is not None:
            events.append({"stream_id": entry_id.decode(), **event})
    await bad.report(st.redis)
    last = entries[-1][0].decode() if entries else after
    return _json({"events": events, "next": last})


# ---- inbound hooks ------------------------------------------------------------------------


async def _hook_body(request: web.Request) -> dict[str, Any] | None:
    """JSON or form-encoded (urlencoded or multipart); query parameters fill in."""
    data: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return data
    ctype = request.content_type
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                form = await request.post()
        except TimeoutError:
            raise web.HTTPRequestTimeout(reason=f"the body took longer than {BODY_TIMEOUT:g}s to arrive") from None
        data.update({k: v for k, v in form.items() if isinstance(v, str)})
        return data
    raw = await _read_body(request)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if ctype == "application/json":
            return None
        from urllib.parse import parse_qsl

        data.update(parse_qsl(raw.decode("utf-8", "replace")))
        return data
    if not isinstance(parsed, dict):
        return None
    data.update(parsed)
    return data


async def hook(request: web.Request) -> web.Response:
    st = _state(request)
    provider = request.match_info["provider"]
    given = request.match_info["token"].encode()
    expected = st.hook_tokens.get(provider)
    # compare against something even when nothing is configured: the answer's timing says nothing
    ok = hmac.compare_digest(given, expected if expected is not None else b"\0" * 32)
    if provider not in HOOK_IDS:
        return error(404, f"no inbound hooks for provider {provider!r}", known=sorted(HOOK_IDS))
    if expected is None:
        return error(404, f"inbound hooks for {provider} are not enabled: "
                          f"set STATEHOOK_API__HOOK_TOKENS__{provider.upper()}")
    if not ok:
        return error(401, "invalid hook token")
    try:
        body = await _hook_body(request)
    except ValueError:  # a multipart body that is not one
        return error(400, "body must be a JSON object or a form")
    start_deadline(request)
    if body is None:
        return error(400, "body must be a JSON object or a form")
    kind, extract = HOOK_IDS[provider]
    rid = extract(body)
    if rid is None:
        return error(422, f"the notification names no {kind} (expected e.g. order_number)")
    rkey = ResourceRef(provider, kind, rid).key
    if not await st.redis.hexists(keys.META, rkey):  # type: ignore[misc]
        return error(404, f"{rkey} is not watched: register it with POST /v1/watches", rkey=rkey)
    if not await st.store.poll_now(rkey):
        # a finished resource left the due set: a notification about it re-arms the poll
        await st.redis.zadd(keys.DUE, {rkey: time.time()})
    await st.redis.enqueue_job(SCHEDULE_NOW, _job_id=f"{SCHEDULE_NOW}:{uuid.uuid4().hex}")
    log.info("hook: %s made due now", rkey, extra={"rkey": rkey, "provider": provider})
    return _answer(models.HookAccepted(rkey=rkey, status="poll scheduled"), status=202)


# ---- OpenAPI ----------------------------------------------------------------------------------


async def openapi_view(request: web.Request) -> web.Response:
    return _json(_state(request).openapi)


# ---- serving ------------------------------------------------------------------------------------


async def open_redis(config: Config) -> ArqRedis:
    """A Redis client that can also enqueue ARQ jobs (the hooks run the scheduler). Nothing
    is sent here: the API starts while Redis is down (`worker.persistence.api_redis`)."""
    return api_redis(config.redis_url)


class MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL in a header, a line too long) as an
    error with a traceback and the offending bytes, which can hold a header's value: one
    warning line instead, without them."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "api: refused a malformed HTTP request (%s %s)", (exc.code, type(exc).__name__)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_malformed_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server_log.filters):
        server_log.addFilter(MalformedRequests())


async def start_api(config: Config, *, host: str | None = None, port: int | None = None,
                    redis: ArqRedis | None = None) -> tuple[web.AppRunner, str]:
    """Serve the API; returns the runner (to clean up) and the base URL it listens on."""
    own = redis is None
    _quiet_malformed_requests()
    client = redis if redis is not None else await open_redis(config)
    app = make_app(config, client)
    if own:
        async def _close(_: web.Application) -> None:
            await client.aclose()

        app.on_cleanup.append(_close)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, max_line_size=models.MAX_URL_BYTES)
    await runner.setup()
    bind_host = host if host is not None else config.settings.api.host
    site = web.TCPSite(runner, bind_host, config.settings.api.port if port is None else port)
    try:
        await site.start()
    except BaseException:  # a port in use, a host not this machine's: close the app (its Redis client)
        await runner.cleanup()
        raise
    sockets = getattr(site._server, "sockets", None) or ()
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, f"http://{bind_host}:{bound}"


async def run_api(config: Config, *, host: str | None = None, port: int | None = None) -> None:
    """`statehook api`: serve until SIGTERM or SIGINT."""
    runner, url = await start_api(config, host=host, port=port)
    log.info("api listening on %s", url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("api stopping")
        await runner.cleanup()
