"""`statehook api`: the HTTP API (aiohttp.web). Stateless: everything it reads and writes
is in Redis, so any number of API processes can run beside the workers.

Routes:
    GET  /healthz               Redis reachable and a fresh worker heartbeat: 200, else 503
    GET  /metrics               Prometheus text (see `worker.metrics`)
    GET  /openapi.json          this API, described
    POST/GET/DELETE /v1/watches register, list, forget watched resources      (bearer)
    GET  /v1/resources/{rkey}   snapshot, state, timeline of events and deliveries (bearer)
    POST /v1/resources/{rkey}/ack  acknowledge its state: its reminders stop (bearer)
    GET  /v1/events             recent events from the outbox, or one resource's (bearer)
    GET/POST /v1/silences, GET /v1/silences/{id}, POST …/{id}/extend, …/{id}/expire (bearer)
    POST /v1/hooks/{provider}/{token}  a provider's notification, taken as a hint to poll

Management calls need `Authorization: Bearer <api.token>`; inbound hooks the provider's
token from `api.hook_tokens` in the path (providers such as Rev cannot send headers).
Both are compared in constant time. Every refusal is JSON: `{"error": reason}`; a request
that does not match the OpenAPI document is 400 with `problems` naming each field. Requests
are validated with the models of `worker.api_models`, which the document is generated from
(`worker.openapi`); docs/api.md describes the routes.

This module assembles the app and serves it; the routes are by job in `worker.api_health`,
`worker.api_watches`, `worker.api_resources` and `worker.api_hooks`, over the plumbing of
`worker.api_http` (state, JSON answers, bearer check, middlewares). What they read of Redis
goes through the store (`store.reads`, `store.registry`).

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
import logging
import signal
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from arq.connections import ArqRedis

import providers as provider_registry
from config import Config
from store.reads import Reads
from store.registry import WorkerRegistry
from store.snapshots import Store
from worker import api_models as models
from worker.api_ack import ack_resource
from worker.api_health import healthz, metrics_view
from worker.api_hooks import HOOK_IDS, hook, rev_order_number
from worker.api_http import (
    STATE,
    ApiState,
    RedisStatus,
    auth_middleware,
    error,
    errors_middleware,
    json_response,
    state_of,
)
from worker.api_models import ID_PATTERN, MAX_IDS
from worker.api_resources import get_resource, list_events, resource_view
from worker.api_silences import silence_routes
from worker.api_watches import (
    InvalidWatch,
    add_watches,
    forget_watches,
    list_watches,
    remove_watches,
    validate_unwatch,
    validate_watch,
)
from worker.console import mount_console
from worker.openapi import openapi_spec
from worker.persistence import api_redis

__all__ = [
    "HOOK_IDS",
    "ID_PATTERN",
    "MAX_IDS",
    "ApiState",
    "InvalidWatch",
    "RedisStatus",
    "error",
    "forget_watches",
    "make_app",
    "open_redis",
    "openapi_document",
    "resource_view",
    "rev_order_number",
    "run_api",
    "start_api",
    "validate_unwatch",
    "validate_watch",
]

log = logging.getLogger("statehook.api")


def openapi_document(config: Config) -> dict[str, Any]:
    """The document for `config`: watch requests name a configured provider (every known one
    when none is configured: each is then refused as not configured)."""
    configured = [p for p in config.providers if p in provider_registry.REGISTRY]
    return openapi_spec(configured or provider_registry.REGISTRY, HOOK_IDS)


def make_app(config: Config, redis: ArqRedis) -> web.Application:
    api = config.settings.api
    app = web.Application(middlewares=[errors_middleware, auth_middleware], client_max_size=8 * 1024 * 1024)
    app[STATE] = ApiState(
        config=config,
        redis=redis,
        store=Store(redis, history_length=config.settings.worker.history_length),
        reads=Reads(redis),
        registry=WorkerRegistry(redis),
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
    app.router.add_post("/v1/resources/{rkey}/ack", ack_resource)
    app.router.add_get("/v1/events", list_events)
    silence_routes(app.router)
    app.router.add_post("/v1/hooks/{provider}/{token}", hook)
    mount_console(app)  # the operator console at /ui (worker/console/, docs/console.md)
    return app


async def openapi_view(request: web.Request) -> web.Response:
    return json_response(state_of(request).openapi)


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
