"""The scheduler's claim: what is due moves to its lease, in due order, and nothing else."""

from __future__ import annotations

import redis.asyncio as aioredis

from store import keys
from store.snapshots import Store


async def test_a_claim_leases_every_due_entry_across_its_batched_writes(redis: aioredis.Redis) -> None:
    n = 1_201  # more than two of the script's 500-member ZADDs, and a partial one
    due = {f"artistree:order:{i:05d}": 1_000.0 + i for i in range(n)}
    later = {"artistree:order:later": 5_000.0}
    await redis.zadd(keys.DUE, {**due, **later})

    claimed = await Store(redis).claim_due_times(until=4_000.0, lease=60.0, limit=10_000)

    assert claimed == sorted(due.items(), key=lambda kv: kv[1])
    scores = dict(await redis.zrange(keys.DUE, 0, -1, withscores=True))
    assert {k.decode() for k, v in scores.items() if v == 4_060.0} == set(due)
    assert scores[b"artistree:order:later"] == 5_000.0


async def test_a_claim_takes_at_most_its_limit_and_leaves_the_rest_due(redis: aioredis.Redis) -> None:
    await redis.zadd(keys.DUE, {f"r{i}": float(i) for i in range(10)})

    claimed = await Store(redis).claim_due_times(until=100.0, lease=5.0, limit=4)

    assert [k for k, _ in claimed] == ["r0", "r1", "r2", "r3"]
    assert await redis.zcount(keys.DUE, "-inf", 100.0) == 6
