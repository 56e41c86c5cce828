"""statehook as it runs in production, for the benchmark: a config file, real worker
processes (`python -m benchmarks.worker`, the same calls as `statehook run`), and what the
benchmark reads from Redis to follow their progress."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from config.toml_out import toml_value
from store import keys
from store.registry import WorkerRegistry

__all__ = [
    "HEALTH_INTERVAL",
    "WHSEC",
    "Workers",
    "rss_mb",
    "stat",
    "wait_until",
    "write_config",
]

WHSEC = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
"""A signing secret made for each benchmark run."""
ROOT = Path(__file__).resolve().parent.parent
HEALTH_INTERVAL = 0.25
"""The workers' heartbeat here (30 s by default): a worker takes its share of the provider's
concurrency at each beat, and the polling scenario starts and stops a second worker
between passes, after which the first must hold its new share before the next pass."""




def write_config(
    path: Path,
    *,
    redis_url: str,
    base_url: str,
    token_url: str,
    receiver_url: str | None = None,
    concurrency: int = 64,
    worker: dict[str, Any] | None = None,
    api: dict[str, Any] | None = None,
    providers: dict[str, dict[str, Any]] | None = None,
    watches: list[dict[str, Any]] | None = None,
    artistree: dict[str, Any] | None = None,
) -> Path:
    """A statehook.toml for one Artistree account and, optionally, one signed webhook, an
    `[api]` table, more providers (name -> settings), watches of the file, and settings of
    the Artistree account other than the benchmark's (`artistree`)."""
    blocks: list[tuple[str, dict[str, Any]]] = [
        ("worker", {"health_interval": HEALTH_INTERVAL, **(worker or {})}),
        ("providers.artistree", {
            "base_url": base_url,
            "token_url": token_url,
            "client_id": "sim-client",
            "client_secret": "sim-secret",
            "max_concurrency": concurrency,
            "requests_per_second": 1_000_000.0,
            "timeout": 30.0,
            **(artistree or {}),
        }),
    ]
    if api:
        blocks.append(("api", api))
    for name, settings in (providers or {}).items():
        blocks.append((f"providers.{name}", settings))
    if receiver_url:
        blocks.append(("destinations.hook", {"kind": "webhook", "url": receiver_url, "secret": WHSEC}))
    lines = [f"redis_url = {toml_value(redis_url)}", 'log_level = "info"', ""]
    for name, block in blocks:
        block = {k: v for k, v in block.items() if v is not None}
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in block.items()]
        lines.append("")
    for watch in watches or ():
        lines += ["[[watches]]", *[f"{k} = {toml_value(v)}" for k, v in watch.items()], ""]
    if receiver_url:
        lines += ["[[routes]]", 'to = ["hook"]', ""]
    path.write_text("\n".join(lines))
    return path


class Workers:
    """`n` worker processes on one config, their output in `log`."""

    def __init__(self, config: Path, n: int, log: Path, on_start: Callable[[int], object] | None = None) -> None:
        self.config, self.n, self.log = config, n, log
        self.on_start = on_start
        """called with each process's pid as soon as it exists (to put it in a CPU quota group)"""
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        out = self.log.open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for _ in range(self.n):
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.worker", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
            )
            self.procs.append(proc)
            if self.on_start is not None:
                self.on_start(proc.pid)
        out.close()

    async def ready(self, redis: aioredis.Redis, timeout: float = 30.0) -> None:
        """Every process of these has started its runtime (a heartbeat with its pid exists;
        other workers may be running beside them)."""
        pids = {p.pid for p in self.procs}

        async def all_up() -> bool:
            self.check()
            return pids <= {b.pid for b in await WorkerRegistry(redis).beats()}
        await wait_until(all_up, timeout, "workers to start")

    def check(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"worker {p.pid} exited with {p.returncode}; see {self.log}")

    def rss_mb(self) -> list[tuple[float, float]]:
        return [rss_mb(p.pid) for p in self.procs]

    async def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then waits for the processes to exit without blocking the event loop:
        the simulator and the webhook receiver run on this loop, and a worker finishing its
        jobs in flight needs their answers (a blocking wait let its last poll batch hang
        for the whole shutdown_grace, 20 s)."""
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                await asyncio.to_thread(p.wait, max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()


@contextlib.asynccontextmanager
async def workers(config: Path, n: int, log: Path, redis: aioredis.Redis,
                  on_start: Callable[[int], object] | None = None) -> AsyncIterator[Workers]:
    w = Workers(config, n, log, on_start)
    w.start()
    try:
        await w.ready(redis)
        yield w
    finally:
        await w.stop()


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def stat(redis: aioredis.Redis, *names: str) -> int:
    values = await redis.hmget(keys.STATS, list(names))  # type: ignore[misc]
    return sum(int(v) for v in values if v)


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, *, every: float = 0.02
) -> float:
    """Polls `condition` until true; returns the time (perf_counter) it was first seen true."""
    deadline = time.perf_counter() + timeout
    while True:
        if await condition():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s")
        await asyncio.sleep(every)
