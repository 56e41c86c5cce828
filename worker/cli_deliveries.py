"""`statehook dlq …` and `statehook notify …`: operating deliveries.

    statehook dlq ls                     dead letters, oldest first
    statehook dlq replay ID [ID…]        deliver again (a new delivery job each, then removed)
    statehook dlq replay --all
    statehook dlq purge [--yes]
    statehook notify test DESTINATION    a sample event through the real delivery path
    statehook notify status              destinations: kind, disabled (410 Gone), dead letters
    statehook notify enable NAME         re-enable a destination disabled by a 410
    statehook notify disable NAME
    statehook notify attempts EVENT_ID   every delivery attempt of an event

The async functions do the work and are what tests and the HTTP API call; the commands
only print. A replayed dead letter gets a job id of its own (`…:replay:{entry id}`): the
original job id may still be remembered by ARQ, and replaying one entry twice at once
must not deliver it twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer
from arq.connections import ArqRedis

import notifiers
from config.load import Config, canonical_name
from model.events import Severity
from notifiers.base import NotifierContext
from notifiers.templates import sample_event
from store.circuit import Circuits
from store.deliveries import Deliveries
from store.rates import RateSchedule
from store.reads import Reads, Unreadable
from store.slack import SlackThreads
from tasks.deliver import deliver_once
from worker.cli_common import ConfigOption, JsonOption
from worker.metrics import circuit_gauges
from worker.queue import enqueue_delivery

__all__ = [
    "ReplayOutcome",
    "TestOutcome",
    "app",
    "delivery_attempts",
    "destination_status",
    "disable_destination",
    "enable_destination",
    "list_dead_letters",
    "purge_dead_letters",
    "replay_dead_letters",
    "send_test",
]

app = typer.Typer(add_completion=False)
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: deliveries that failed for good.")
notify_app = typer.Typer(no_args_is_help=True, help="Destinations: test, status, enable, delivery attempts.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(notify_app, name="notify")


# -- the work ------------------------------------------------------------------------------


ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
"""A stream entry id, `ms-seq` (each a 64-bit number, checked by `is_entry_id`)."""


def is_entry_id(text: str) -> bool:
    """Whether `text` is a stream entry id Redis takes (`1700000000000-0`)."""
    if ENTRY_ID.fullmatch(text) is None:
        return False
    ms, seq = text.split("-")
    return int(ms) < 2**64 and int(seq) < 2**64


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    entry_id: str
    event_id: str
    destination: str
    enqueued: bool
    """False when that replay was already queued (and this one was dropped)"""


async def list_dead_letters(redis: ArqRedis, limit: int = 1000) -> list[dict[str, Any]]:
    """The oldest `limit` dead letters; an entry that cannot be read is left out, logged
    with its key and counted (statehook_corrupt_records_total)."""
    bad = Unreadable()
    letters, _ = await Reads(redis).dead_letter_page(bad, count=limit)
    await bad.report(redis)
    return [d.as_dict() for d in letters]


async def replay_dead_letters(redis: ArqRedis, entry_ids: list[str] | None, *,
                             history_length: int = 50) -> list[ReplayOutcome]:
    """Enqueue a delivery per dead letter (all of them if `entry_ids` is None), then remove
    each from the stream and note the replay in its resource's timeline (the config's
    `worker.history_length` entries kept): enqueued first, so a crash in between loses nothing."""
    deliveries = Deliveries(redis)
    out = []
    async for entry in deliveries.replay_entries(entry_ids):
        enqueued = await enqueue_delivery(redis, entry.event_id, entry.event_json, entry.destination,
                                          replay_of=entry.entry_id)
        await deliveries.replayed(entry, history_length=history_length, noted=enqueued)
        out.append(ReplayOutcome(entry.entry_id, entry.event_id, entry.destination, enqueued))
    return out


async def purge_dead_letters(redis: ArqRedis) -> int:
    return await Deliveries(redis).purge_dead_letters()


async def delivery_attempts(redis: ArqRedis, event_id: str) -> list[dict[str, Any]]:
    """Every recorded attempt to deliver `event_id`, oldest first (the last 20 per event)."""
    return await Deliveries(redis).attempts(event_id)


async def destination_status(redis: ArqRedis, config: Config) -> list[dict[str, Any]]:
    """Each destination: its kind, whether it is enabled or disabled (and why), its dead
    letters, and its circuit (`closed`, `open`, `flushing`) with the deliveries held."""
    deliveries = Deliveries(redis)
    disabled = await deliveries.disabled()
    dead = await deliveries.dead_letter_counts()
    circuits = {c.destination: c for c in await circuit_gauges(Circuits(redis))}
    names = sorted(set(config.destinations) | set(disabled))
    return [
        {
            "name": name,
            "kind": config.destinations[name].kind if name in config.destinations else None,
            "configured": name in config.destinations,
            "enabled": config.destinations[name].enabled if name in config.destinations else False,
            "disabled": disabled.get(name),
            "dead_letters": dead.get(name, 0),
            "circuit": circuits[name].status.value if name in circuits else "closed",
            "held": circuits[name].held if name in circuits else 0,
        }
        for name in names
    ]


async def enable_destination(redis: ArqRedis, name: str) -> bool:
    """Lift a 410's disable. True if it was disabled."""
    return await Deliveries(redis).enable(canonical_name(name))


