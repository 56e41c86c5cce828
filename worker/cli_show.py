"""`statehook show`: one resource's snapshot, next poll and timeline."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from arq.connections import ArqRedis

from config import Config
from core.backoff import poll_backoff
from core.schedule import next_poll_at
from model.resources import ResourceRef
from providers.base import ProviderSettings
from store import keys
from store.reads import Reads
from store.records import decode_state
from store.snapshots import CorruptRecord, ResourceState
from worker.cli_common import (
    ConfigOption,
    JsonOption,
    cli_redis,
    due_in,
    echo_json,
    fail,
    load_or_exit,
    run_or_exit,
    when,
)
from worker.jobs import SCHEDULE_TICK

__all__ = ["next_poll", "schedule_gap", "show"]


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
    raw, paused_for = await Reads(redis).schedule_facts(rkey)
    try:
        state = decode_state(raw, f"{keys.STATE}[{rkey}]")
    except CorruptRecord:
        state = None  # resource_view has warned about it
    return state, paused_for


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
        return due_in(next_at, now)
    return f"due now (claimed for a poll; the claim's lease runs out {due_in(lease_until, now)})"


def show(
    rkey: Annotated[str, typer.Argument(help="provider:kind:id, e.g. rev:order:TC432432")],
    history: Annotated[int, typer.Option("--history", help="events to show")] = 20,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A resource's current snapshot, and its timeline of events and their deliveries."""
    from worker.api import resource_view

    cfg = load_or_exit(config)
    try:
        ResourceRef.parse(rkey)
    except ValueError as exc:
        raise fail(str(exc)) from None

    async def go() -> tuple[dict[str, Any] | None, tuple[ResourceState | None, float], dict[str, Any] | None]:
        async with cli_redis(cfg) as redis:
            view = await resource_view(redis, rkey, history=history)
            facts = await _schedule_facts(redis, rkey)
        return view, facts, await _describe(cfg, rkey, view["snapshot"] if view else None)

    view, facts, info = run_or_exit(go())
    if view is None:
        raise fail(f"{rkey} is not watched and was never polled", code=1)
    now = time.time()
    next_at, lease_until = _poll_times(cfg, view, facts, now)
    if as_json:
        echo_json({**view, "next_poll_at": next_at, "lease_until": lease_until, "describe": info})
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
        typer.echo(f"  seq {state['seq']}, last change {when(state['changed_at'])}, digest {state['digest'][:12]}")
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
