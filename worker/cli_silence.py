"""`statehook silence add|ls|extend|expire`: silences from the command line, the same
operations as /v1/silences (worker/silence_ops.py).

    statehook silence add --match provider=artistree --match state=Failed --ends 2h -m "deploy"
    statehook silence add --match destination=slack --ends 30m --preview
    statehook silence ls [--all]
    statehook silence extend sil_… --ends 4h
    statehook silence expire sil_…

`add --preview` lists what the silence would have muted among the last 24 h of events and
stores nothing; a silence that would mute every one of them (or has no matcher) is refused
without `--force`. Each refusal is one `error:` line (exit 2 for what was typed, 1 for what
the clock or the recent events refuse)."""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from core.silences import parse_matchers, parse_when
from model.silences import Silence, SilenceState
from worker.api_fields import one_line, problems
from worker.cli_common import ConfigOption, JsonOption, cli_redis, echo_json, fail, load_or_exit, run_or_exit, when
from worker.silence_ops import (
    Created,
    SilenceRefused,
    create_silence,
    expire_silence,
    extend_silence,
    list_silences,
)

__all__ = ["app"]

app = typer.Typer(name="silence", no_args_is_help=True, help="Mute matching events for a while (silences).")

PREVIEW_SHOWN = 50
"""Muted deliveries printed by `add --preview` (the counts say how many there were)."""

EndsOption = Annotated[str, typer.Option("--ends", help="when it ends: a duration from now (2h, 30m, 1d) or an "
                                         "ISO 8601 time (UTC unless it says otherwise)")]


def _default_author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without one)
        return "cli"


def _doc(s: Silence, now: float) -> dict[str, object]:
    return {"id": s.id, "state": s.state(now).value, "match": s.match.given(), "starts_at": when(s.starts_at),
            "ends_at": when(s.ends_at), "author": s.author, "comment": s.comment, "created_at": when(s.created_at)}


def _line(s: Silence, now: float) -> str:
    match = ", ".join(f"{k}={'|'.join(v)}" for k, v in s.match.given().items()) or "(everything)"
    by = f" by {s.author}" if s.author else ""
    note = f": {s.comment}" if s.comment else ""
    return f"{s.id}  {s.state(now).value:<8} {when(s.starts_at)} → {when(s.ends_at)}  {match}{by}{note}"


def _when(text: str, now: float, option: str) -> float:
    try:
        return parse_when(text, now)
    except ValueError as exc:
        raise fail(f"{option}: {exc}") from None


def _print_preview(made: Created, as_json: bool, now: float) -> None:
    found = made.preview
    if as_json:
        echo_json({"silence": _doc(made.silence, now) | ({} if made.created else {"id": None}),
                   "created": made.created, "needs_force": made.needs_force,
                   "preview": {"events": found.events, "muted_events": found.muted_events,
                               "muted_deliveries": len(found.muted),
                               "deliveries": [{"event_id": f.id, "type": f.type, "rkey": f.rkey, "state": f.state,
                                               "severity": f.severity.value, "detected_at": f.detected_at,
                                               "destination": d} for f, d in found.muted]}})
        return
    typer.echo(f"would have muted {len(found.muted)} deliveries of {found.events} events in the last 24 h"
               f" ({found.muted_events} on every destination they went to):")
    for f, d in found.muted[:PREVIEW_SHOWN]:
        state = f" → {f.state}" if f.state else ""
        typer.echo(f"  {f.detected_at}  {f.rkey}  {f.type}{state}  [{f.severity.value}]  to {d}")
    if len(found.muted) > PREVIEW_SHOWN:
        typer.echo(f"  … and {len(found.muted) - PREVIEW_SHOWN} more (--json lists them all)")
    if made.needs_force:
        typer.echo(f"needs --force: {made.needs_force}")


