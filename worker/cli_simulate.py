"""`statehook simulate`: the providers' stand-ins on their own, for trying statehook out."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

__all__ = ["simulate"]


def simulate(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="0 picks a free port")] = 8700,
    providers: Annotated[str | None, typer.Option("--providers", help="comma-separated; default: all")] = None,
    orders: Annotated[int, typer.Option("--orders", help="orders seeded per provider")] = 8,
    step_every: Annotated[float | None, typer.Option("--step-every", help="advance progressions every N s")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 7,
) -> None:
    """Run the providers' simulator on its own (the stand-ins the demo and tests use)."""
    from simulator.__main__ import serve

    names = [n.strip() for n in providers.split(",") if n.strip()] if providers else None
    try:
        asyncio.run(serve(host=host, port=port, names=names, orders=orders, step_every=step_every, seed=seed,
                          out=lambda line: typer.echo(line)))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