async def disable_destination(redis: ArqRedis, name: str, reason: str) -> None:
    await Deliveries(redis).disable(canonical_name(name), f"{reason} (by hand)")


@dataclass(frozen=True, slots=True)
class TestOutcome:
    event_id: str
    delivered: bool
    dead_lettered: bool = False
    retry_in: float | None = None
    attempt: dict[str, Any] | None = None
    queued: bool = False


async def send_test(
    redis: ArqRedis,
    config: Config,
    destination: str,
    *,
    severity: Severity = Severity.CRITICAL,
    via_worker: bool = False,
    timeout: float = 30.0,
) -> TestOutcome:
    """A sample event to `destination` through the delivery path: its templates, its rate
    limit, a recorded attempt, the dead letters on a permanent failure. In this process by
    default; with `via_worker`, as a delivery job that a running worker takes (and retries)."""
    name = canonical_name(destination)
    if name not in config.destinations:
        raise KeyError(name)
    event = sample_event(severity, event_id=f"evt_test_{uuid.uuid4().hex[:16]}")
    if via_worker:
        await enqueue_delivery(redis, event.id, event.to_json(), name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attempts = await delivery_attempts(redis, event.id)
            if attempts:
                last = attempts[-1]
                return TestOutcome(event.id, bool(last["ok"]), attempt=last, queued=True)
            await asyncio.sleep(0.1)
        return TestOutcome(event.id, False, queued=True)
    settings = config.destinations[name]
    async with aiohttp.ClientSession() as session:
        nctx = NotifierContext(session, RateSchedule(redis), SlackThreads(redis))
        notifier = notifiers.REGISTRY[settings.kind](name, settings, nctx)
        notifiers.bind_routes([notifier], config.routes)
        try:
            result = await deliver_once(Deliveries(redis), notifier, name, event.to_json(), 1)
        finally:
            await notifier.close()
    attempts = await delivery_attempts(redis, event.id)
    return TestOutcome(event.id, result.delivered, result.dead_lettered, result.retry_in,
                       attempts[-1] if attempts else None)


# -- the commands ----------------------------------------------------------------------------


def _config(path: Path | None) -> Config:
    from worker.cli_common import load_or_exit  # the CLI's own loader: one message per problem

    return load_or_exit(path)


def _run(config: Config, work: Any) -> Any:
    """`work(redis)` with the CLI's client (timeouts on every call, Sentinel URLs work);
    Redis unavailable is one line and exit 1 (ARQ's pool retried for 30 s, then a traceback)."""
    from worker.cli_common import cli_redis, run_or_exit

    async def go() -> Any:
        async with cli_redis(config) as redis:
            return await work(redis)

    return run_or_exit(go())


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _known_destination(config: Config, name: str) -> None:
    """Exit 2 with one line unless `name` is a configured destination."""
    if canonical_name(name) not in config.destinations:
        known = ", ".join(sorted(config.destinations)) or "none"
        raise _fail(f"no destination named {name!r} (known: {known})")


@dlq_app.command("ls")
def dlq_ls(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", help="at most this many")] = 1000,
) -> None:
    """Dead letters, oldest first: id, when, destination, status, attempts, event, reason."""
    cfg = _config(config)

    async def work(redis: ArqRedis) -> tuple[list[dict[str, Any]], dict[str, str]]:
        return await list_dead_letters(redis, limit), await Deliveries(redis).disabled()

    entries, disabled = _run(cfg, work)
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    for name, why in sorted(disabled.items()):
        typer.echo(f"destination {name} is DISABLED: {why} (statehook notify enable {name})")
    if not entries:
        typer.echo("no dead letters")
        return
    for d in entries:
        typer.echo(f"{d['id']}  {d['at']}  {d['destination']}  status={d['status'] or '-'}  "
                   f"attempts={d['attempts']}  {d['type']}  {d['resource']}  {d['event_id']}\n    {d['reason']}")
    typer.echo(f"{len(entries)} dead letter(s)")


@dlq_app.command("replay")
def dlq_replay(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="dead letter ids (from `dlq ls`)")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
    config: ConfigOption = None,
) -> None:
    """Deliver dead letters again: each becomes a delivery job, with the retry schedule."""
    if bool(entry_ids) == replay_all:
        raise _fail("give dead letter ids or --all")
    bad = [e for e in entry_ids or [] if not is_entry_id(e)]
    if bad:
        raise _fail(f"{bad[0]!r} is not a DLQ entry id (expected like 1700000000000-0; `statehook dlq ls` "
                    "lists them)")
    cfg = _config(config)
    outcomes = _run(cfg, lambda r: replay_dead_letters(r, None if replay_all else list(entry_ids or []),
                                                       history_length=cfg.settings.worker.history_length))
    for o in outcomes:
        what = "queued" if o.enqueued else "already queued"
        typer.echo(f"{o.entry_id}: {o.event_id} -> {o.destination}: {what}")
        if o.destination not in cfg.destinations:
            typer.echo(f"  warning: {o.destination} is not in the configuration: it will be dead-lettered again")
    replayed = {o.entry_id for o in outcomes}
    missing = list(dict.fromkeys(e for e in entry_ids or [] if e not in replayed))
    if outcomes or not missing:
        typer.echo(f"{len(outcomes)} replayed")
    if missing:
        raise _fail(f"no such dead letter: {', '.join(missing)}", code=1)


