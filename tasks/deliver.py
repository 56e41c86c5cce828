"""Delivering one event to one destination: send once, retry transient failures on the
destination's schedule, dead-letter permanent failures and exhausted retries."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from core.backoff import delivery_delay
from core.events import utc_iso
from model.events import Event
from model.outcomes import PermanentFailure, TransientFailure
from notifiers.base import Notifier
from store import keys, stats

__all__ = ["Attempt", "DeadLetters", "DeliveryRecords", "DeliveryResult", "attempt_delivery", "deliver_once",
           "disabled_reason"]

log = logging.getLogger("statehook.deliver")

ATTEMPTS_KEPT = 20
ATTEMPTS_TTL = 7 * 86400


@dataclass(frozen=True, slots=True)
class Attempt:
    destination: str
    attempt: int
    at: str
    ok: bool
    status: int | None
    duration_ms: float
    error: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"destination": self.destination, "attempt": self.attempt, "at": self.at, "ok": self.ok,
             "status": self.status, "duration_ms": round(self.duration_ms, 1), "error": self.error}
        )


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the job does next: done, retry after `retry_in` seconds, or dead-lettered."""

    delivered: bool
    retry_in: float | None = None
    dead_lettered: bool = False


class DeadLetters:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def add(self, event_json: bytes, destination: str, reason: str, status: int | None, attempts: int) -> str:
        entry_id = await self.redis.xadd(
            keys.DLQ,
            {"event": event_json, "destination": destination, "reason": reason,
             "status": "" if status is None else str(status), "attempts": str(attempts), "at": utc_iso(time.time())},
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def list(self, count: int = 100) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in await self.redis.xrange(keys.DLQ, count=count):
            d = {k.decode(): v for k, v in fields.items()}
            event = orjson.loads(d["event"])
            out.append({
                "id": entry_id.decode(), "event_id": event["id"], "type": event["type"],
                "resource": event["resource"]["key"], "destination": d["destination"].decode(),
                "reason": d["reason"].decode(), "status": int(d["status"]) if d["status"] else None,
                "attempts": int(d["attempts"]), "at": d["at"].decode(),
            })
        return out

    async def purge(self) -> int:
        n = int(await self.redis.xlen(keys.DLQ))
        await self.redis.delete(keys.DLQ)
        return n


@dataclass(slots=True)
class DeliveryRecords:
    """Attempt records and stats of one or many attempts, written in one round trip: a
    delivery batch records its hundreds of attempts at once, not three commands each."""

    attempts: list[tuple[str, bytes]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    trim: bool = True
    """False for first attempts only: their lists cannot be longer than ATTEMPTS_KEPT"""

    def add(self, event_id: str, attempt: Attempt, counts: dict[str, int]) -> None:
        self.attempts.append((event_id, attempt.to_json()))
        self.counts.update(counts)

    async def flush(self, redis: aioredis.Redis) -> None:
        if not self.attempts and not self.counts:
            return
        async with redis.pipeline(transaction=False) as pipe:
            for event_id, record in self.attempts:
                pipe.lpush(keys.attempts(event_id), record)
            for event_id in {eid for eid, _ in self.attempts}:
                if self.trim:
                    pipe.ltrim(keys.attempts(event_id), 0, ATTEMPTS_KEPT - 1)
                pipe.expire(keys.attempts(event_id), ATTEMPTS_TTL)
            for name, n in self.counts.items():
                pipe.hincrby(keys.STATS, name, n)
            await pipe.execute()
        self.attempts.clear()
        self.counts.clear()


async def disabled_reason(redis: aioredis.Redis, destination: str) -> str | None:
    raw = await redis.hget(keys.DISABLED, destination)  # type: ignore[misc]
    return raw.decode() if raw else None


async def deliver_once(
    redis: aioredis.Redis,
    notifier: Notifier | None,
    destination: str,
    event_json: bytes,
    attempt: int,
) -> DeliveryResult:
    """One attempt. Records it, and decides: delivered, retry (in how long), or dead letter."""
    records = DeliveryRecords()
    try:
        return await attempt_delivery(redis, notifier, destination, Event.from_json(event_json), attempt, records,
                                      await disabled_reason(redis, destination))
    finally:
        await records.flush(redis)


async def attempt_delivery(
    redis: aioredis.Redis,
    notifier: Notifier | None,
    destination: str,
    event: Event,
    attempt: int,
    records: DeliveryRecords,
    disabled: str | None,
) -> DeliveryResult:
    """One attempt, its record and stats added to `records` (the caller flushes them).
    Dead letters and the disabling of a destination are written at once."""
    dead = DeadLetters(redis)
    if notifier is None:
        await dead.add(event.to_json(), destination, "destination is not configured", None, attempt)
        records.counts.update(stats.delivery_counts(destination, "dead"))
        return DeliveryResult(False, dead_lettered=True)
    if disabled:
        await dead.add(event.to_json(), destination, f"destination disabled: {disabled}", None, attempt)
        records.counts.update(stats.delivery_counts(destination, "dead"))
        return DeliveryResult(False, dead_lettered=True)
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    permanent: PermanentFailure | None = None
    try:
        done = await notifier.send(event)
        status = done.status
    except TransientFailure as exc:
        status, error, retry_after = exc.status, exc.reason, exc.retry_after
    except PermanentFailure as exc:
        status, error, permanent = exc.status, exc.reason, exc
    except Exception as exc:  # a bug or an unexpected library error: retried, never lost
        log.exception("delivery %s to %s: unexpected error", event.id, destination)
        error = f"unexpected {type(exc).__name__}"
    seconds = time.perf_counter() - started
    record = Attempt(destination, attempt, utc_iso(time.time()), error is None, status, seconds * 1000, error)
    extra = {"rkey": event.rkey, "event_id": event.id, "destination": destination}
    if error is None:
        log.debug("delivered %s to %s in %.0f ms", event.id, destination, seconds * 1000, extra=extra)
        records.add(event.id, record, stats.delivery_counts(destination, "ok", seconds))
        return DeliveryResult(True)
    if permanent is not None:
        if permanent.disable:
            await redis.hset(keys.DISABLED, destination, f"{error} at {utc_iso(time.time())}")  # type: ignore[misc]
            log.error("destination %s disabled: %s", destination, error, extra=extra)
        log.warning("delivery %s to %s failed permanently: %s", event.id, destination, error, extra=extra)
        await dead.add(event.to_json(), destination, error, status, attempt)
        records.add(event.id, record, stats.delivery_counts(destination, "dead", seconds))
        return DeliveryResult(False, dead_lettered=True)
    delay = delivery_delay(attempt, notifier.settings.retry_schedule, jitter=notifier.settings.jitter,
                           retry_after=retry_after)
    if delay is None:
        reason = f"gave up after {attempt} attempts: {error}"
        log.warning("delivery %s to %s: %s", event.id, destination, reason, extra=extra)
        await dead.add(event.to_json(), destination, reason, status, attempt)
        records.add(event.id, record, stats.delivery_counts(destination, "dead", seconds))
        return DeliveryResult(False, dead_lettered=True)
    log.info("delivery %s to %s: %s; retry in %.1fs", event.id, destination, error, delay, extra=extra)
    records.add(event.id, record, stats.delivery_counts(destination, "retried", seconds))
    return DeliveryResult(False, retry_in=delay)
