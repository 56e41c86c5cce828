"""A scheduler claim sent to a hung Redis: the client times out, Redis runs the claim when it
resumes, and what it leased would wait out the whole lease unpolled. The claim stays in
doubt in the process that sent it, which makes what it leased due again
(worker/claims_in_doubt.py), against a redis-server of the test's own that is SIGSTOPped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from simulator.redisctl import RedisProcess
from store import keys
from store.snapshots import Store, lease_until
from worker.claims_in_doubt import ClaimsInDoubt

LEASE = 60.0


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    with RedisProcess() as proc:
        yield proc


async def _scores(url: str) -> dict[str, float]:
    client = aioredis.from_url(url)
    try:
        return {k.decode(): s for k, s in await client.zrange(keys.DUE, 0, -1, withscores=True)}
    finally:
        await client.aclose()


async def test_a_claim_run_after_its_client_gave_up_is_released_by_the_claims_in_doubt(
    own_redis: RedisProcess,
) -> None:
    client = aioredis.from_url(own_redis.url, socket_timeout=0.5)
    try:
        now = time.time()
        due = {f"rev:order:TC{i}": now - 1 for i in range(3)}
        await client.zadd(keys.DUE, {**due, "rev:order:later": now + 600})
        store = Store(client)
        await store.claim_due_times(0.0, LEASE, 1)  # Redis knows the script, as after a worker's first tick
        claims = ClaimsInDoubt(store)
        until = now + 1.0
        own_redis.pause()  # hung: the claim is sent, nothing answers
        try:
            with pytest.raises(RedisTimeoutError), claims.claiming(lease_until(until, LEASE)):
                await store.claim_due_times(until, LEASE, 100)
        finally:
            own_redis.resume()
        assert claims.leases == {lease_until(until, LEASE)}

        leased = await _scores(own_redis.url)
        assert {k: leased[k] for k in due} == dict.fromkeys(due, lease_until(until, LEASE))  # run after all

        again = time.time()
        assert await claims.release(again) == 3
        after = await _scores(own_redis.url)
        assert {k: after[k] for k in due} == pytest.approx(dict.fromkeys(due, again))
        assert after["rev:order:later"] == now + 600  # nothing else moves
        assert claims.leases == frozenset()
    finally:
        await client.aclose()


async def test_a_claim_that_got_its_answer_is_not_in_doubt(redis: aioredis.Redis) -> None:
    now = time.time()
    await redis.zadd(keys.DUE, {"rev:order:TC1": now - 1})
    claims = ClaimsInDoubt(Store(redis))
    with claims.claiming(lease_until(now, LEASE)):
        claimed = await Store(redis).claim_due_times(now, LEASE, 100)
    assert [k for k, _ in claimed] == ["rev:order:TC1"] and claims.leases == frozenset()
    assert await claims.release(time.time()) == 0
    assert await redis.zscore(keys.DUE, "rev:order:TC1") == lease_until(now, LEASE)  # its lease stands


async def test_a_release_moves_only_what_still_holds_the_lease(redis: aioredis.Redis) -> None:
    leased = lease_until(1_000.0, LEASE)
    await redis.zadd(keys.DUE, {"a": leased, "b": leased, "polled since": 2_000.0, "other claim": leased + 0.001})
    assert await Store(redis).release_lease(leased, 500.0) == 2
    scores = {k.decode(): s for k, s in await redis.zrange(keys.DUE, 0, -1, withscores=True)}
    assert scores == {"a": 500.0, "b": 500.0, "polled since": 2_000.0, "other claim": leased + 0.001}


async def test_a_tick_that_failed_for_another_reason_leaves_nothing_in_doubt(redis: aioredis.Redis) -> None:
    claims = ClaimsInDoubt(Store(redis))
    with pytest.raises(ValueError), claims.claiming(lease_until(1_000.0, LEASE)):
        raise ValueError("a job that cannot be enqueued")  # would fail again at every tick
    assert claims.leases == frozenset()
