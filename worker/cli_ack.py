"""`statehook ack RKEY [--comment …] [--author …]`: acknowledge a resource's current state,
so that its reminders stop until the state changes (store/reminders.py). One line: what was
acknowledged, or why nothing was (exit 1: an unknown resource, or no reminder armed)."""

from __future__ import annotations

import getpass
import time
from typing import Annotated

import typer

from core.reminders import ack_problem
from model.resources import ResourceRef
from store.reminders import AckResult, Reminders
from worker.api_ack import nothing_armed
from worker.cli_common import ConfigOption, JsonOption, cli_redis, echo_json, fail, load_or_exit, run_or_exit

__all__ = ["ack"]


def _default_author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without one): still an author
        return "cli"


def ack(
    rkey: Annotated[str, typer.Argument(help="provider:kind:id, e.g. artistree:order:ord-1")],
    comment: Annotated[str, typer.Option("--comment", "-m", help="why, for the timeline")] = "",
    author: Annotated[str | None, typer.Option("--author", help="who (default: your login name)")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge a resource's current state: its reminders stop until the state changes."""
    cfg = load_or_exit(config)
    try:
        ResourceRef.parse(rkey)
    except ValueError as exc:
        raise fail(str(exc)) from None
    who = author if author is not None else _default_author()
    problem = ack_problem(who, comment)
    if problem is not None:
        raise fail(problem)
    now = time.time()

    async def go() -> AckResult:
        async with cli_redis(cfg) as redis:
            reminders = Reminders(redis, history_length=cfg.settings.worker.history_length)
            return await reminders.ack(rkey, author=who, comment=comment, now=now)

    result = run_or_exit(go())
    if not result.known:
        raise fail(f"{rkey} is not watched and was never polled", code=1)
    if result.state is None:
        raise fail(nothing_armed(rkey, result), code=1)
    if as_json:
        echo_json({"rkey": rkey, "state": result.state, "stopped": result.stopped, "author": who,
                   "comment": comment, "at": now})
        return
    plural = "" if result.stopped == 1 else "s"
    typer.echo(f"acknowledged {rkey} in state {result.state!r} by {who}: {result.stopped} reminder{plural} stopped")