@app.command("add")
def add(
    ends: EndsOption,
    match: Annotated[list[str] | None, typer.Option("--match", help="key=value, repeatable (keys: provider, type, "
                                                    "rkey, id, state, severity, tags, project, destination)")] = None,
    starts: Annotated[str, typer.Option("--starts", help="when it starts (default: now)")] = "now",
    author: Annotated[str | None, typer.Option("--author", help="who (default: your login name)")] = None,
    comment: Annotated[str, typer.Option("--comment", "-m", help="why")] = "",
    preview: Annotated[bool, typer.Option("--preview", help="only list what it would have muted in the last 24 h")]
    = False,
    force: Annotated[bool, typer.Option("--force", help="create it even if it mutes every recent event")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a silence: matching events are not sent to the matching destinations until it ends."""
    cfg = load_or_exit(config)
    try:
        matchers = parse_matchers(match or [])
    except ValidationError as exc:
        raise fail(f"--match: {one_line(problems(exc))}") from None
    except ValueError as exc:
        raise fail(f"--match: {exc}") from None
    if len(author or "") > 200 or len(comment) > 2000:
        raise fail("--author is at most 200 characters, --comment at most 2000")
    now = time.time()
    starts_at, ends_at = _when(starts, now, "--starts"), _when(ends, now, "--ends")

    async def go() -> Created:
        async with cli_redis(cfg) as redis:
            return await create_silence(redis, matchers, starts_at=starts_at, ends_at=ends_at,
                                        author=author if author is not None else _default_author(), comment=comment,
                                        now=now, max_duration=cfg.settings.silences.max_duration,
                                        destinations=cfg.destinations, force=force, dry_run=preview)

    try:
        made = run_or_exit(go())
    except SilenceRefused as exc:
        hint = "; add a matcher, or pass --force" if exc.needs_force else ""
        raise fail(exc.reason + hint, code=1) from None
    if preview:
        _print_preview(made, as_json, now)
        return
    if as_json:
        echo_json(_doc(made.silence, now))
        return
    typer.echo(f"created {_line(made.silence, now)}")
    typer.echo(f"it would have muted {len(made.preview.muted)} deliveries of {made.preview.events} events "
               "in the last 24 h")


@app.command("ls")
def ls(
    show_all: Annotated[bool, typer.Option("--all", help="expired ones too (kept 5 days)")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the pending and active silences, oldest first."""
    cfg = load_or_exit(config)
    now = time.time()
    states = None if show_all else {SilenceState.PENDING, SilenceState.ACTIVE}

    async def go() -> list[Silence]:
        async with cli_redis(cfg) as redis:
            return await list_silences(redis, now=now, states=states)

    found = run_or_exit(go())
    if as_json:
        echo_json([_doc(s, now) for s in found])
        return
    if not found:
        typer.echo("no silences" if show_all else "no pending or active silences")
    for s in found:
        typer.echo(_line(s, now))


@app.command("extend")
def extend(
    silence_id: Annotated[str, typer.Argument(metavar="ID", help="the silence's id (sil_…)")],
    ends: EndsOption,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a silence a new end (later, or sooner)."""
    cfg = load_or_exit(config)
    now = time.time()
    ends_at = _when(ends, now, "--ends")

    async def go() -> Silence:
        async with cli_redis(cfg) as redis:
            return await extend_silence(redis, silence_id, ends_at, now=now,
                                        max_duration=cfg.settings.silences.max_duration)

    _done(go, now, as_json, "extended")


@app.command("expire")
def expire(
    silence_id: Annotated[str, typer.Argument(metavar="ID", help="the silence's id (sil_…)")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """End a silence now."""
    cfg = load_or_exit(config)
    now = time.time()

    async def go() -> Silence:
        async with cli_redis(cfg) as redis:
            return await expire_silence(redis, silence_id, now=now)

    _done(go, now, as_json, "expired")


def _done(go: Callable[[], Coroutine[Any, Any, Silence]], now: float, as_json: bool, verb: str) -> None:
    try:
        changed = run_or_exit(go())
    except SilenceRefused as exc:
        raise fail(exc.reason, code=1) from None
    if as_json:
        echo_json(_doc(changed, now))
    else:
        typer.echo(f"{verb} {_line(changed, now)}")
