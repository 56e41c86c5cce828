"""Test building blocks: a config written as a real TOML file, and a worker run in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from config import Config, load_config
from config.toml_out import toml_array, toml_table, toml_value
from store import keys
from store.deliveries import Deliveries
from store.operational import OperationalEvents
from store.timeline import read_timelines
from worker.settings import make_worker

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def timeline(redis: aioredis.Redis, rkey: str) -> list[bytes]:
    """`rkey`'s whole timeline as stored, newest first (store/timeline.py)."""
    (entries,) = await read_timelines(redis, [rkey], 10_000)
    assert isinstance(entries, list), entries
    return entries




def write_config(
    path: Path,
    *,
    redis_url: str,
    providers: dict[str, dict[str, Any]],
    watches: list[dict[str, Any]] = (),  # type: ignore[assignment]
    destinations: dict[str, dict[str, Any]],
    routes: list[dict[str, Any]],
    worker: dict[str, Any] | None = None,
) -> Config:
    lines = [f"redis_url = {toml_value(redis_url)}", ""]
    if worker:
        lines += toml_table("worker", worker)
    for name, block in providers.items():
        lines += toml_table(f"providers.{name}", block)
    lines += toml_array("watches", list(watches))
    for name, block in destinations.items():
        lines += toml_table(f"destinations.{name}", block)
    lines += toml_array("routes", routes)
    path.write_text("\n".join(lines))
    return load_config(path)


@contextlib.asynccontextmanager
async def running_worker(config: Config, **kwargs: Any) -> AsyncIterator[Any]:
    """A real ARQ worker in this event loop, stopped (as by a signal) on exit."""
    worker = make_worker(config, handle_signals=False, **kwargs)
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        # let jobs in flight finish (bounded), as a SIGTERM'd worker would, then stop it
        in_flight = [t for t in worker.tasks.values() if not t.done()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=5)
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def outbox_len(redis: aioredis.Redis) -> int:
    return int(await redis.xlen(keys.OUTBOX))


def telling_deliveries(redis: aioredis.Redis, history_length: int = 50) -> Deliveries:
    """Deliveries that tell dead letters, disables and enables, as a worker's do."""
    return Deliveries(redis, OperationalEvents(redis, history_length=history_length))
