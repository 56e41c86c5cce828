"""The `statehook` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer

try:  # typer carries its own copy of click since 0.26
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # type: ignore[assignment]

from config.show import resolved
from worker.cli_ack import ack
from worker.cli_common import ConfigOption, JsonOption, load_or_exit, run_or_exit
from worker.cli_deliveries import app as deliveries_app
from worker.cli_ops import register_ops
from worker.cli_silence import app as silence_app

__all__ = ["app", "main"]

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # typer's Rich help shows `<bool>` on every flag
    help="Watch providers, detect state changes, deliver events.",
)

@app.command()
def check(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    probe: Annotated[bool, typer.Option("--redis/--no-redis", help="also ask the Redis it points at whether it "
                                        "keeps its data (AOF); a few seconds at most")] = True,
) -> None:
    """Validate the environment and the config file; print what they resolve to, secrets masked.

    Warnings (exit 0): a STATEHOOK_ variable that sets nothing; Redis keeps no AOF, or could
    not tell, or is unreachable.
    """
    from worker.persistence import redis_warnings

    cfg = load_or_exit(config)
    data = resolved(cfg)
    warnings = cfg.warnings + (run_or_exit(redis_warnings(cfg.redis_url)) if probe else [])
    for line in warnings:
        typer.echo(f"warning: {line}", err=True)
    if as_json:
        typer.echo(json.dumps({**data, "warnings": warnings}, indent=2))
        return
    typer.echo(f"config: {data['config_file'] or '(environment only)'}")
    typer.echo(f"redis:  {data['redis_url']}")
    typer.echo(f"providers ({len(cfg.providers)}):")
    for name, p in data["providers"].items():
        typer.echo(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in p.items()))
    typer.echo(f"watches ({len(cfg.watches)}):")
    for w in data["watches"]:
        what = f"scan {w['scan']}" if w["scan"] else f"{len(w['ids'])} ids"
        typer.echo(f"  {w['provider']}: {what}, every {w['interval']}s")
    typer.echo(f"destinations ({len(cfg.destinations)}):")
    for name, d in data["destinations"].items():
        typer.echo(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in d.items()))
    typer.echo(f"routes ({len(cfg.routes)}):")
    for i, r in enumerate(data["routes"]):
        match = {k: v for k, v in r["match"].items() if v is not None}
        typer.echo(f"  {i}: {match or 'everything'} -> {', '.join(r['to'])}{_route_timing(r)}")
    typer.echo(f"time intervals ({len(data['time_intervals'])}):")
    for t in data["time_intervals"]:
        typer.echo(f"  {t['name']}: " + "; or ".join(_interval_text(i) for i in t["time_intervals"]))
    typer.echo("ok")


def _route_timing(route: dict[str, Any]) -> str:
    """A route's throttle, digest, muting and reminders, as `check` prints them (nothing when
    it has none). A throttle drops an event's repeats first; a digest gathers what is left."""
    parts = []
    if route.get("throttle"):
        parts.append(f"throttled to one per resource and type every {route['throttle']:g}s")
    if route.get("digest"):
        parts.append(f"a digest every {route['digest']:g}s")
    if route.get("mute_during"):
        parts.append(f"muted during {', '.join(route['mute_during'])} (then {route.get('after_window')})")
    if route.get("active_during"):
        parts.append(f"active during {', '.join(route['active_during'])}")
    if route.get("repeat_every"):
        parts.append(f"reminders every {route['repeat_every']:g}s")
    return f" [{'; '.join(parts)}]" if parts else ""


def _interval_text(interval: dict[str, Any]) -> str:
    """One `[[time_intervals]]` entry: each field given, and its zone."""
    fields = [f"{k} {_listed(v)}" for k, v in interval.items() if k != "location" and v]
    return (", ".join(fields) or "always") + f" ({interval['location']})"


def _listed(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_listed(v) for v in value)
    if isinstance(value, dict):
        return "-".join(str(v) for v in value.values())
    return str(value)


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run a worker: scheduler, pollers, dispatcher and deliveries (production)."""
    from worker.cli_common import prepare
    from worker.settings import run_worker

    cfg = load_or_exit(config, warn=True)
    prepare(cfg)  # logs that redact, then Sentry: before the worker is made
    run_worker(cfg)


@app.command()
def demo(
    seconds: Annotated[float, typer.Option("--seconds", help="stop after this long (0: until Ctrl-C)")] = 0,
) -> None:
    """Everything on this machine: a private Redis, the simulator, a webhook receiver and a worker."""
    from worker.demo import run_demo

    sys.exit(asyncio.run(run_demo(seconds)))


register_ops(app)
app.add_typer(deliveries_app)  # dlq …, notify …
app.add_typer(silence_app)  # silence add|ls|extend|expire
app.command("ack")(ack)


def main() -> None:
    """The console script: a usage mistake (`--port abc`, an unknown option) is one
    `error:` line and exit 2, not click's usage box."""
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ClickException as exc:
        hint = f" (see {exc.ctx.command_path} --help)" if isinstance(exc, UsageError) and exc.ctx else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
