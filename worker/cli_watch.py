"""`statehook watch add|scan|rm|ls`: watched resources, by id or by a scan of a collection."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from config import Config
from model.resources import ResourceRef, ScanPage
from store.reads import Reads, Unreadable, WatchEntry
from store.snapshots import Store, WatchMeta
from store.stats import StatsRecorder
from store.watch_cursor import WatchCursor
from worker.cli_common import (
    ADD_CHUNK,
    ConfigOption,
    JsonOption,
    cli_redis,
    due_in,
    echo_json,
    fail,
    load_or_exit,
    problems_line,
    run_or_exit,
)

__all__ = ["scan_problems", "watch_app"]

watch_app = typer.Typer(no_args_is_help=True, help="Add, remove and list watched resources.")

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
    stall_after: Annotated[list[str] | None, typer.Option(
        "--stall-after", help="one *.stalled after this long in one state: 2h, or STATE=2h (repeat; *=0: "
        "off for the other states); default: the provider's")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Watch resources by id (source "cli"). Already watched ones keep their next poll time."""
    import re

    from model.values import ID_PATTERN, ID_RULE, parse_duration
    from worker.api import InvalidWatch, validate_watch

    cfg = load_or_exit(config)
    all_ids = _read_ids(ids or [], from_file)
    if not all_ids:
        raise fail("no ids given (arguments or --from-file)")
    valid = re.compile(ID_PATTERN)
    bad = [rid for rid in all_ids if not valid.fullmatch(rid)]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise fail(f"invalid id(s): {shown} ({ID_RULE})")
    try:  # the file's duration forms (`1h30m` too), then the API's bounds
        seconds = parse_duration(interval)
    except ValueError as exc:
        raise fail(f"--interval: {exc}") from None
    stall: dict[str, str | float] = {}
    for item in stall_after or []:
        state, sep, value = item.rpartition("=")
        stall["*" if not sep else state] = float(value) if value.strip() in ("0", "0.0") else value
    try:
        # provider, kind, interval and stall times, as the API checks them
        req, resolved_kind = validate_watch(cfg, {"provider": provider, "kind": kind, "ids": all_ids[:1],
                                                   "interval": seconds, "discovered": discovered,
                                                   **({"stall_after": stall} if stall else {})})
    except InvalidWatch as exc:
        if exc.detail.get("problems"):
            raise fail(problems_line(exc.detail["problems"])) from None
        raise fail(exc.reason + _detail_text(exc.detail)) from None
    meta = WatchMeta(interval=float(req.interval or 60.0), discovered=discovered, source="cli",
                     stall_after=req.stall_after)
    rkeys = [ResourceRef(provider, resolved_kind, rid).key for rid in all_ids]

    async def go() -> int:
        async with cli_redis(cfg) as redis:
            return await _add_in_chunks(Store(redis), rkeys, meta, show_progress=not as_json)

    added = run_or_exit(go())
    if as_json:
        echo_json({"provider": provider, "kind": resolved_kind, "interval": meta.interval,
                    "watched": len(rkeys), "added": added})
    else:
        typer.echo(f"{len(rkeys)} {provider} {resolved_kind}(s) watched every {meta.interval:g}s "
                   f"({added} new, {len(rkeys) - added} already watched)")


