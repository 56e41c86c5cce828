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

The work is worker/delivery_ops.py's (the console calls it too); the commands only print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from arq.connections import ArqRedis

from config.load import Config, canonical_name
from model.events import Severity
from store.deliveries import Deliveries
from worker.cli_common import ConfigOption, JsonOption
from worker.delivery_ops import (
    delivery_attempts,
    destination_status,
    disable_destination,
    enable_destination,
    is_entry_id,
    list_dead_letters,
    purge_dead_letters,
    replay_dead_letters,
    send_test,
)

__all__ = ["app"]

app = typer.Typer(add_completion=False)
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: deliveries that failed for good.")
notify_app = typer.Typer(no_args_is_help=True, help="Destinations: test, status, enable, delivery attempts.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(notify_app, name="notify")


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
    limit: Annotated[int, typer.Option("--limit", help="at most this many (1 or more)")] = 1000,
) -> None:
    """Dead letters, oldest first: id, when, destination, status, attempts, event, reason."""
    if limit < 1:  # Redis refuses an XRANGE count below 1 (a traceback, before)
        raise _fail(f"--limit: {limit} is below 1")
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
    detail = f" (status {attempt.get('status') or '-'}, {attempt.get('duration_ms')} ms)" if attempt else ""
    if outcome.delivered:
        typer.echo(f"delivered {outcome.event_id} to {canonical_name(destination)}{detail}")
        return
    if outcome.disabled is not None:
        typer.echo(f"{canonical_name(destination)} is disabled ({outcome.disabled}): the worker dead-letters "
                   f"{outcome.event_id}, as every delivery to it, until `statehook notify enable`", err=True)
    elif outcome.queued and not attempt and outcome.held is not None:
        typer.echo(f"{outcome.event_id} waits behind {canonical_name(destination)}'s open circuit ({outcome.held}): "
                   "it is sent when the destination answers again (statehook notify status)", err=True)
    elif outcome.queued and not attempt:
        typer.echo(f"no worker took {outcome.event_id} within {timeout:g}s: is `statehook run` running?", err=True)
    elif outcome.dead_lettered:
        why = attempt.get("error") or "see statehook dlq ls"
        typer.echo(f"failed for good, dead-lettered: {why}{detail}", err=True)
    elif outcome.queued:  # the worker's first attempt failed: its retry schedule goes on
        typer.echo(f"failed: {attempt.get('error')}{detail}; the worker retries it as the destination's "
                   f"retry_schedule says (statehook notify attempts {outcome.event_id})", err=True)
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
        return await enable_destination(redis, cfg, name)

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
    _run(cfg, lambda r: disable_destination(r, cfg, name, reason))
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

