"""One statehook worker process for the benchmark: exactly what `statehook run -c FILE` does.

With STATEHOOK_BENCH_PROFILE=path, the process runs under cProfile and writes its stats
there when it stops (to find where a scenario's time goes)."""

from __future__ import annotations

import cProfile
import os
import sys
from pathlib import Path

from config import load_config
from worker.logs import setup_logging
from worker.settings import run_worker

__all__ = ["main"]


def main(path: str) -> None:
    config = load_config(Path(path))
    setup_logging(config.settings.log_level, config.settings.log_format)
    run_worker(config)


if __name__ == "__main__":
    profile_to = os.environ.get("STATEHOOK_BENCH_PROFILE")
    if profile_to:
        profiler = cProfile.Profile()
        profiler.runcall(main, sys.argv[1])
        profiler.dump_stats(f"{profile_to}.{os.getpid()}")
    else:
        main(sys.argv[1])
