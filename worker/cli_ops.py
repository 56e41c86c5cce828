"""The operator's commands: `api`, `watch add|rm|ls`, `show`, `events tail`, `healthcheck`
(and `simulate`, from `worker.cli_simulate`).

Human output by default, `--json` for scripts. Each command opens its own Redis client
(the API's: Sentinel URLs work, every call has a timeout) and closes it; while Redis is
unavailable a command says so in one line and exits 1. A stored record that cannot be
read is skipped with a warning naming its key. `register_ops(app)` adds them to the
`statehook` app.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from arq.connections import ArqRedis
from pydantic import ValidationError

from config import Config
from providers.base import ProviderSettings, ScanPage
from tasks import keys
from tasks.backoff import poll_backoff
from tasks.jobs import SCHEDULE_TICK
from tasks.model import ResourceRef
from tasks.schedule import next_poll_at
from tasks.store import CorruptRecord, ResourceState, Store, WatchMeta, read_history_entry

__all__ = ["cli_redis", "events_app", "prepare", "register_ops", "run_or_exit", "watch_app"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="statehook.toml (default: $STATEHOOK_CONFIG_FILE or ./statehook.toml)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]

watch_app = typer.Typer(no_args_is_help=True, help="Add, remove and list watched resources.")
events_app = typer.Typer(no_args_is_help=True, help="Read events as they are committed.")

ADD_CHUNK = 1000
T = TypeVar("T")


def _load(path: Path | None, *, warn: bool = False) -> Config:
    from worker.cli import load_or_exit

    return load_or_exit(path, warn=warn)


def prepare(config: Config, *, sentry: bool = True) -> None:
    """What a long-running process does first: logs (redacting this config's secrets) and
    Sentry (before any worker is made: its ARQ integration wraps `create_worker`)."""
    from worker import redact
    from worker.logs import setup_logging

    redact.configure(redact.secret_values(config))
    setup_logging(config.settings.log_level, config.settings.log_format)
    if sentry:
        from worker.sentry import init_sentry

        init_sentry(config)


@contextlib.asynccontextmanager
async def cli_redis(config: Config) -> AsyncIterator[ArqRedis]:
    from worker.api import open_redis

    client = await open_redis(config)
    try:
        yield client
    finally:
        await client.aclose()


def _echo_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in(ts: float | None, now: float) -> str:
    if ts is None:
        return "not scheduled"
    delta = ts - now
    return "due now" if delta <= 0 else f"in {delta:.0f}s"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run_or_exit(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`; Redis unavailable is one line and exit 1, not a traceback."""
    from worker.persistence import redis_down, redis_problem

    try:
        return asyncio.run(main)
    except Exception as exc:
        if not redis_down(exc):
            raise
        raise _fail(f"redis unavailable: {redis_problem(exc)}", code=1) from None


def _problems_line(problems: Iterable[Mapping[str, Any]]) -> str:
    """`field: problem; field: problem` of a validation error."""
    return "; ".join(f"{p.get('field') or '(body)'}: {p.get('problem')}" for p in problems)


# ---- api ----------------------------------------------------------------------


def api(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option("--host", help="default: api.host")] = None,
    port: Annotated[int | None, typer.Option("--port", help="0-65535, 0: a free one (default: api.port)")] = None,
) -> None:
    """Serve the HTTP API: health, metrics, watches, resources, events, inbound hooks."""
    from worker.api import run_api

    if port is not None and not 0 <= port <= 65535:
        raise _fail(f"--port: {port} is not a port (0-65535)")
    cfg = _load(config, warn=True)  # a long-running process says its warnings once, at start
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
        return _fail(f"{host_option}: cannot resolve {host!r}: {exc.strerror}")
    code = exc.errno if isinstance(exc.errno, int) and exc.errno > 0 else None
    reason = (os.strerror(code) if code is not None else exc.strerror or type(exc).__name__).lower()
    if exc.errno == errno.EADDRNOTAVAIL:
        return _fail(f"{host_option}: cannot listen on {host}:{port}: {reason}")
    return _fail(f"cannot listen on {host}:{port}: {reason}", code=1)


