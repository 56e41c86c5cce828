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
import json
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
from providers.base import ScanPage
from tasks import keys
from tasks.model import ResourceRef
from tasks.store import Store, WatchMeta

__all__ = ["events_app", "prepare", "register_ops", "watch_app"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="statehook.toml (default: $STATEHOOK_CONFIG_FILE or ./statehook.toml)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]

watch_app = typer.Typer(no_args_is_help=True, help="Add, remove and list watched resources.")
events_app = typer.Typer(no_args_is_help=True, help="Read events as they are committed.")

ADD_CHUNK = 1000
T = TypeVar("T")


def _load(path: Path | None) -> Config:
    from worker.cli import load_or_exit

    return load_or_exit(path)


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
async def _redis(config: Config) -> AsyncIterator[ArqRedis]:
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


def _run(main: Coroutine[Any, Any, T]) -> T:
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
    port: Annotated[int | None, typer.Option("--port", help="default: api.port")] = None,
) -> None:
    """Serve the HTTP API: health, metrics, watches, resources, events, inbound hooks."""
    from worker.api import run_api

    cfg = _load(config)
    prepare(cfg)
    asyncio.run(run_api(cfg, host=host, port=port))


def _pid1_role() -> str:
    """`api` if this container's main process serves the API, else `worker`."""
    try:
        args = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "worker"
    return "api" if b"api" in args else "worker"


async def _probe_worker(cfg: Config) -> tuple[bool, str]:
    import socket

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

    from worker.api import ID_PATTERN, InvalidWatch, validate_watch

    cfg = _load(config)
    all_ids = _read_ids(ids or [], from_file)
    if not all_ids:
        raise _fail("no ids given (arguments or --from-file)")
    valid = re.compile(ID_PATTERN)
    bad = [rid for rid in all_ids if not valid.match(rid)]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise _fail(f"invalid id(s): {shown} (no whitespace, '/', '?' or '#')")
    try:
        # provider, kind and interval, as the API checks them
        req, resolved_kind = validate_watch(cfg, {"provider": provider, "kind": kind, "ids": all_ids[:1],
                                                   "interval": interval, "discovered": discovered})
    except InvalidWatch as exc:
        if exc.detail.get("problems"):
            raise _fail(_problems_line(exc.detail["problems"])) from None
        raise _fail(f"{exc.reason} {json.dumps(exc.detail) if exc.detail else ''}".strip()) from None
    meta = WatchMeta(interval=float(req.interval or 60.0), discovered=discovered, source="cli")
    rkeys = [ResourceRef(provider, resolved_kind, rid).key for rid in all_ids]

    async def go() -> int:
        async with _redis(cfg) as redis:
            return await _add_in_chunks(Store(redis), rkeys, meta, show_progress=not as_json)

    added = _run(go())
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
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value of the scan, e.g. "
                                                    "project_id=…; repeatable")] = None,
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
    try:
        spec = WatchSpec.model_validate({"provider": provider, "scan": _scan_params(param or []),
                                         "interval": interval, "discovered": discovered})
    except ValidationError as exc:
        raise _fail(_problems_line(
            {"field": ".".join(str(x) for x in e["loc"]), "problem": e["msg"].removeprefix("Value error, ")}
            for e in exc.errors(include_input=False, include_url=False))) from None
    ((rkey, config_meta),) = watch_rkeys(spec, cls)
    meta = WatchMeta(interval=config_meta.interval, discovered=discovered, scan=config_meta.scan, source="cli")

    async def go() -> tuple[int, dict[str, int], int, int]:
        async with _redis(cfg) as redis:
            store = Store(redis, history_length=cfg.settings.worker.history_length)
            # when this process scans first, the workers' first turn is one interval later
            due = time.time() + meta.interval if run else None
            added = await store.add_watches([(rkey, meta)], due_at=due)
            if not run:
                return added, {}, 0, 0
            outcomes, pages, items = await _first_scan(cfg, store, rkey, show_progress=not as_json)
            return added, outcomes, pages, items

    added, outcomes, pages, items = _run(go())
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
        async with _redis(cfg) as redis:
            return await forget_watches(Store(redis), rkeys)

    removed = _run(go())
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
        async with _redis(cfg) as redis:
            watches = await Store(redis).watches(source=source)
            selected = sorted(k for k in watches if provider is None or k.startswith(f"{provider}:"))
            shown = selected if limit <= 0 else selected[:limit]
            dues = await redis.zmscore(keys.DUE, shown) if shown else []
            rows = [{"rkey": k, "interval": watches[k].interval, "source": watches[k].source,
                     "scan": watches[k].scan, "due_at": d} for k, d in zip(shown, dues, strict=True)]
            return rows, len(selected)

    rows, total = _run(go())
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

    async def go() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        async with _redis(cfg) as redis:
            view = await resource_view(redis, rkey, history=history)
        return view, await _describe(cfg, rkey, view["snapshot"] if view else None)

    view, info = _run(go())
    if view is None:
        raise _fail(f"{rkey} is not watched and was never polled", code=1)
    if as_json:
        _echo_json({**view, "describe": info})
        return
    now = time.time()
    watch = view["watch"]
    how = (f"watched ({watch['source']}), every {watch['interval']:g}s, next poll {_in(view['due_at'], now)}"
           if watch else "not watched")
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


@events_app.command("tail")
def events_tail(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False,
    count: Annotated[int, typer.Option("--count", "-n", help="recent events to print first")] = 10,
    max_events: Annotated[int, typer.Option("--max-events", help="with -f: stop after this many new events")] = 0,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print recent events, then (-f) new ones as they are committed.

    Reads the outbox stream directly (XREAD): it takes nothing from the dispatcher.
    """
    cfg = _load(config)

    def out(entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        raw = fields.get(b"e")
        if raw is None:
            return
        try:
            event = orjson.loads(raw)
            line = (orjson.dumps({"stream_id": entry_id.decode(), **event}).decode() if as_json
                    else _event_line(event))
        except (ValueError, TypeError, AttributeError):
            typer.echo(f"warning: unreadable record skipped: {keys.OUTBOX}[{entry_id.decode()}]", err=True)
            return
        typer.echo(line)

    async def go() -> None:
        async with _redis(cfg) as redis:
            last = b"$"
            if count > 0:
                recent = list(reversed(await redis.xrevrange(keys.OUTBOX, count=count)))
                for entry_id, fields in recent:
                    out(entry_id, fields)
                if recent:
                    last = recent[-1][0]
            if not follow:
                return
            if last == b"$":
                # "$" would be re-read on every call: pin the position to the stream's end now
                newest = await redis.xrevrange(keys.OUTBOX, count=1)
                last = newest[0][0] if newest else b"0-0"
            seen = 0
            while max_events <= 0 or seen < max_events:
                response = await redis.xread({keys.OUTBOX: last}, block=500, count=100)
                for _stream, entries in response or ():
                    for entry_id, fields in entries:
                        out(entry_id, fields)
                        last = entry_id
                        seen += 1
                sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        _run(go())


def register_ops(app: typer.Typer) -> None:
    """Add the operator's commands to the `statehook` app."""
    from worker.cli_simulate import simulate

    app.command("api")(api)
    app.add_typer(watch_app, name="watch")
    app.command("show")(show)
    app.add_typer(events_app, name="events")
    app.command("simulate")(simulate)
    app.command("healthcheck")(healthcheck)
