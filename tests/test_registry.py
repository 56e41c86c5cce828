"""The worker registry (store/registry.py) on a real Redis: the live count the workers share
their concurrency by, the beats /healthz, the metrics and `statehook healthcheck` read."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis

from store import keys
from store.registry import WorkerBeat, WorkerRegistry


async def test_live_workers_are_counted_by_their_heartbeats(redis: aioredis.Redis) -> None:
    registry = WorkerRegistry(redis)
    # an interval of 4.5 s: a beat counts for 10 s (two more missed, and a second)
    assert await registry.beat("a", 4.5, now=1000.0) == 1
    assert await registry.beat("b", 4.5, now=1001.0) == 2
    assert await registry.beat("a", 4.5, now=1005.0) == 2  # a beat again: still two
    assert await registry.beat("a", 4.5, now=1012.0) == 1  # b's beat ran out at 1011
    assert await registry.beats(now=1012.0) == [WorkerBeat("a", 1012.0, 4.5)]
    assert await redis.hkeys(keys.WORKER_BEATS) == [b"a"], "b's beat went with it"
    await registry.leave("a")
    assert await registry.beats(now=1012.0) == []
    assert await registry.beat("c", 4.5, now=1013.0) == 1


async def test_a_beat_is_read_back_with_its_age_until_it_runs_out(redis: aioredis.Redis) -> None:
    registry = WorkerRegistry(redis)
    await registry.beat("host-1-a", 30, pid=41, now=1000.0)
    await registry.beat("host-2-b", 0.5, now=1000.0)
    (slow, quick) = await registry.beats(now=1001.6)
    assert slow == WorkerBeat("host-1-a", 1000.0, 30.0, 41) and slow.fresh(1001.6)
    assert quick.age(1001.6) == pytest.approx(1.6) and not quick.fresh(1001.6)  # 0.5 s, plus one second for the write
    assert [b.worker for b in await registry.beats(now=1002.5)] == ["host-1-a"], "quick's beat ran out at 1002"


async def test_the_registry_is_gone_when_every_beat_ran_out(redis: aioredis.Redis) -> None:
    """Workers killed without a word leave nothing behind for good: both keys last as long
    as the last beat does."""
    registry = WorkerRegistry(redis)
    await registry.beat("a", 0.1)
    assert 0 < await redis.pttl(keys.WORKERS) <= 1201
    assert 0 < await redis.pttl(keys.WORKER_BEATS) <= 1201


async def test_an_unreadable_beat_is_logged_with_its_key_and_left_out(
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    registry = WorkerRegistry(redis)
    await registry.beat("good", 30, now=1000.0)
    await redis.zadd(keys.WORKERS, {"broken": 2000.0})
    await redis.hset(keys.WORKER_BEATS, "broken", b'{"at": "yesterday"}')
    caplog.set_level(logging.WARNING)
    assert [b.worker for b in await registry.beats(now=1001.0)] == ["good"]
    assert f"{keys.WORKER_BEATS}[broken]" in caplog.text
