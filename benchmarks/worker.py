"""One statehook worker process for the benchmark: exactly what `statehook run -c FILE` does."""

from __future__ import annotations

import sys
from pathlib import Path

from config import load_config
from worker.logs import setup_logging
from worker.settings import make_worker

__all__ = ["main"]


def main(path: str) -> None:
    config = load_config(Path(path))
    setup_logging(config.settings.log_level, config.settings.log_format)
    make_worker(config).run()


if __name__ == "__main__":
    main(sys.argv[1])
