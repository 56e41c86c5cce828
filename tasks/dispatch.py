"""The dispatcher: reads the outbox with a consumer group and enqueues, per destination,
one batch job with that read's events for it (`deliver_events`, tasks/batch_delivery.py:
first attempts, each event sent once; retries become a job per event). A long-lived
consumer started with each worker, so an event is handed on in milliseconds; entries a
dead worker left pending are reclaimed.

A route's throttle drops repeats (same event type, same resource) within its window; a
route's digest files the event under its window instead, and each step sends the windows
that have ended as one digest event each (notifiers/digest.py)."""

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

from config.schema import Route
from notifiers.digest import DigestBuffer
from tasks import keys
from tasks.model import Event
from tasks.route import select

__all__ = ["DELIVER_EXPIRES", "Dispatcher", "batch_job_id", "delivery_job_id"]

log = logging.getLogger("statehook.dispatch")

DELIVER_EXPIRES = 3 * 86400
"""A delivery job may be retried for days (Svix's schedule spans ~38 h): ARQ's default
job expiry of one day would drop it."""


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
    ) -> None:
        self.redis = redis
        self.routes = list(routes)
        self.consumer = consumer
        self.destinations = enabled_destinations
        self.reclaim_idle_ms = int(reclaim_idle * 1000)
        self.batch = batch
        self._last_reclaim = 0.0
        self._last_trim = 0.0
        self.dispatched = 0
        self.clock = clock
        self.digests = DigestBuffer(redis)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(keys.OUTBOX, keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_group()
        while not stop.is_set():
            try:
                await self.step(block_ms=500)
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis lost its data (restart without persistence)
                    log.warning("outbox consumer group missing: recreating it")
                    await self.ensure_group()
                    continue
                log.exception("dispatcher step failed")
                await asyncio.sleep(1.0)
            except Exception:  # Redis hiccup or a bad entry: logged, the loop goes on
                log.exception("dispatcher step failed")
                await asyncio.sleep(1.0)

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
            route = self.routes[window.route] if window.route < len(self.routes) else None
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
        for entry_id, fields in entries:
            raw = fields.get(b"e")
            if raw is None:
                ids.append(entry_id)
                continue
            event = Event.from_json(raw)
            for sel in select(event, self.routes):
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
        return len(ids)

    async def _first_in_window(self, route: int, event: Event, window: float) -> bool:
        key = keys.throttle(route, event.rkey, event.type)
        return bool(await self.redis.set(key, event.id, nx=True, px=int(window * 1000)))

    async def trim(self) -> None:
        """Drop outbox entries every consumer has acknowledged; keep everything pending."""
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


async def outbox_backlog(redis: aioredis.Redis) -> int:
    try:
        groups = await redis.xinfo_groups(keys.OUTBOX)
    except ResponseError:
        return 0
    for g in groups:
        if g["name"] in (keys.GROUP, keys.GROUP.encode()):
            return int(g.get("lag") or 0) + int(g.get("pending") or 0)
    return 0
