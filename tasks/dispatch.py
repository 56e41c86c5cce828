"""The dispatcher: reads the outbox with a consumer group and enqueues, per destination,
one batch job with that read's events for it (`deliver_events`, tasks/batch_delivery.py:
first attempts, each event sent once; retries become a job per event). A long-lived
consumer started with each worker, so an event is handed on in milliseconds; entries a
dead worker left pending are reclaimed.

A route's throttle drops repeats (same event type, same resource) within its window; a
route's digest files the event under its window instead, and each step sends the windows
that have ended as one digest event each (store/digests.py).

Before either, a delivery may be muted (tasks/muting.py): by an active silence, or by the
route's maintenance window (`mute_during`, `active_during`), whose muted events are held
and summarised in one event per destination when the window ends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from core.route import RouteTable, Selection
from model.events import Event, Severity
from model.routes import Route
from model.silences import RoutingFacts
from model.time_intervals import NamedTimeInterval
from store.digests import DigestBuffer
from store.outbox import Outbox, OutboxEntry, is_missing_group
from store.unavailable import is_redis_down
from tasks.enqueue import DeliveryQueue
from tasks.muting import Mutes, MuteStep, MuteStores

__all__ = ["Dispatcher", "OutageWatch", "ReminderHooks", "is_reminder", "wants_seen"]

log = logging.getLogger("statehook.dispatch")


class OutageWatch(Protocol):
    """What the dispatcher tells of Redis failures (worker/outage.py's `Outage`)."""

    def failed(self, exc: BaseException, where: str) -> None: ...
    def ok(self, *, wrote: bool = True) -> None: ...
    def backoff(self) -> float: ...
    async def wait_up(self, timeout: float | None = None) -> bool: ...


class ReminderHooks(Protocol):
    """What the dispatcher tells the reminders of (helper B's store): `seen` for every event
    that says where a resource is now (a state change, a `.gone`), so that a reminder of an
    older state is disarmed; `arm` for each critical event delivered through a route with
    `repeat_every`, once per destination; `flush` before a read is acknowledged (hooks may
    queue their writes until then: one round trip a read)."""

    async def arm(self, event: Event, route: str, destination: str, period: float, now: float) -> None: ...
    async def seen(self, event: Event) -> None: ...
    async def flush(self) -> None: ...


def wants_seen(event: Event) -> bool:
    """An event that tells a resource's current state (the reminders compare with it)."""
    return event.target_state is not None or event.type.endswith(".gone")


def is_reminder(event: Event) -> bool:
    return "reminder" in event.data


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        digests: DigestBuffer,
        queue: DeliveryQueue,
        routes: Sequence[Route],
        consumer: str,
        *,
        enabled_destinations: set[str],
        reclaim_idle: float = 30.0,
        batch: int = 200,
        clock: Callable[[], float] = time.time,
        outage: OutageWatch | None = None,
        reminders: ReminderHooks | None = None,
        mutes: MuteStores | None = None,
        time_intervals: Sequence[NamedTimeInterval] = (),
    ) -> None:
        """`outage`: told of Redis failures (None: logged here); `reminders`: told of state
        changes and critical deliveries (None: no reminders); `mutes`: where silences and the
        windows' held events are (None: neither applies); `time_intervals`: the config's,
        which routes' `mute_during` and `active_during` name."""
        self.outbox = outbox
        self.digests = digests
        self.queue = queue
        self.routes = RouteTable.of(routes)
        self.consumer = consumer
        self.destinations = enabled_destinations
        self.reclaim_idle_ms = int(reclaim_idle * 1000)
        self.batch = batch
        self._last_reclaim = 0.0
        self._last_trim = 0.0
        self.dispatched = 0
        self.clock = clock
        self.outage = outage
        self.reminders = reminders
        self.mutes = Mutes(mutes, self.routes, time_intervals) if mutes is not None else None

    async def ensure_group(self) -> None:
        await self.outbox.ensure_group()

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
                if is_missing_group(exc):
                    log.warning("outbox consumer group missing (Redis lost its data?): recreating it")
                    continue
                log.exception("dispatcher step failed")
                await asyncio.sleep(min(5.0, 0.5 * failures))
                continue
            failures = 0
            if self.outage is not None:
                self.outage.ok(wrote=False)  # XREADGROUP and XACK are not refused under maxmemory

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
        entries = await self.outbox.read(self.consumer, self.batch, block_ms)
        if entries:
            handled += await self.handle(entries)
        await self.flush_digests()
        if self.mutes is not None:
            await self.mutes.flush_windows(self.queue, self.clock())
        return handled

    async def flush_digests(self) -> int:
        """Enqueue one delivery per digest window that has ended. Returns how many."""
        sent = 0
        for window in await self.digests.claim(self.clock()):
            route = self.routes.get(window.route)
            event = await self.digests.collect(window, route.name if route else None)
            if event is not None:
                await self.queue.deliver(event.id, event.to_json(), window.destination)
                sent += 1
            await self.digests.done(window)
        return sent

    async def reclaim(self) -> int:
        """Take over entries another consumer read but never acknowledged (it died)."""
        start = "0-0"
        handled = 0
        while True:
            start, entries = await self.outbox.reclaim(self.consumer, self.reclaim_idle_ms, start, self.batch)
            if entries:
                log.info("reclaimed %d outbox entries left pending", len(entries))
                handled += await self.handle(entries)
            if start == "0-0":
                return handled

    async def handle(self, entries: Sequence[OutboxEntry]) -> int:
        """Route each entry's event: muted (a silence, a window), throttled, filed under a
        digest window, or batched per destination (one `deliver_events` job each); then
        acknowledge them all."""
        ids = []
        now = self.clock()  # one batch, one digest window
        batches: dict[str, list[tuple[str, bytes]]] = {}
        poisoned = 0
        step = await self.mutes.begin(now) if self.mutes is not None else None
        for entry in entries:
            ids.append(entry.entry_id)
            if entry.event is None:
                continue
            try:
                event = Event.from_json(entry.event)
                selected = [s for s in self.routes.select(event) if s.destination in self.destinations]
            except Exception as exc:  # written by something else, or damaged: never blocks the outbox
                log.warning("outbox entry %s is not an event (%s): acknowledged and skipped",
                            entry.entry_id, type(exc).__name__)
                poisoned += 1
                continue
            if self.reminders is not None and wants_seen(event):
                await self.reminders.seen(event)
            facts = RoutingFacts.of(event, tuple(s.destination for s in selected))
            if step is not None:
                step.facts.append(facts)
            for sel in selected:
                if await self._route(event, entry.event, facts, sel, step):
                    batches.setdefault(sel.destination, []).append((event.id, entry.event))
        if self.mutes is not None and step is not None:
            for destination, event_id, raw in await self.mutes.finish(step):
                batches.setdefault(destination, []).append((event_id, raw))
        for destination, items in batches.items():
            await self.queue.deliver_events([eid for eid, _ in items], [raw for _, raw in items], destination)
        if self.reminders is not None:
            await self.reminders.flush()
        if ids:
            await self.outbox.ack(ids)
            self.dispatched += len(ids)
        if poisoned:
            await self.outbox.count_corrupt(poisoned)
        return len(ids)

    async def _route(self, event: Event, raw: bytes, facts: RoutingFacts, sel: Selection,
                     step: MuteStep | None) -> bool:
        """Whether `event` goes to `sel.destination` in this read's batch; a muted or
        throttled one does not, a digest route's event is filed under its window instead."""
        route = self.routes[sel.route]
        now = step.now if step is not None else self.clock()
        if is_reminder(event):
            target = event.data.get("reminder_destination")
            if target != sel.destination if target is not None else route.repeat_every is None:
                return False  # a reminder goes only to the destination it was armed for
        hold = route.after_window == "summary" and not is_reminder(event)  # a summary shows the state already
        if self.mutes is not None and step is not None and self.mutes.mute(
                step, event, raw, facts, sel.route, sel.destination, hold=hold):
            return False
        if route.throttle and not is_reminder(event) and not await self.outbox.first_in_window(
                sel.route, event.rkey, event.type, event.id, route.throttle):
            return False
        if route.digest:
            await self.digests.add(sel.route, sel.destination, raw, route.digest, now)
            return False
        if (self.reminders is not None and route.repeat_every is not None
                and event.severity is Severity.CRITICAL and not is_reminder(event)):
            await self.reminders.arm(event, sel.route, sel.destination, route.repeat_every, now)
        return True

    async def forget_dead_consumers(self) -> int:
        """Remove the group's consumers that hold nothing and were idle for ten minutes
        (workers that died or stopped; each start names a new one). Returns how many."""
        return await self.outbox.forget_dead_consumers(self.consumer)

    async def trim(self) -> None:
        """Drop outbox entries every consumer has acknowledged; keep everything pending."""
        await self.forget_dead_consumers()
        await self.outbox.trim()
