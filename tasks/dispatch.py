"""The dispatcher: reads the outbox with a consumer group and enqueues, per destination,
one batch job with that read's events for it (`deliver_events`, tasks/batch_delivery.py:
first attempts, each event sent once; retries become a job per event). A long-lived
consumer started with each worker, so an event is handed on in milliseconds; entries a
dead worker left pending are reclaimed.

A route's throttle drops repeats (same event type, same resource) within its window; a
route's digest files the event under its window instead, and each step sends the windows
that have ended as one digest event each (store/digests.py)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from core.route import RouteTable
from model.events import Event
from model.routes import Route
from store import keys
from store.digests import DigestBuffer
from store.unavailable import is_redis_down

__all__ = ["DELIVER_EXPIRES", "Dispatcher", "batch_job_id", "delivery_job_id"]

log = logging.getLogger("statehook.dispatch")

DELIVER_EXPIRES = 3 * 86400
"""A delivery job may be retried for days (Svix's schedule spans ~38 h): ARQ's default
job expiry of one day would drop it."""


DEAD_CONSUMER_IDLE_MS = 10 * 60 * 1000
"""A consumer of the outbox that holds nothing and read nothing for this long is gone."""


def delivery_job_id(event_id: str, destination: str) -> str:
    return f"deliver:{event_id}:{destination}"


def batch_job_id(event_ids: Sequence[str], destination: str) -> str:
    h = hashlib.blake2b("\n".join(event_ids).encode(), digest_size=12).hexdigest()
    return f"deliver-batch:{destination}:{h}"


class Dispatcher:
    def __init__(
        self,
        redis: ArqRedis,
        routes: Sequence[Route],
        consumer: str,
        *,
        enabled_destinations: set[str],
        reclaim_idle: float = 30.0,
        batch: int = 200,
        clock: Callable[[], float] = time.time,
        outage: Any = None,
    ) -> None:
        """`outage`: the process's `worker.outage.Outage`, told of Redis failures (None: logged here)."""
        self.redis = redis
        self.routes = RouteTable.of(routes)
        self.consumer = consumer
        self.destinations = enabled_destinations
        self.reclaim_idle_ms = int(reclaim_idle * 1000)
        self.batch = batch
        self._last_reclaim = 0.0
        self._last_trim = 0.0
        self.dispatched = 0
        self.clock = clock
        self.digests = DigestBuffer(redis)
        self.outage = outage

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(keys.OUTBOX, keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Steps until `stop`; a step that fails is logged (an outage once, by `outage`) and retried."""
        failures = 0
        while not stop.is_set():
            try:
                if failures:
                    await self.ensure_group()
                await self.step(block_ms=500)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if self.outage is not None and is_redis_down(exc):
                    self.outage.failed(exc, "dispatcher")
                    await self.outage.wait_up(self.outage.backoff())
                    continue
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    log.warning("outbox consumer group missing (Redis lost its data?): recreating it")
                    continue
                log.exception("dispatcher step failed")
                await asyncio.sleep(min(5.0, 0.5 * failures))
                continue
            failures = 0
            if self.outage is not None:
                self.outage.ok()

    async def step(self, *, block_ms: int | None = None) -> int:
        """One read of the outbox (and a reclaim when due). Returns entries handled."""
        now = time.monotonic()
        handled = 0
        if now - self._last_reclaim >= self.reclaim_idle_ms / 2000:
            self._last_reclaim = now
            handled += await self.reclaim()
        if now - self._last_trim >= 10:
            self._last_trim = now
            await self.trim()
        response = await self.redis.xreadgroup(
            keys.GROUP, self.consumer, {keys.OUTBOX: ">"}, count=self.batch, block=block_ms
        )
        for _stream, entries in response or ():
            handled += await self.handle(entries)
        await self.flush_digests()
        return handled

    async def flush_digests(self) -> int:
        """Enqueue one delivery per digest window that has ended. Returns how many."""
        sent = 0
        for window in await self.digests.claim(self.clock()):
            route = self.routes.get(window.route)
            event = await self.digests.collect(window, route.name if route else None)
            if event is not None:
                await self.redis.enqueue_job(
                    "deliver", event.to_json(), window.destination,
                    _job_id=delivery_job_id(event.id, window.destination), _expires=DELIVER_EXPIRES,
                )
                sent += 1
            await self.digests.done(window)
        return sent

    async def reclaim(self) -> int:
        """Take over entries another consumer read but never acknowledged (it died)."""
        start = "0-0"
        handled = 0
        while True:
            result = await self.redis.xautoclaim(
                keys.OUTBOX, keys.GROUP, self.consumer, self.reclaim_idle_ms, start_id=start, count=self.batch
            )
            start, entries = result[0], result[1]
            entries = [e for e in entries if e and e[1]]
            if entries:
                log.info("reclaimed %d outbox entries left pending", len(entries))
                handled += await self.handle(entries)
            if start in (b"0-0", "0-0"):
                return handled

    async def handle(self, entries: list[Any]) -> int:
        ids = []
        now = self.clock()  # one batch, one digest window
        batches: dict[str, list[tuple[str, bytes]]] = {}
        poisoned = 0
        for entry_id, fields in entries:
            raw = fields.get(b"e")
            if raw is None:
                ids.append(entry_id)
                continue
            try:
                event = Event.from_json(raw)
                selected = self.routes.select(event)
            except Exception as exc:  # written by something else, or damaged: never blocks the outbox
                log.warning("outbox entry %s is not an event (%s): acknowledged and skipped",
                            entry_id.decode() if isinstance(entry_id, bytes) else entry_id, type(exc).__name__)
                poisoned += 1
                ids.append(entry_id)
                continue
            for sel in selected:
                if sel.destination not in self.destinations:
                    continue
                route = self.routes[sel.route]
                if route.throttle and not await self._first_in_window(sel.route, event, route.throttle):
                    continue
                if route.digest:
                    await self.digests.add(sel.route, sel.destination, raw, route.digest, now)
                    continue
                batches.setdefault(sel.destination, []).append((event.id, raw))
            ids.append(entry_id)
        for destination, items in batches.items():
            await self.redis.enqueue_job(
                "deliver_events", [raw for _, raw in items], destination,
                _job_id=batch_job_id([eid for eid, _ in items], destination), _expires=DELIVER_EXPIRES,
            )
        if ids:
            await self.redis.xack(keys.OUTBOX, keys.GROUP, *ids)
            self.dispatched += len(ids)
        if poisoned:
            await self.redis.hincrby(keys.STATS, "corrupt_records", poisoned)  # type: ignore[misc]
        return len(ids)

    async def _first_in_window(self, route: str, event: Event, window: float) -> bool:
        key = keys.throttle(route, event.rkey, event.type)
        return bool(await self.redis.set(key, event.id, nx=True, px=int(window * 1000)))

    async def forget_dead_consumers(self) -> int:
        """Remove the group's consumers that hold nothing and were idle for DEAD_CONSUMER_IDLE
        (workers that died or stopped; each start names a new one). Returns how many."""
        try:
            consumers = await self.redis.xinfo_consumers(keys.OUTBOX, keys.GROUP)
        except ResponseError:
            return 0
        removed = 0
        for c in consumers:
            name = c["name"].decode() if isinstance(c["name"], bytes) else str(c["name"])
            idle, pending = int(c.get("idle") or 0), int(c.get("pending") or 0)
            if name != self.consumer and not pending and idle > DEAD_CONSUMER_IDLE_MS:
                await self.redis.xgroup_delconsumer(keys.OUTBOX, keys.GROUP, name)
                removed += 1
        return removed

    async def trim(self) -> None:
        """Drop outbox entries every consumer has acknowledged; keep everything pending."""
        await self.forget_dead_consumers()
        try:
            pending = await self.redis.xpending(keys.OUTBOX, keys.GROUP)
            groups = await self.redis.xinfo_groups(keys.OUTBOX)
        except ResponseError:
            return
        last = next((g["last-delivered-id"] for g in groups if g["name"] in (keys.GROUP, keys.GROUP.encode())), None)
        if last is None:
            return
        floor = pending["min"] if pending and pending.get("pending") else last
        if isinstance(floor, bytes):
            floor = floor.decode()
        if pending and pending.get("pending"):
            await self.redis.xtrim(keys.OUTBOX, minid=floor, approximate=True)
        else:
            # everything up to `last` is acknowledged: keep only what follows it
            ms, _, seq = str(floor).partition("-")
            await self.redis.xtrim(keys.OUTBOX, minid=f"{ms}-{int(seq or 0) + 1}", approximate=True)


async def outbox_backlog(redis: aioredis.Redis, *, limit: int = 10_000) -> int:
    """Outbox entries not yet handed on: read by a dispatcher and not acknowledged, plus
    those no dispatcher has read (counted up to `limit`). Counted from the stream itself:
    XINFO's `lag` is an estimate that a failover or a trim can leave far from the truth."""
    try:
        groups = await redis.xinfo_groups(keys.OUTBOX)
    except ResponseError:
        return 0
    for g in groups:
        if g["name"] in (keys.GROUP, keys.GROUP.encode()):
            last = g["last-delivered-id"]
            last = last.decode() if isinstance(last, bytes) else str(last)
            unread = await redis.xrange(keys.OUTBOX, min=f"({last}", max="+", count=limit)
            return int(g.get("pending") or 0) + len(unread)
    return 0
