"""Per-provider limits that all workers share through Redis.

Requests per second: a "next free slot" schedule (GCRA). A poll batch of n requests
reserves n consecutive slots in one round trip and spaces its requests over them, so the
provider sees an even rate across every worker. A 429 pauses the provider for its
Retry-After, for every worker. Concurrency is divided among the live workers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from store import keys

__all__ = ["ProviderLimits", "Reservation"]

# KEYS: slot key. ARGV: now, n, interval, burst. Returns the start of the reserved slots.
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tat, now - tonumber(ARGV[4]) * interval)
local finish = start + tonumber(ARGV[2]) * interval
redis.call('SET', KEYS[1], tostring(finish), 'PX', math.ceil((finish - now) * 1000) + 1000)
return tostring(start)
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    start: float
    interval: float

    def slot(self, i: int) -> float:
        return self.start + i * self.interval


class ProviderLimits:
    def __init__(self, redis: aioredis.Redis, *, burst: int = 10) -> None:
        self.redis = redis
        self.burst = burst
        self._reserve = redis.register_script(_RESERVE)

    async def reserve(
        self, provider: str, n: int, requests_per_second: float, *, now: float | None = None
    ) -> Reservation:
        now = time.time() if now is None else now
        interval = 1.0 / requests_per_second
        start = await self._reserve(keys=[keys.provider_rate(provider)], args=[now, n, interval, self.burst])
        return Reservation(float(start), interval)

    @staticmethod
    async def wait_for_slot(reservation: Reservation, i: int) -> None:
        delay = reservation.slot(i) - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def pause(self, provider: str, seconds: float) -> None:
        """Every worker holds off this provider for `seconds` (a 429's Retry-After)."""
        await self.redis.set(keys.pause(provider), "1", px=max(1, int(seconds * 1000)))

    async def paused_for(self, provider: str) -> float:
        ttl = await self.redis.pttl(keys.pause(provider))
        return ttl / 1000 if ttl and ttl > 0 else 0.0

    async def beat(self, worker_id: str, ttl: float, *, now: float | None = None) -> int:
        """Counts `worker_id` as live for `ttl` seconds and returns how many workers are
        live (at least 1). One sorted set, so a heartbeat costs the same round trip whatever
        the keyspace holds: counting the `sh:health:*` keys walked every key with SCAN,
        ~100 calls a beat per 100,000 watched resources."""
        now = time.time() if now is None else now
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.WORKERS, {worker_id: now + ttl})
            pipe.zremrangebyscore(keys.WORKERS, "-inf", now)
            pipe.zcard(keys.WORKERS)
            *_, live = await pipe.execute()
        return max(1, int(live))

    async def leave(self, worker_id: str) -> None:
        """A worker that stops stops counting at once."""
        await self.redis.zrem(keys.WORKERS, worker_id)
