"""What the operator's commands share: the options, loading the config, a Redis client
per command, one-line failures, and how times read.

Human output by default, `--json` for scripts. Each command opens its own Redis client
(the API's: Sentinel URLs work, every call has a timeout) and closes it; while Redis is
unavailable a command says so in one line and exits 1. A stored record that cannot be
read is skipped with a warning naming its key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from arq.connections import ArqRedis

from config import Config, ConfigError, load_config
from config.settings import redis_url_origin
from store.unavailable import redis_refusal

__all__ = ["ConfigOption", "JsonOption", "cli_redis", "due_in", "echo_json", "fail", "load_or_exit", "prepare",
           "problems_line", "run_or_exit", "when"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="statehook.toml (default: $STATEHOOK_CONFIG_FILE or ./statehook.toml)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]

ADD_CHUNK = 1000
"""Resources written (or read) per round trip by a command that handles thousands."""
T = TypeVar("T")


def load_or_exit(path: Path | None, *, warn: bool = False) -> Config:
    """The configuration, or exit 2 after one `error:` line per problem. `warn`: print its
    warnings too (what a long-running process or `check` says once at start)."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        typer.echo(f"configuration invalid: {len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(2) from None
    if warn:
        for line in cfg.warnings:
            typer.echo(f"warning: {line}", err=True)
    return cfg


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
    from worker.persistence import api_redis  # what worker.api.open_redis is; not worker.api (the console's cycle)

    client = api_redis(config.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def echo_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def due_in(ts: float | None, now: float) -> str:
    if ts is None:
        return "not scheduled"
    delta = ts - now
    return "due now" if delta <= 0 else f"in {delta:.0f}s"


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run_or_exit(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`; Redis unavailable is one line and exit 1, a Redis URL that Redis
    refuses one line naming where it was set and exit 2, not a traceback."""
    from worker.persistence import redis_down, redis_problem

    try:
        return asyncio.run(main)
    except Exception as exc:
        if refusal := redis_refusal(exc):
            raise fail(f"{redis_url_origin()}redis_url: {refusal}") from None
        if not redis_down(exc):
            raise
        raise fail(f"redis unavailable: {redis_problem(exc)}", code=1) from None


def problems_line(problems: Iterable[Mapping[str, Any]]) -> str:
    """`field: problem; field: problem` of a validation error."""
    return "; ".join(f"{p.get('field') or '(body)'}: {p.get('problem')}" for p in problems)
