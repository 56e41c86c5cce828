"""`statehook demo` pointed at a Redis (STATEHOOK_REDIS_URL) that holds statehook data
refuses to start and leaves the data alone: the demo writes watches, events and stats."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis

from store import keys


async def test_the_demo_refuses_a_redis_holding_statehook_data(redis_url: str, redis: aioredis.Redis) -> None:
    await redis.set(keys.EPOCH, "prod")
    await redis.hset(keys.STATS, "polls:rev:unchanged", 7)  # type: ignore[misc]
    env = {**os.environ, "STATEHOOK_REDIS_URL": redis_url}
    command = [str(Path(sys.executable).with_name("statehook")), "demo", "--seconds", "1"]
    proc = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "holds statehook data already" in proc.stderr, proc.stderr
    assert await redis.hget(keys.STATS, "polls:rev:unchanged") == b"7"  # type: ignore[misc]
    assert await redis.get(keys.EPOCH) == b"prod" and not await redis.exists(keys.META)
