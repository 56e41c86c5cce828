"""The rate schedule in Redis (store/rates.py): workers taking slots at the same moment each
get their own, a hold is seen by every worker, and a value written before reads back."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as aioredis

from store.rates import Busy, Granted, RateSchedule


async def test_workers_taking_slots_at_once_never_share_one(redis: aioredis.Redis, redis_url: str) -> None:
    other = aioredis.from_url(redis_url)
    try:
        workers = [RateSchedule(redis), RateSchedule(other)]
        now = 1_000_000.0
        taken = await asyncio.gather(*(workers[i % 2].take("sh:rate:t", 3, 0.1, now=now) for i in range(20)))
    finally:
        await other.aclose()
    assert all(isinstance(t, Granted) for t in taken)
    starts = sorted(t.start for t in taken if isinstance(t, Granted))
    assert starts[0] == pytest.approx(now)
    assert all(b - a == pytest.approx(0.3) for a, b in itertools.pairwise(starts))  # 3 slots each, no overlap
    assert float(await redis.get("sh:rate:t")) == pytest.approx(now + 6.0)


async def test_redis_clock_paces_and_a_hold_is_seen_by_every_worker(redis: aioredis.Redis) -> None:
    a, b = RateSchedule(redis), RateSchedule(redis)
    first = await a.take("sh:slack:rate:x", 1, 1.0, max_wait=5.0)
    second = await b.take("sh:slack:rate:x", 1, 1.0, max_wait=5.0)
    assert isinstance(first, Granted) and isinstance(second, Granted)
    assert first.wait == pytest.approx(0.0, abs=0.05)
    assert second.wait == pytest.approx(1.0, abs=0.05)
    await a.hold("sh:slack:rate:x", 30.0)
    busy = await b.take("sh:slack:rate:x", 1, 1.0, max_wait=5.0)
    assert isinstance(busy, Busy) and busy.wait == pytest.approx(30.0, abs=0.1)
    assert 30_000 < await redis.pttl("sh:slack:rate:x") <= 31_000  # kept until it ends, and a second more
    await a.hold("sh:slack:rate:x", 1.0)  # a shorter hold changes nothing
    again = await b.take("sh:slack:rate:x", 1, 1.0, max_wait=5.0)
    assert isinstance(again, Busy) and again.wait > 29.0


async def test_a_slack_schedule_stored_in_milliseconds_still_paces(redis: aioredis.Redis) -> None:
    seconds, micros = await redis.time()
    await redis.set("sh:slack:rate:y", str((seconds + 2) * 1000 + micros // 1000), px=5000)
    taken = await RateSchedule(redis).take("sh:slack:rate:y", 1, 1.0, max_wait=5.0)
    assert isinstance(taken, Granted) and taken.wait == pytest.approx(2.0, abs=0.1)


async def test_a_worker_takes_its_next_slots_in_one_round_trip_and_sees_what_another_wrote(
    redis: aioredis.Redis, redis_url: str
) -> None:
    other = aioredis.from_url(redis_url)
    try:
        mine, theirs = RateSchedule(redis), RateSchedule(other)
        now = 1_000_000.0
        await mine.take("sh:rate:r", 1, 0.1, now=now)
        await redis.config_resetstat()
        taken = [await mine.take("sh:rate:r", 1, 0.1, now=now) for _ in range(3)]
        gets = (await redis.info("commandstats")).get("cmdstat_get", {}).get("calls", 0)
        assert [t.start for t in taken if isinstance(t, Granted)] == pytest.approx([now + 0.1, now + 0.2, now + 0.3])
        assert gets == 3  # the conditional writes' own; no read before them
        await theirs.take("sh:rate:r", 5, 0.1, now=now)  # another worker, in between
        after = await mine.take("sh:rate:r", 1, 0.1, now=now)
        assert isinstance(after, Granted) and after.start == pytest.approx(now + 0.9)
        await redis.delete("sh:rate:r")  # expired
        again = await mine.take("sh:rate:r", 1, 0.1, now=now)
        assert isinstance(again, Granted) and again.start == pytest.approx(now)
    finally:
        await other.aclose()
