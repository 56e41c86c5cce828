"""`python -m simulator --port 8700 [--step-every 2.0]`: the simulator on its own.

The same as `statehook simulate` (`simulator.standalone.serve`): the providers' stand-ins,
seeded, a Slack and an SMTP stand-in, and the config that points statehook at them.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from simulator.registry import SIM_PROVIDERS
from simulator.standalone import ServeError, serve

__all__ = ["main", "serve"]


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8700, help="0 picks a free port")
    parser.add_argument("--smtp-port", type=_port, default=None, help="default: --port + 1")
    parser.add_argument(
        "--providers", default=",".join(SIM_PROVIDERS), help="comma-separated, of: " + ", ".join(SIM_PROVIDERS)
    )
    parser.add_argument("--orders", type=int, default=4, help="orders seeded per provider")
    parser.add_argument(
        "--step-every", type=float, default=None, metavar="SECONDS", help="advance the scripted progressions this often"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write-config", type=Path, default=None, metavar="PATH",
                        help="also write the config there and the environment to .env beside it")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.providers.split(",") if n.strip()]
    try:
        asyncio.run(
            serve(
                host=args.host,
                port=args.port,
                smtp_port=args.smtp_port,
                names=names,
                orders=args.orders,
                step_every=args.step_every,
                seed=args.seed,
                write_to=args.write_config,
                out=lambda line: print(line, flush=True),
            )
        )
    except ValueError as exc:
        parser.error(str(exc))
    except ServeError as exc:
        parser.exit(exc.code, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