def _scan_params(params: list[str]) -> dict[str, str]:
    out = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise fail(f"--param takes key=value, not {item!r}")
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
            recorder = StatsRecorder()

            def count_events(events: list[Any]) -> None:
                for e in events:
                    recorder.event(e.provider, e.type)

            poller = Poller(store, {ref.provider: provider}, on_events=count_events)
            outcomes = await poller.poll([rkey])
        await provider.close()
    for outcome, n in outcomes.items():
        recorder.poll(ref.provider, outcome.value, n)
    await store.incr_stats(recorder.drain())
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

    cfg = load_or_exit(config)
    cls = provider_registry.REGISTRY.get(provider)
    if cls is None or provider not in cfg.providers:
        raise fail(f"provider {provider!r} is not configured (configured: {', '.join(sorted(cfg.providers))})")
    if "scan" not in cls.kinds:
        raise fail(f"{provider} cannot list its resources: watch them by id")
    params = _scan_params(param or [])
    problems = scan_problems(provider, params)
    if problems:
        raise fail("; ".join(problems))
    try:
        spec = WatchSpec.model_validate({"provider": provider, "scan": params,
                                         "interval": interval, "discovered": discovered})
    except ValidationError as exc:
        raise fail(problems_line(
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
        echo_json({"rkey": rkey, "added": added, "interval": meta.interval, "pages": pages, "items": items,
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

    cfg = load_or_exit(config)
    rkeys = list(rkey or [])
    if provider is not None:
        cls = provider_registry.REGISTRY.get(provider)
        if cls is None:
            raise fail(f"unknown provider {provider!r}")
        rkeys += [ResourceRef(provider, kind or cls.default_kind, rid).key for rid in ids or []]
    if not rkeys:
        raise fail("nothing to remove: give PROVIDER IDS… or --rkey")

    async def go() -> int:
        async with cli_redis(cfg) as redis:
            return await forget_watches(Store(redis), rkeys)

    removed = run_or_exit(go())
    if as_json:
        echo_json({"removed": removed, "rkeys": rkeys})
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
    """List watched resources with their interval, origin and next poll: the first LIMIT
    found (sorted; a page by cursor, so it answers as fast at a million watches), or with
    --limit 0 all of them (sorted; reads every watch)."""
    cfg = load_or_exit(config)

    async def go() -> tuple[list[dict[str, Any]], int | None]:
        async with cli_redis(cfg) as redis:
            if limit <= 0:
                return await _all_watches(redis, provider, source)
            return await _watches_found(redis, provider, source, limit)

    rows, total = run_or_exit(go())
    if as_json:
        echo_json({"watches": rows, "total": total})
        return
    now = time.time()
    width = max((len(r["rkey"]) for r in rows), default=10)
    for r in rows:
        typer.echo(f"{r['rkey']:<{width}}  every {r['interval']:>6g}s  {r['source']:<6}  {due_in(r['due_at'], now)}")
    if total is None:  # a filter, and more watches than were read to fill the page
        typer.echo(f"{len(rows)} watch(es) shown, more may match (--limit 0 lists all)")
        return
    more = f" (showing {len(rows)})" if len(rows) < total else ""
    typer.echo(f"{total} watch(es){more}")


def _row(rkey: str, meta: WatchMeta, due: float | None) -> dict[str, Any]:
    return {"rkey": rkey, "interval": meta.interval, "source": meta.source, "scan": meta.scan, "due_at": due}


async def _all_watches(redis: Any, provider: str | None, source: str | None) -> tuple[list[dict[str, Any]], int]:
    watches = await Store(redis).watches(source=source)
    selected = sorted(k for k in watches if provider is None or k.startswith(f"{provider}:"))
    dues = await Reads(redis).due_times(selected)
    return [_row(k, watches[k], d) for k, d in zip(selected, dues, strict=True)], len(selected)


def _detail_text(detail: Mapping[str, Any]) -> str:
    """` (known: a, b)` of a refusal's detail, as the config's errors say it (no JSON)."""
    parts = [f"{name}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
             for name, value in detail.items()]
    return f" ({'; '.join(parts)})" if parts else ""


async def _watches_found(redis: Any, provider: str | None, source: str | None,
                         limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """The first `limit` watches HSCAN finds (sorted), and how many match: every watch
    without a filter (HLEN), the ones seen when the scan ended, else None (unknown)."""
    reads, bad = Reads(redis), Unreadable()
    found: list[WatchEntry] = []
    cursor: WatchCursor | None = WatchCursor()
    while cursor is not None and len(found) < limit:
        page = await reads.watch_page(bad, provider=provider, source=source, cursor=cursor, limit=limit - len(found))
        found += page.watches
        cursor = page.cursor
    await bad.report(redis)
    rows = sorted((_row(w.rkey, w.meta, w.due_at) for w in found[:limit]), key=lambda r: str(r["rkey"]))
    if cursor is None:
        return rows, len(found)
    if provider is None and source is None:
        return rows, (await reads.watch_counts(time.time()))[1]
    return rows, None
