"""`statehook simulate`: the providers' stand-ins, a Slack and an SMTP stand-in, and the
config that points statehook at them, for trying statehook out (docs/try-it.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["simulate"]


def simulate(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="HTTP: the providers and Slack; 0 picks a "
                                      "free port")] = 8700,
    smtp_port: Annotated[int | None, typer.Option("--smtp-port", min=0, max=65535,
                                                  help="default: --port + 1 (free with --port 0)")] = None,
    providers: Annotated[str | None, typer.Option("--providers", help="comma-separated; default: all")] = None,
    orders: Annotated[int, typer.Option("--orders", min=1, max=1000, help="orders seeded per provider")] = 4,
    step_every: Annotated[float, typer.Option("--step-every", min=0, help="advance the progressions every N s "
                                              "(0: never)")] = 3.0,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    write_config: Annotated[Path | None, typer.Option("--write-config", metavar="PATH",
                                                      help="also write the config there, and .env beside it")] = None,
) -> None:
    """Run the providers' simulator with Slack and SMTP stand-ins; print the config to use them."""
    from simulator.registry import check_names
    from simulator.standalone import ServeError, serve

    names = [n.strip() for n in providers.split(",") if n.strip()] if providers is not None else None
    try:
        if names is not None:
            check_names(names)
    except ValueError as exc:
        typer.echo(f"error: --providers: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(serve(host=host, port=port, smtp_port=smtp_port, names=names, orders=orders,
                          step_every=step_every, seed=seed, write_to=write_config, out=typer.echo))
    except ServeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.code) from None
    except KeyboardInterrupt:
        pass