@dlq_app.command("purge")
def dlq_purge(
    config: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
) -> None:
    """Delete every dead letter."""
    cfg = _config(config)
    if not yes:
        typer.confirm("delete every dead letter?", abort=True)
    n = _run(cfg, purge_dead_letters)
    typer.echo(f"{n} dead letter(s) deleted")


@notify_app.command("test")
def notify_test(
    destination: Annotated[str, typer.Argument(help="a destination name from the config")],
    config: ConfigOption = None,
    severity: Annotated[Severity, typer.Option("--severity")] = Severity.CRITICAL,
    via_worker: Annotated[bool, typer.Option("--via-worker", help="as a job for a running worker")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="with --via-worker: seconds to wait")] = 30.0,
) -> None:
    """Send a sample event to DESTINATION through the real delivery path."""
    cfg = _config(config)
    _known_destination(cfg, destination)
    outcome = _run(cfg, lambda r: send_test(r, cfg, destination, severity=severity, via_worker=via_worker,
                                            timeout=timeout))
    attempt = outcome.attempt or {}
    detail = f" (status {attempt.get('status')}, {attempt.get('duration_ms')} ms)" if attempt else ""
    if outcome.delivered:
        typer.echo(f"delivered {outcome.event_id} to {canonical_name(destination)}{detail}")
        return
    if outcome.queued and not attempt:
        typer.echo(f"no worker took {outcome.event_id} within {timeout:g}s: is `statehook run` running?", err=True)
    elif outcome.dead_lettered:
        why = attempt.get("error") or "see statehook dlq ls"
        typer.echo(f"failed for good, dead-lettered: {why}{detail}", err=True)
    else:
        later = f"; a worker would retry in {outcome.retry_in:.1f}s" if outcome.retry_in is not None else ""
        typer.echo(f"failed: {attempt.get('error')}{detail}{later}", err=True)
    raise typer.Exit(1)


@notify_app.command("status")
def notify_status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every destination: kind, enabled, disabled by a 410 (and why), dead letters, an open circuit."""
    cfg = _config(config)
    rows = _run(cfg, lambda r: destination_status(r, cfg))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"DISABLED: {row['disabled']}" if row["disabled"] else ("ok" if row["enabled"] else "off in config")
        kind = row["kind"] or "not configured"
        circuit = "" if row["circuit"] == "closed" else f"  circuit {row['circuit']}, {row['held']} held"
        typer.echo(f"{row['name']:<24} {kind:<10} {state}  dead letters: {row['dead_letters']}{circuit}")


@notify_app.command("enable")
def notify_enable(name: Annotated[str, typer.Argument(help="a destination name from the config")],
                  config: ConfigOption = None) -> None:
    """Re-enable a destination that a 410 Gone disabled."""
    cfg = _config(config)

    async def work(redis: ArqRedis) -> bool:
        # one that left the config but is still marked disabled may be enabled (the mark removed)
        if canonical_name(name) not in cfg.destinations and not await Deliveries(redis).is_disabled(
                canonical_name(name)):
            _known_destination(cfg, name)
        return await enable_destination(redis, name)

    was = _run(cfg, work)
    typer.echo(f"{canonical_name(name)} enabled" if was else f"{canonical_name(name)} was not disabled")
    if was:
        typer.echo("its dead letters stay: `statehook dlq replay --all` sends them again")


@notify_app.command("disable")
def notify_disable(
    name: Annotated[str, typer.Argument(help="a destination name from the config")],
    config: ConfigOption = None,
    reason: Annotated[str, typer.Option("--reason")] = "disabled by an operator",
) -> None:
    """Stop delivering to a destination (its deliveries are dead-lettered) until enabled."""
    cfg = _config(config)
    _known_destination(cfg, name)
    _run(cfg, lambda r: disable_destination(r, name, reason))
    typer.echo(f"{canonical_name(name)} disabled")


@notify_app.command("attempts")
def notify_attempts(
    event_id: Annotated[str, typer.Argument(help="evt_… (or dig_… for a digest)")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every recorded delivery attempt of an event: destination, status, duration, error."""
    cfg = _config(config)
    attempts = _run(cfg, lambda r: delivery_attempts(r, event_id))
    if as_json:
        typer.echo(json.dumps(attempts, indent=2))
        return
    if not attempts:
        typer.echo(f"no delivery attempts recorded for {event_id}")
        raise typer.Exit(1)
    for a in attempts:
        result = "ok" if a["ok"] else f"failed: {a['error']}"
        typer.echo(f"{a['at']}  {a['destination']:<20} #{a['attempt']:<3} status={a['status'] or '-':<4} "
                   f"{a['duration_ms']:>8.1f} ms  {result}")