def _pid1_role() -> str:
    """`api` if this container's main process serves the API, else `worker`."""
    try:
        args = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "worker"
    return "api" if b"api" in args else "worker"


async def _probe_worker(cfg: Config) -> tuple[bool, str]:
    from worker.metrics import fresh_workers
    from worker.persistence import CHECK_TIMEOUTS, api_redis, redis_problem

    redis = api_redis(cfg.redis_url, CHECK_TIMEOUTS)
    try:
        beats = await asyncio.wait_for(fresh_workers(redis), timeout=5)
    except Exception as exc:
        return False, f"redis unreachable: {redis_problem(exc)}"
    finally:
        await redis.aclose()
    prefix = socket.gethostname() + "-"
    mine = [b for b in beats if b["worker"].startswith(prefix)]
    if any(b["fresh"] for b in mine):
        return True, f"ok: {sum(b['fresh'] for b in mine)} fresh worker heartbeat(s) on {prefix[:-1]}"
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
    cfg = _load(config)
    chosen = _pid1_role() if role == "auto" else role
    if chosen not in ("worker", "api"):
        raise _fail("--role is worker, api or auto")
    ok, message = asyncio.run(_probe_api(cfg, url) if chosen == "api" else _probe_worker(cfg))
    typer.echo(f"{chosen}: {message}")
    if not ok:
        raise typer.Exit(1)


# ---- watch ---------------------------------------------------------------------------------


