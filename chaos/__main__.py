"""`python -m chaos [--strict] [--quick] [--report PATH]`: the chaos run of issue 14.

Exit status: 0 when the run completed (whatever the score), unless `--strict`: then 1
when a target is missed. 2 when the run itself could not complete.
`--rescore WORKDIR` scores a saved run again (its run-data.json) without running anything.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from chaos.report import rescore
from chaos.run import Timings, run_chaos

DEFAULT_REPORT = Path(tempfile.gettempdir()) / "statehook-chaos-report.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--quick", action="store_true",
                        help="shorter outages and fewer resources, to develop the harness (not the issue's run)")
    parser.add_argument("--report", type=Path, default=None,
                        help=f"where the JSON report goes (default: {DEFAULT_REPORT}; with --rescore: nowhere)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--rescore", type=Path, metavar="WORKDIR", help="score a saved run again")
    args = parser.parse_args(argv)
    if args.rescore is not None:
        result = rescore(args.rescore, args.report)
        return 1 if args.strict and result.failed_targets() else 0
    timings = Timings.quick() if args.quick else Timings()
    return asyncio.run(run_chaos(timings, report_path=args.report or DEFAULT_REPORT, strict=args.strict,
                                 seed=args.seed))


if __name__ == "__main__":
    raise SystemExit(main())
