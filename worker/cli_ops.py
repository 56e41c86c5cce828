"""The operator's commands: `api` and `healthcheck` here; `watch …` (worker.cli_watch), `show`
(worker.cli_show), `events tail` (worker.cli_events) and `simulate` (worker.cli_simulate).
`register_ops(app)` adds them all to the `statehook` app."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from pathlib import Path
from typing import Annotated

import typer

from config import Config
from worker.cli_common import (
    ConfigOption,
    fail,
    load_or_exit,
    prepare,
)

__all__ = ["api", "healthcheck", "register_ops"]


# ---- api ----------------------------------------------------------------------


def api(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option("--host", help="default: api.host")] = None,
    port: Annotated[int | None, typer.Option("--port", help="0-65535, 0: a free one (default: api.port)")] = None,
) -> None:
    """Serve the HTTP API: health, metrics, watches, resources, events, inbound hooks."""
    from worker.api import run_api

    if port is not None and not 0 <= port <= 65535:
        raise fail(f"--port: {port} is not a port (0-65535)")
    cfg = load_or_exit(config, warn=True)  # a long-running process says its warnings once, at start
    prepare(cfg)
    try:
        asyncio.run(run_api(cfg, host=host, port=port))
    except OSError as exc:  # only the bind raises one: the API answers 503 while Redis is down
        bind_host = cfg.settings.api.host if host is None else host
        bind_port = cfg.settings.api.port if port is None else port
        option = "--host" if host is not None else "api.host"
        raise _listen_failed(exc, bind_host, bind_port, host_option=option) from None


def _listen_failed(exc: OSError, host: str, port: int, *, host_option: str) -> typer.Exit:
    """One line for a bind that failed: a host that is not this machine's is a usage error (2),
    a port in use or refused to this user is not (1)."""
    if isinstance(exc, socket.gaierror):
        return fail(f"{host_option}: cannot resolve {host!r}: {exc.strerror}")
    code = exc.errno if isinstance(exc.errno, int) and exc.errno > 0 else None
    reason = (os.strerror(code) if code is not None else exc.strerror or type(exc).__name__).lower()
    if exc.errno == errno.EADDRNOTAVAIL:
        return fail(f"{host_option}: cannot listen on {host}:{port}: {reason}")
    return fail(f"cannot listen on {host}:{port}: {reason}", code=1)


def _pid1_role() -> str:
    """`api` if this container's main process serves the API, else `worker`."""
    try:
        args = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "worker"
    return "api" if b"api" in args else "worker"


async def _probe_worker(cfg: Config) -> tuple[bool, str]:
    from store.registry import WorkerRegistry
    from worker.persistence import CHECK_TIMEOUTS, api_redis, redis_problem

    redis = api_redis(cfg.redis_url, CHECK_TIMEOUTS)
    now = time.time()
    try:
        beats = await asyncio.wait_for(WorkerRegistry(redis).beats(now), timeout=5)
    except Exception as exc:
        return False, f"redis unreachable: {redis_problem(exc)}"
    finally:
        await redis.aclose()
    prefix = socket.gethostname() + "-"
    mine = [b for b in beats if b.worker.startswith(prefix)]
    fresh = sum(b.fresh(now) for b in mine)
    if fresh:
        return True, f"ok: {fresh} fresh worker heartbeat(s) on {prefix[:-1]}"
    return False, f"no fresh worker heartbeat on {prefix[:-1]} ({len(mine)} stale)"


async def _probe_api(cfg: Config, url: str | None) -> tuple[bool, str]:
    import aiohttp

    base = url or f"http://127.0.0.1:{cfg.settings.api.port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with http.get(f"{base}/healthz") as resp:
                body = await resp.json(content_type=None)
    except Exception as exc:
        return False, f"api not answering at {base}: {type(exc).__name__}"
    reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
    if resp.status == 200:
        return True, "ok"
    # the API process is fine when it answers; a missing worker is the workers' health
    if reason.startswith("redis unreachable"):
        return False, reason
    return True, f"serving ({reason})"


def healthcheck(
    role: Annotated[str, typer.Option("--role", help="worker, api, or auto (from the container's main process)")]
    = "auto",
    url: Annotated[str | None, typer.Option("--url", help="api: base URL (default: 127.0.0.1 and api.port)")] = None,
    config: ConfigOption = None,
) -> None:
    """Exit 0 if this container's worker or API is healthy (the image's HEALTHCHECK).

    A worker: a fresh heartbeat of a worker on this host. The API: it answers and reaches Redis.
    """
    cfg = load_or_exit(config)
    chosen = _pid1_role() if role == "auto" else role
    if chosen not in ("worker", "api"):
        raise fail("--role is worker, api or auto")
    ok, message = asyncio.run(_probe_api(cfg, url) if chosen == "api" else _probe_worker(cfg))
    typer.echo(f"{chosen}: {message}")
    if not ok:
        raise typer.Exit(1)



def register_ops(app: typer.Typer) -> None:
    """Add the operator's commands to the `statehook` app, and plain help for all of them:
    typer's Rich help gives every flag a type column (`--json <bool>`, `--help <bool>`), its
    plain help does not (the root app's setting is the one every command's help uses)."""
    from worker.cli_events import events_app
    from worker.cli_show import show
    from worker.cli_simulate import simulate
    from worker.cli_watch import watch_app

    app.command("api")(api)
    app.add_typer(watch_app, name="watch")
    app.command("show")(show)
    app.add_typer(events_app, name="events")
    app.command("simulate")(simulate)
    app.command("healthcheck")(healthcheck)
