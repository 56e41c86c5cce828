"""`python -m simulator --port 8700 [--step-every 2.0]`: the simulator on its own.

It prints its base URL (each provider lives under `{base}/{name}`), seeds a few orders
per provider and, if asked, advances the scripted progressions periodically, printing
what changed. `serve` is what the `statehook` CLI calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable

from simulator.registry import SIM_PROVIDERS, build_simulator

__all__ = ["main", "serve"]


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    names: list[str] | None = None,
    orders: int = 8,
    step_every: float | None = None,
    seed: int = 7,
    out: Callable[[str], None] = print,
) -> None:
    """Run until SIGINT/SIGTERM (or cancellation)."""
    sim = build_simulator(names, orders_per_provider=orders, seed=seed)
    base = await sim.start(host, port)
    out(f"simulator listening on {base}")
    for name in sim.providers:
        out(f"  {name}: {sim.url(name)}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            if step_every is None:
                await stop.wait()
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=step_every)
            if not stop.is_set():
                for line in sim.step():
                    out(line)
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700, help="0 picks a free port")
    parser.add_argument(
        "--providers", default=",".join(SIM_PROVIDERS), help="comma-separated, of: " + ", ".join(SIM_PROVIDERS)
    )
    parser.add_argument("--orders", type=int, default=8, help="orders seeded per provider")
    parser.add_argument(
        "--step-every", type=float, default=None, metavar="SECONDS", help="advance the scripted progressions this often"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.providers.split(",") if n.strip()]
    try:
        asyncio.run(
            serve(
                host=args.host,
                port=args.port,
                names=names,
                orders=args.orders,
                step_every=args.step_every,
                seed=args.seed,
                out=lambda line: print(line, flush=True),
            )
        )
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