def _read_ids(ids: list[str], from_file: Path | None) -> list[str]:
    out = list(ids)
    if from_file is not None:
        text = sys.stdin.read() if str(from_file) == "-" else from_file.read_text()
        out.extend(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    return list(dict.fromkeys(out))


async def _add_in_chunks(store: Store, rkeys: list[str], meta: WatchMeta, *, show_progress: bool) -> int:
    """Register `rkeys` a thousand at a time, with a progress bar on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    added = 0
    columns = (TextColumn("watching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, disable=not show_progress or not console.is_terminal) as progress:
        task = progress.add_task("watch", total=len(rkeys))
        for i in range(0, len(rkeys), ADD_CHUNK):
            chunk = rkeys[i : i + ADD_CHUNK]
            added += await store.add_watches((rkey, meta) for rkey in chunk)
            progress.advance(task, len(chunk))
    return added


@watch_app.command("add")
def watch_add(
    provider: Annotated[str, typer.Argument(help="a configured provider: rev, artistree, …")],
    ids: Annotated[list[str] | None, typer.Argument(help="resource ids (order numbers, …)")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="default: the provider's (order)")] = None,
    interval: Annotated[str, typer.Option("--interval", help="poll interval: 30s, 5m, 1h")] = "60s",
    discovered: Annotated[bool, typer.Option("--discovered", help="emit *.discovered on the first poll")] = False,
    from_file: Annotated[Path | None, typer.Option("--from-file", help="ids, one per line ('-': stdin)")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Watch resources by id (source "cli"). Already watched ones keep their next poll time."""
    import re

    from config.schema import ID_PATTERN, ID_RULE, parse_duration
    from worker.api import InvalidWatch, validate_watch

    cfg = _load(config)
    all_ids = _read_ids(ids or [], from_file)
    if not all_ids:
        raise _fail("no ids given (arguments or --from-file)")
    valid = re.compile(ID_PATTERN)
    bad = [rid for rid in all_ids if not valid.fullmatch(rid)]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise _fail(f"invalid id(s): {shown} ({ID_RULE})")
    try:  # the file's duration forms (`1h30m` too), then the API's bounds
        seconds = parse_duration(interval)
    except ValueError as exc:
        raise _fail(f"--interval: {exc}") from None
    try:
        # provider, kind and interval, as the API checks them
        req, resolved_kind = validate_watch(cfg, {"provider": provider, "kind": kind, "ids": all_ids[:1],
                                                   "interval": seconds, "discovered": discovered})
    except InvalidWatch as exc:
        if exc.detail.get("problems"):
            raise _fail(_problems_line(exc.detail["problems"])) from None
        raise _fail(f"{exc.reason} {json.dumps(exc.detail) if exc.detail else ''}".strip()) from None
    meta = WatchMeta(interval=float(req.interval or 60.0), discovered=discovered, source="cli")
    rkeys = [ResourceRef(provider, resolved_kind, rid).key for rid in all_ids]

    async def go() -> int:
        async with cli_redis(cfg) as redis:
            return await _add_in_chunks(Store(redis), rkeys, meta, show_progress=not as_json)

    added = run_or_exit(go())
    if as_json:
        _echo_json({"provider": provider, "kind": resolved_kind, "interval": meta.interval,
                    "watched": len(rkeys), "added": added})
    else:
        typer.echo(f"{len(rkeys)} {provider} {resolved_kind}(s) watched every {meta.interval:g}s "
                   f"({added} new, {len(rkeys) - added} already watched)")


def _scan_params(params: list[str]) -> dict[str, str]:
    out = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--param takes key=value, not {item!r}")
        out[key.strip()] = value.strip()
    return out


def scan_problems(provider: str, params: Mapping[str, str]) -> list[str]:
    """What is wrong with `params` as `provider`'s scan filter (`-p key: problem`, each
    naming the keys it accepts); [] when they are right."""
    import providers as provider_registry
    from providers.base import scan_filter_problems

    cls = provider_registry.REGISTRY.get(provider)
    if cls is None:
        return []
    return [f"-p {key}: {problem}" if key else problem for key, problem in scan_filter_problems(cls, params)]


async def _first_scan(cfg: Config, store: Store, rkey: str, *, show_progress: bool) -> tuple[dict[str, int], int, int]:
    """Run a scan watch's first scan in this process, as a worker would (same poller, same
    commits, page by page), counting pages and items as they arrive."""
    import aiohttp
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    import providers as provider_registry
    from tasks.poll import Poller

    ref = ResourceRef.parse(rkey)
    seen = {"pages": 0, "items": 0}
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    async with aiohttp.ClientSession() as session:
        provider = provider_registry.REGISTRY[ref.provider](cfg.providers[ref.provider], session)
        scan = provider.scan
        with Progress(*columns, console=console, disable=not show_progress or not console.is_terminal) as progress:
            task = progress.add_task(f"scanning {ref.provider}", total=None)

            async def counted(r: ResourceRef, spec: Mapping[str, str]) -> AsyncIterator[ScanPage]:
                async for page in scan(r, spec):
                    seen["pages"] += 1
                    seen["items"] += len(page)
                    progress.update(task, description=f"scanning {ref.provider}: page {seen['pages']}, "
                                                      f"{seen['items']} {ref.provider} resources")
                    yield page

            provider.scan = counted  # type: ignore[method-assign,assignment]
            event_counts: dict[str, int] = {}

            def count_events(events: list[Any]) -> None:
                for e in events:
                    for name in (f"events:{e.provider}", f"events_type:{e.type}"):
                        event_counts[name] = event_counts.get(name, 0) + 1

            poller = Poller(store, {ref.provider: provider}, on_events=count_events)
            outcomes = await poller.poll([rkey])
        await provider.close()
    counts = {f"polls:{ref.provider}:{k.value}": v for k, v in outcomes.items()}
    await store.incr_stats({**counts, **event_counts})
    return {k.value: v for k, v in outcomes.items()}, seen["pages"], seen["items"]


@watch_app.command("scan")
def watch_scan(
    provider: Annotated[str, typer.Argument(help="a configured provider that can list its resources")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE",
                                                    help="a key of the scan, e.g. project_id=…; repeatable")] = None,
    interval: Annotated[str, typer.Option("--interval", help="how often workers scan again")] = "10m",
    discovered: Annotated[bool, typer.Option("--discovered", help="emit *.discovered for new ones")] = False,
    run: Annotated[bool, typer.Option("--run/--no-run", help="do the first scan now, here, with progress")] = True,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Watch every resource of a collection (a scan); do the first scan now, showing progress.

    The first scan of thousands of orders is long: it runs in this process (committing page
    by page, exactly as a worker does) and the workers take over at the next interval.
    """
    import providers as provider_registry
    from config.schema import WatchSpec
    from worker.runtime import watch_rkeys

    cfg = _load(config)
    cls = provider_registry.REGISTRY.get(provider)
    if cls is None or provider not in cfg.providers:
        raise _fail(f"provider {provider!r} is not configured (configured: {', '.join(sorted(cfg.providers))})")
    if "scan" not in cls.kinds:
        raise _fail(f"{provider} cannot list its resources: watch them by id")
    params = _scan_params(param or [])
    problems = scan_problems(provider, params)
    if problems:
        raise _fail("; ".join(problems))
    try:
        spec = WatchSpec.model_validate({"provider": provider, "scan": params,
                                         "interval": interval, "discovered": discovered})
    except ValidationError as exc:
        raise _fail(_problems_line(
            {"field": ".".join(str(x) for x in e["loc"]), "problem": e["msg"].removeprefix("Value error, ")}
            for e in exc.errors(include_input=False, include_url=False))) from None
    ((rkey, config_meta),) = watch_rkeys(spec, cls)
    meta = WatchMeta(interval=config_meta.interval, discovered=discovered, scan=config_meta.scan, source="cli")

    async def go() -> tuple[int, dict[str, int], int, int]:
        async with cli_redis(cfg) as redis:
            store = Store(redis, history_length=cfg.settings.worker.history_length)
            # when this process scans first, the workers' first turn is one interval later
            due = time.time() + meta.interval if run else None
            added = await store.add_watches([(rkey, meta)], due_at=due)
            if not run:
                return added, {}, 0, 0
            outcomes, pages, items = await _first_scan(cfg, store, rkey, show_progress=not as_json)
            return added, outcomes, pages, items

    added, outcomes, pages, items = run_or_exit(go())
    if as_json:
        _echo_json({"rkey": rkey, "added": added, "interval": meta.interval, "pages": pages, "items": items,
                    "outcomes": outcomes})
        return
    typer.echo(f"{rkey}: {'watched' if added else 'already watched'}, scanned every {meta.interval:g}s")
    if run:
        summary = ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())) or "nothing"
        typer.echo(f"first scan: {pages} page(s), {items} resource(s): {summary}")


@watch_app.command("rm")
def watch_rm(
    provider: Annotated[str | None, typer.Argument(help="provider of the ids")] = None,
    ids: Annotated[list[str] | None, typer.Argument(help="resource ids")] = None,
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    rkey: Annotated[list[str] | None, typer.Option("--rkey", help="a resource key; repeatable")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop watching resources (their snapshots and timelines stay)."""
    import providers as provider_registry
    from worker.api import forget_watches

    cfg = _load(config)
    rkeys = list(rkey or [])
    if provider is not None:
        cls = provider_registry.REGISTRY.get(provider)
        if cls is None:
            raise _fail(f"unknown provider {provider!r}")
        rkeys += [ResourceRef(provider, kind or cls.default_kind, rid).key for rid in ids or []]
    if not rkeys:
        raise _fail("nothing to remove: give PROVIDER IDS… or --rkey")

    async def go() -> int:
        async with cli_redis(cfg) as redis:
            return await forget_watches(Store(redis), rkeys)

    removed = run_or_exit(go())
    if as_json:
        _echo_json({"removed": removed, "rkeys": rkeys})
    else:
        typer.echo(f"{removed} of {len(rkeys)} watch(es) removed")


@watch_app.command("ls")
def watch_ls(
    provider: Annotated[str | None, typer.Option("--provider")] = None,
    source: Annotated[str | None, typer.Option("--source", help="config, api, cli")] = None,
    limit: Annotated[int, typer.Option("--limit", help="0: all")] = 100,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List watched resources with their interval, origin and next poll."""
    cfg = _load(config)

    async def go() -> tuple[list[dict[str, Any]], int]:
        async with cli_redis(cfg) as redis:
            watches = await Store(redis).watches(source=source)
            selected = sorted(k for k in watches if provider is None or k.startswith(f"{provider}:"))
            shown = selected if limit <= 0 else selected[:limit]
            dues = await redis.zmscore(keys.DUE, shown) if shown else []
            rows = [{"rkey": k, "interval": watches[k].interval, "source": watches[k].source,
                     "scan": watches[k].scan, "due_at": d} for k, d in zip(shown, dues, strict=True)]
            return rows, len(selected)

    rows, total = run_or_exit(go())
    if as_json:
        _echo_json({"watches": rows, "total": total})
        return
    now = time.time()
    width = max((len(r["rkey"]) for r in rows), default=10)
    for r in rows:
        typer.echo(f"{r['rkey']:<{width}}  every {r['interval']:>6g}s  {r['source']:<6}  {_in(r['due_at'], now)}")
    more = f" (showing {len(rows)})" if len(rows) < total else ""
    typer.echo(f"{total} watch(es){more}")


# ---- show ------------------------------------------------------------------------------------


async def _describe(cfg: Config, rkey: str, snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """Title, state and terminal flag from the provider's own reading of the snapshot."""
    import aiohttp

    import providers as provider_registry

    ref = ResourceRef.parse(rkey)
    settings = cfg.providers.get(ref.provider)
    if snapshot is None or settings is None or ref.provider not in provider_registry.REGISTRY:
        return None
    async with aiohttp.ClientSession() as session:
        provider = provider_registry.REGISTRY[ref.provider](settings, session)
        try:
            info = provider.describe(ref, snapshot)
        except Exception:  # a snapshot from an older version of the provider: show it raw
            return None
    return {"title": info.title, "state": info.state, "terminal": info.terminal, "url": info.url}


def _timeline_lines(history: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for item in history:
        lines.append(f"  {item.get('at', '-')}  {item.get('severity', ''):<8} {item.get('type', '')}  "
                     f"seq {item.get('seq')}  {item.get('summary', '')}")
        for d in item.get("deliveries", []):
            status = d.get("status") if d.get("status") is not None else "-"
            outcome = "ok" if d.get("ok") else f"failed: {d.get('error') or ''}"
            lines.append(f"      → {d.get('destination')}  attempt {d.get('attempt')}  {status}  "
                         f"{d.get('duration_ms', 0):.0f} ms  {outcome}")
        if not item.get("deliveries"):
            lines.append("      (no delivery recorded)")
    return lines


LEASE_SLACK = 2.0
"""Seconds of leeway in telling a claim's lease from a due time: the scheduler's tick and
the clocks of the hosts that wrote them."""


def schedule_gap(now: float, *, interval: float, state: ResourceState | None, errors: int, paused: float,
                 settings: ProviderSettings | None) -> float:
    """The furthest ahead of `now` a poll of this resource can have set its next due time:
    its schedule (interval, idle or terminal interval), a backoff after errors, or its
    provider's pause after a 429."""
    gap = interval
    if state is not None and settings is not None:
        flags = (False, True) if state.terminal is None else (bool(state.terminal),)
        nexts = [next_poll_at(now, interval=interval, terminal=t, changed_at=state.changed_at, settings=settings)
                 for t in flags]
        gap = max((n - now for n in nexts if n is not None), default=0.0)
    if errors > 0:
        gap = max(gap, interval, poll_backoff(errors))
    return max(gap, paused)


def next_poll(score: float | None, now: float, *, gap: float, lease: float) -> tuple[float | None, float | None]:
    """(when the resource is due, until when a claim leases it) from its score in the due set.

    A claim moves the score `lease` seconds past the scheduler's tick and the poll's commit
    moves it to the next due time: a score further ahead than any due time a poll sets
    (`gap`, `schedule_gap`) and within a lease is a claim, and the resource was due when it was
    claimed (it is being polled, or its poll job waits for a worker). Where `gap` reaches
    the lease the two cannot be told apart, and the score is taken as the due time."""
    if score is None:
        return None, None
    ahead = score - now
    if gap + LEASE_SLACK < ahead <= lease + SCHEDULE_TICK + LEASE_SLACK:
        return score - lease, score
    return score, None


async def _schedule_facts(redis: ArqRedis, rkey: str) -> tuple[ResourceState | None, float]:
    """The resource's commit state (with its terminal flag) and its provider's pause."""
    ref = ResourceRef.parse(rkey)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hget(keys.STATE, rkey)
        pipe.pttl(keys.pause(ref.provider))
        raw, pause_ms = await pipe.execute()
    try:
        state = ResourceState.parse(raw, f"{keys.STATE}[{rkey}]")
    except CorruptRecord:
        state = None  # resource_view has warned about it
    return state, pause_ms / 1000 if pause_ms and pause_ms > 0 else 0.0


def _poll_times(cfg: Config, view: dict[str, Any], facts: tuple[ResourceState | None, float],
                now: float) -> tuple[float | None, float | None]:
    watch = view["watch"]
    if not watch:
        return view["due_at"], None
    state, paused = facts
    gap = schedule_gap(now, interval=watch["interval"], state=state, errors=view["consecutive_errors"],
                       paused=paused, settings=cfg.providers.get(view["provider"]))
    return next_poll(view["due_at"], now, gap=gap, lease=cfg.settings.worker.poll_lease)


def _next_poll_text(next_at: float | None, lease_until: float | None, now: float) -> str:
    if lease_until is None:
        return _in(next_at, now)
    return f"due now (claimed for a poll; the claim's lease runs out {_in(lease_until, now)})"


def show(
    rkey: Annotated[str, typer.Argument(help="provider:kind:id, e.g. rev:order:TC432432")],
    history: Annotated[int, typer.Option("--history", help="events to show")] = 20,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A resource's current snapshot, and its timeline of events and their deliveries."""
    from worker.api import resource_view

    cfg = _load(config)
    try:
        ResourceRef.parse(rkey)
    except ValueError as exc:
        raise _fail(str(exc)) from None

    async def go() -> tuple[dict[str, Any] | None, tuple[ResourceState | None, float], dict[str, Any] | None]:
        async with cli_redis(cfg) as redis:
            view = await resource_view(redis, rkey, history=history)
            facts = await _schedule_facts(redis, rkey)
        return view, facts, await _describe(cfg, rkey, view["snapshot"] if view else None)

    view, facts, info = run_or_exit(go())
    if view is None:
        raise _fail(f"{rkey} is not watched and was never polled", code=1)
    now = time.time()
    next_at, lease_until = _poll_times(cfg, view, facts, now)
    if as_json:
        _echo_json({**view, "next_poll_at": next_at, "lease_until": lease_until, "describe": info})
        return
    watch = view["watch"]
    how = (f"watched ({watch['source']}), every {watch['interval']:g}s, "
           f"next poll {_next_poll_text(next_at, lease_until, now)}" if watch else "not watched")
    typer.echo(f"{rkey}  {how}")
    if info:
        typer.echo(f"  {info['title']}: {info['state']}{' (terminal)' if info['terminal'] else ''}")
        if info["url"]:
            typer.echo(f"  {info['url']}")
    state = view["state"]
    if state:
        typer.echo(f"  seq {state['seq']}, last change {_when(state['changed_at'])}, digest {state['digest'][:12]}")
    if view["consecutive_errors"]:
        typer.echo(f"  {view['consecutive_errors']} consecutive poll error(s)")
    snap = view["snapshot"] or {}
    scalars = {k: v for k, v in snap.items() if isinstance(v, str | int | float | bool) or v is None}
    if scalars:
        typer.echo("snapshot:")
        for k, v in list(scalars.items())[:20]:
            typer.echo(f"  {k}: {v}")
        rest = len(snap) - min(len(scalars), 20)
        if rest:
            typer.echo(f"  … {rest} more field(s): --json shows everything")
    typer.echo(f"timeline ({len(view['history'])} event(s), newest first):")
    for line in _timeline_lines(view["history"]):
        typer.echo(line)


# ---- events -------------------------------------------------------------------------------------


def _event_line(event: dict[str, Any]) -> str:
    return (f"{event.get('detected_at', '-')}  {event.get('severity', ''):<8} {event.get('type', '')}  "
            f"{event.get('resource', {}).get('key', '')}  {event.get('summary', '')}")


TIMELINE_SEARCH_LIMIT = 100_000
"""`events tail` reads the newest timeline entry of every resource when the outbox holds too
few events: not beyond this many resources (one LINDEX each)."""


def _sort_key(record: dict[str, Any]) -> tuple[str, str, int]:
    seq = record.get("seq")
    return (str(record.get("detected_at", "")), str(record.get("resource", {}).get("key", "")),
            seq if isinstance(seq, int) else 0)


def _outbox_record(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """The event of an outbox entry with its `stream_id`; None (and a warning) if unreadable."""
    try:
        event = orjson.loads(fields[b"e"])
        if not isinstance(event, dict):
            raise ValueError("not an object")
        return {"stream_id": entry_id.decode(), **event}
    except (KeyError, ValueError, TypeError, AttributeError):
        typer.echo(f"warning: unreadable record skipped: {keys.OUTBOX}[{entry_id.decode()}]", err=True)
        return None


def _timeline_record(raw: bytes, rkey: str) -> dict[str, Any] | None:
    """A timeline entry shaped like an event (no data, no snapshot, `stream_id` null)."""
    try:
        item = read_history_entry(raw, rkey)
        ref = ResourceRef.parse(rkey)
        return {"stream_id": None, "id": item["id"], "type": item["type"], "provider": ref.provider,
                "resource": {"kind": ref.kind, "id": ref.id, "key": rkey}, "seq": item["seq"],
                "detected_at": item["at"], "severity": item["severity"], "summary": item["summary"]}
    except (KeyError, ValueError, TypeError):
        typer.echo(f"warning: unreadable record skipped: {keys.history(rkey)}", err=True)
        return None


async def _timeline_events(redis: ArqRedis, limit: int) -> list[dict[str, Any]] | None:
    """The `limit` newest entries of all the resources' timelines, oldest first; None when
    there are more than TIMELINE_SEARCH_LIMIT resources. Each timeline is newest first: a
    resource whose newest entry is older than the `limit`-th newest of those newest entries
    has nothing to give, so only the others' timelines are read further."""
    if await redis.hlen(keys.STATE) > TIMELINE_SEARCH_LIMIT:  # type: ignore[misc]
        return None
    rkeys = [k.decode() for k in await redis.hkeys(keys.STATE)]  # type: ignore[misc]
    newest: list[tuple[dict[str, Any], str]] = []
    for i in range(0, len(rkeys), ADD_CHUNK):
        chunk = rkeys[i : i + ADD_CHUNK]
        async with redis.pipeline(transaction=False) as pipe:
            for rkey in chunk:
                pipe.lindex(keys.history(rkey), 0)
            heads = await pipe.execute()
        newest += [(rec, rkey) for rkey, raw in zip(chunk, heads, strict=True)
                   if raw is not None and (rec := _timeline_record(raw, rkey)) is not None]
    newest.sort(key=lambda pair: _sort_key(pair[0]))
    if not newest:
        return []
    floor = _sort_key(newest[-limit:][0][0])
    candidates = [rkey for rec, rkey in newest if _sort_key(rec) >= floor]
    async with redis.pipeline(transaction=False) as pipe:
        for rkey in candidates:
            pipe.lrange(keys.history(rkey), 0, limit - 1)
        lists = await pipe.execute()
    records = [rec for rkey, raws in zip(candidates, lists, strict=True) for raw in raws
               if (rec := _timeline_record(raw, rkey)) is not None]
    return sorted(records, key=_sort_key)[-limit:]


async def _recent_events(redis: ArqRedis, count: int) -> tuple[list[dict[str, Any]], bytes | None, str | None]:
    """The `count` newest events, oldest first; the newest outbox entry's id; a note when
    the outbox held fewer (the dispatcher trims what it handed on), whose place the
    resources' timelines took."""
    entries = list(reversed(await redis.xrevrange(keys.OUTBOX, count=count)))
    last = entries[-1][0] if entries else None
    outbox = [rec for entry_id, fields in entries if (rec := _outbox_record(entry_id, fields)) is not None]
    if len(outbox) >= count:
        return outbox, last, None
    timeline = await _timeline_events(redis, count)
    if timeline is None:
        return outbox, last, (f"the outbox holds {len(outbox)} event(s) (it keeps only what is not yet "
                              f"dispatched); the timelines of more than {TIMELINE_SEARCH_LIMIT} resources "
                              "were not searched (statehook show RKEY shows one)")
    seen = {rec.get("id") for rec in outbox}
    older = [rec for rec in timeline if rec["id"] not in seen]
    merged = sorted(older + outbox, key=_sort_key)[-count:]
    note = (f"the outbox holds {len(outbox)} event(s) (it keeps only what is not yet dispatched); "
            f"{len(merged) - len(outbox)} more from the resources' timelines")
    if len(merged) < count:
        note += f"; {len(merged)} in all, fewer than the {count} asked for"
    return merged, last, note


class _EventPrinter:
    """Events as lines, or (`--json`) as one JSON array, written an element a line as they
    come (`[{…}`, `,{…}`, `]`) so that -f can stream it; `[]` when there is none."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.printed = 0

    def __call__(self, record: dict[str, Any]) -> None:
        if self.as_json:
            typer.echo(("," if self.printed else "[") + orjson.dumps(record).decode())
        else:
            typer.echo(_event_line(record))
        self.printed += 1
        sys.stdout.flush()

    def close(self) -> None:
        if self.as_json:
            typer.echo("]" if self.printed else "[]")


async def _follow(redis: ArqRedis, last: bytes | None, max_events: int, out: _EventPrinter) -> None:
    """Print events as they are committed after `last` (the stream's end if None), up to
    `max_events` of them (0: until interrupted)."""
    if last is None:
        # "$" would be re-read on every call: pin the position to the stream's end now
        newest = await redis.xrevrange(keys.OUTBOX, count=1)
        last = newest[0][0] if newest else b"0-0"
    seen = 0
    while max_events <= 0 or seen < max_events:
        wanted = 100 if max_events <= 0 else min(100, max_events - seen)
        response = await redis.xread({keys.OUTBOX: last}, block=500, count=wanted)
        for _stream, entries in response or ():
            for entry_id, fields in entries:
                last = entry_id
                record = _outbox_record(entry_id, fields)
                if record is not None:
                    out(record)
                    seen += 1


@events_app.command("tail")
def events_tail(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False,
    count: Annotated[int, typer.Option("--count", "-n", help="recent events to print first")] = 10,
    max_events: Annotated[int, typer.Option("--max-events", help="with -f: stop after this many new events")] = 0,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print recent events, then (-f) new ones as they are committed.

    Reads the outbox stream directly (XREAD): it takes nothing from the dispatcher. The
    outbox keeps only what is not yet dispatched: older events come from the resources'
    timelines (without their data and snapshot). --json prints one JSON array, an event a
    line.
    """
    if count < 0:
        raise _fail(f"--count: {count} is below 0")
    if max_events < 0:
        raise _fail(f"--max-events: {max_events} is below 0")
    if max_events and not follow:
        raise _fail("--max-events needs --follow (-f)")
    cfg = _load(config)
    out = _EventPrinter(as_json)

    async def go() -> None:
        async with cli_redis(cfg) as redis:
            last = None
            if count > 0:
                recent, last, note = await _recent_events(redis, count)
                if note:
                    typer.echo(f"note: {note}", err=True)
                for record in recent:
                    out(record)
            if follow:
                await _follow(redis, last, max_events, out)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            run_or_exit(go())
    except typer.Exit:
        if out.printed:
            out.close()  # what was printed stays a JSON array
        raise
    out.close()


def register_ops(app: typer.Typer) -> None:
    """Add the operator's commands to the `statehook` app, and plain help for all of them:
    typer's Rich help gives every flag a type column (`--json <bool>`, `--help <bool>`), its
    plain help does not (the root app's setting is the one every command's help uses)."""
    from worker.cli_simulate import simulate

    app.command("api")(api)
    app.add_typer(watch_app, name="watch")
    app.command("show")(show)
    app.add_typer(events_app, name="events")
    app.command("simulate")(simulate)
    app.command("healthcheck")(healthcheck)
