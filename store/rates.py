"""One rate schedule, shared by every worker through Redis: provider request limits and
Slack's pacing both take their slots from it.

A schedule is one number per key, the time its last reserved slot ends (GCRA's
"theoretical arrival time"). Taking n slots starts at that time, or at `now` less `burst`
slots if the schedule has fallen behind, and moves it n intervals on; a start further off
than `max_wait` is refused and reserves nothing. Holding a schedule (a 429's Retry-After)
moves it to `now + seconds` if it ends sooner. The arithmetic is `take` and `hold`, pure;
`RateSchedule` reads the stored time, computes, and writes it back only if no other worker
wrote in between (lua/rate_swap.lua; else it reads again), so the rule is written once,
here, not in Lua too.

`ProviderLimits` is the provider's side: a poll batch of n requests reserves n slots in
one call and spaces its requests over them, so the provider sees an even rate across every
worker. A 429 pauses the provider for its Retry-After, for every worker.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from store import keys

__all__ = [
    "Busy",
    "Granted",
    "ProviderLimits",
    "RateSchedule",
    "Reservation",
    "expiry_ms",
    "hold",
    "parse_scheduled",
    "take",
]

MS_BEFORE = 1e11
"""A stored time above this is in milliseconds (Slack's pacing wrote those before it shared
this schedule); in seconds it would be the year 5138."""

SWAPS = 100
"""Attempts at writing a schedule back before giving up: each failure means another worker
took slots in between, so this many is a contention no fleet reaches."""

_SWAP = (Path(__file__).parent / "lua" / "rate_swap.lua").read_text()


@dataclass(frozen=True, slots=True)
class Granted:
    """Slots taken: the first at `start` (`wait` seconds after now; negative when the
    schedule had fallen behind and the burst allowance starts it in the past); the schedule
    now ends at `until`."""

    start: float
    wait: float
    until: float


@dataclass(frozen=True, slots=True)
class Busy:
    """Nothing taken: the first free slot is `wait` seconds away, more than the caller waits."""

    wait: float


def take(
    scheduled: float, now: float, n: int, interval: float, *, burst: int = 0, max_wait: float = math.inf
) -> Granted | Busy:
    """n slots `interval` apart from a schedule that ends at `scheduled`. Pure."""
    start = max(scheduled, now - burst * interval)
    wait = start - now
    if wait > max_wait:
        return Busy(wait)
    return Granted(start, wait, start + n * interval)


def hold(scheduled: float, now: float, seconds: float) -> float | None:
    """Where a schedule held for `seconds` ends, or None if it already ends later. Pure."""
    until = now + seconds
    return until if until > scheduled else None


def expiry_ms(until: float, now: float) -> int:
    """How long the stored schedule is worth keeping: until it ends, and a second more."""
    return max(0, math.ceil((until - now) * 1000)) + 1000


def parse_scheduled(raw: bytes | str | None) -> float:
    """The stored time in seconds (0 when there is none)."""
    if raw is None or raw in (b"", ""):
        return 0.0
    value = float(raw)
    return value / 1000 if value > MS_BEFORE else value


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else raw


class RateSchedule:
    """Schedules kept in Redis, one per key, that every worker takes its slots from.

    `now=None` reads Redis's clock, so that workers whose clocks disagree still space their
    sends; a caller that compares slots with its own clock passes `now` itself."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._swap = redis.register_script(_SWAP)
        self._wrote: dict[str, str] = {}
        """what this process last wrote to each schedule: a caller that passes `now` takes its
        next slots from it in one round trip (the conditional write) when no other worker
        wrote in between, and reads the stored time only when one did"""

    async def _read(self, key: str, now: float | None) -> tuple[bytes | str | None, float]:
        if now is not None:
            return await self.redis.get(key), now
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.time()
            raw, (seconds, micros) = await pipe.execute()
        return raw, seconds + micros / 1e6

    async def _write(self, key: str, read: bytes | str | None, until: float, now: float) -> bool:
        value = f"{until:.6f}"
        if await self._swap(keys=[key], args=[_text(read), value, expiry_ms(until, now)]):
            self._wrote[key] = value
            return True
        self._wrote.pop(key, None)
        return False

    async def take(
        self, key: str, n: int, interval: float, *, burst: int = 0, max_wait: float = math.inf,
        now: float | None = None,
    ) -> Granted | Busy:
        guess = self._wrote.get(key) if now is not None else None
        for _ in range(SWAPS):
            raw: bytes | str | None
            if guess is not None and now is not None:
                raw, at = guess, now
            else:
                raw, at = await self._read(key, now)
            taken = take(parse_scheduled(raw), at, n, interval, burst=burst, max_wait=max_wait)
            if isinstance(taken, Busy) and guess is None:
                return taken
            if not isinstance(taken, Busy) and await self._write(key, raw, taken.until, at):
                return taken
            guess = None  # another worker wrote (or the schedule expired): read what is stored
        raise RuntimeError(f"the rate schedule {key} changed under {SWAPS} attempts in a row")

    async def hold(self, key: str, seconds: float, *, now: float | None = None) -> None:
        """Nobody takes a slot of `key` before `seconds` from now."""
        for _ in range(SWAPS):
            raw, at = await self._read(key, now)
            until = hold(parse_scheduled(raw), at, seconds)
            if until is None or await self._write(key, raw, until, at):
                return
        raise RuntimeError(f"the rate schedule {key} changed under {SWAPS} attempts in a row")


@dataclass(frozen=True, slots=True)
class Reservation:
    start: float
    interval: float

    def slot(self, i: int) -> float:
        return self.start + i * self.interval

    def times(self, n: int) -> list[float]:
        """The start of each of the first `n` slots."""
        return [self.slot(i) for i in range(n)]


class ProviderLimits:
    def __init__(self, redis: aioredis.Redis, *, burst: int = 10) -> None:
        self.redis = redis
        self.burst = burst
        self.schedule = RateSchedule(redis)

    async def reserve(
        self, provider: str, n: int, requests_per_second: float, *, now: float | None = None
    ) -> Reservation:
        """n request slots; their times are on this host's clock (`wait_for_slot` sleeps
        until them)."""
        now = time.time() if now is None else now
        interval = 1.0 / requests_per_second
        taken = await self.schedule.take(keys.provider_rate(provider), n, interval, burst=self.burst, now=now)
        assert isinstance(taken, Granted)  # no max_wait: a provider's batch always gets its slots
        return Reservation(taken.start, interval)

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
