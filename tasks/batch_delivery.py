"""First attempts in batches: one job delivers many events to one destination.

A delivery job per (event, destination) caps a worker at ARQ's own job rate (about 1,000
trivial jobs/s here, see docs/performance.md), so the dispatcher hands each destination
the events of one outbox read as one batch job. Each event keeps its own identity:

- a *delivery mark* per (event, destination) in Redis, leased to the batch before the send
  and kept as "done" for `keep_mark_s` once the event is handed over, makes a second batch
  with the same event (a reclaimed outbox entry) skip it; ARQ re-running the same batch (a
  Redis error, a cancel) takes back the marks it had not settled;
- events of one resource go out in order; different resources go out concurrently;
- a transient failure becomes an ordinary `deliver` job (id `deliver:{event}:{dest}`) that
  follows the destination's retry schedule from attempt 2; permanent failures are
  dead-lettered at once, as by a single delivery;
- while the destination's circuit is open or flushing (tasks/circuit.py), the batch's
  events are held instead, in one step, and an outage failure that finds the circuit open
  holds its event too;
- the attempts' records and stats go to Redis in one round trip at the end;
- what the batch did not finish (its deadline passed, a bug) becomes a `deliver` job too,
  so that nothing read from the outbox is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from model.events import Event
from notifiers.base import Notifier
from store.deliveries import Deliveries, DeliveryRecords
from store.unavailable import is_redis_down
from tasks.deliver import CircuitGate, attempt_delivery
from tasks.enqueue import DeliveryQueue

__all__ = ["BatchResult", "deliver_batch", "group_by_resource"]

log = logging.getLogger("statehook.deliver")


@dataclass(slots=True)
class BatchResult:
    delivered: int = 0
    dead_lettered: int = 0
    handed_over: int = 0
    """events given a `deliver` job: first attempt failed (retry on the schedule), or not
    attempted before the deadline"""
    skipped: int = 0
    """events whose mark another run holds (sent, or being sent)"""
    held: int = 0
    """events held while the destination's circuit is not closed"""


T = TypeVar("T")
LEASE_MARGIN_S = 60
"""A mark outlives its batch's deadline by this much before another batch may take it."""
Claimed = list[tuple[str, str, Event]]
"""(event id, rkey, event) of the events whose marks this batch holds, in outbox order"""


def group_by_resource(events: Sequence[tuple[str, str, T]]) -> list[list[tuple[str, T]]]:
    """(event id, rkey, event) in outbox order → one chain per resource, each in order. Pure."""
    chains: dict[str, list[tuple[str, T]]] = defaultdict(list)
    for event_id, rkey, raw in events:
        chains[rkey].append((event_id, raw))
    return list(chains.values())


def _redis_failure(exc: BaseException) -> BaseException | None:
    """`exc` itself, or the first failure inside a task group's, when it is Redis being down."""
    if is_redis_down(exc):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _redis_failure(inner)
        if found is not None:
            return found
    return None


@dataclass(slots=True)
class _Batch:
    """One run of one batch: what it attempted, what is settled, what is to be retried."""

    deliveries: Deliveries
    notifier: Notifier | None
    destination: str
    disabled: str | None
    result: BatchResult
    gate: CircuitGate | None = None
    records: DeliveryRecords = field(default_factory=lambda: DeliveryRecords(trim=False))
    final: set[str] = field(default_factory=set)
    """events handed over for good: sent, dead-lettered or given a job of their own"""
    retry: list[tuple[str, Event, float]] = field(default_factory=list)

    async def chain(self, items: list[tuple[str, Event]], lanes: asyncio.Semaphore) -> None:
        """One resource's events, in order, each after the one before."""
        for eid, event in items:
            async with lanes:
                outcome = await attempt_delivery(self.deliveries, self.notifier, self.destination, event, 1,
                                                 self.records, self.disabled, self.gate)
            if outcome.retry_in is not None:
                self.retry.append((eid, event, outcome.retry_in))
            elif self.retry and self.gate is not None and self.gate.is_open():
                await self.hold_retries()  # the circuit opened: an earlier failure waits with the rest
            if outcome.retry_in is not None:
                continue
            self.final.add(eid)
            if outcome.held:
                self.result.held += 1
            elif outcome.delivered:
                self.result.delivered += 1
            else:
                self.result.dead_lettered += 1

    async def attempt_all(self, mine: Claimed, concurrency: int, deadline_s: float) -> None:
        """First attempts, concurrent across resources, until done or `deadline_s`. Raises
        only when Redis is down (the job runs the batch again once Redis answers)."""
        lanes = asyncio.Semaphore(concurrency)
        try:
            # a TaskGroup, not gather: when one chain fails, the others stop too, so that
            # nothing is still being sent while the rest is handed over to jobs of their own
            async with asyncio.timeout(deadline_s), asyncio.TaskGroup() as chains:
                for items in group_by_resource(mine):
                    chains.create_task(self.chain(items, lanes))
        except TimeoutError:
            log.warning("delivery batch to %s passed its deadline of %.0fs: the rest get jobs of their own",
                        self.destination, deadline_s)
        except Exception as exc:
            down = _redis_failure(exc)
            if down is not None:
                raise down from None  # its marks are its own: the re-run takes them back
            log.exception("delivery batch to %s failed: the rest get jobs of their own", self.destination)

    async def hand_over(self, queue: DeliveryQueue, mine: Claimed) -> None:
        """A `deliver` job for each event to retry (from attempt 2, after its delay) and each
        not attempted (a first attempt). Retries are held instead if the circuit opened."""
        if self.retry and self.gate is not None:
            await self.gate.refresh()
            await self.hold_retries()
        for eid, event, delay in self.retry:
            await queue.deliver(event.id, event.to_json(), self.destination, attempts_before=1, defer_s=delay)
            self.final.add(eid)
        for eid, _, event in mine:
            if eid not in self.final:
                await queue.deliver(event.id, event.to_json(), self.destination)
                self.final.add(eid)
        self.result.handed_over = len(mine) - self.result.delivered - self.result.dead_lettered - self.result.held

    async def hold_retries(self) -> None:
        """The events this batch was to retry on their schedule, held instead (their first
        attempt spent): the circuit is open, and they must not come after what it holds."""
        if self.gate is None or not self.gate.holding() or not self.retry:
            return
        items, self.retry = self.retry, []
        if not await self.gate.hold([(event, 1) for _, event, _ in items]):
            self.retry.extend(items)  # it closed meanwhile: retried as usual
            return
        for eid, _, _ in items:
            self.final.add(eid)
            self.records.held(self.destination)
        self.result.held += len(items)

    async def hold_all(self, mine: Claimed) -> bool:
        """All of `mine` held at once, when the circuit is open or flushing (not disabled: a
        disabled destination's deliveries are dead-lettered)."""
        if self.gate is None or self.disabled or self.notifier is None or not self.gate.holding() or not mine:
            return False
        if not await self.gate.hold([(event, 0) for _, _, event in mine]):
            return False
        for eid, _, _ in mine:
            self.final.add(eid)
            self.records.held(self.destination)
        self.result.held = len(mine)
        return True


async def deliver_batch(
    deliveries: Deliveries,
    notifier: Notifier | None,
    destination: str,
    events: Sequence[bytes],
    queue: DeliveryQueue,
    *,
    owner: str,
    concurrency: int,
    deadline_s: float,
    keep_mark_s: int,
    gate: CircuitGate | None = None,
) -> BatchResult:
    """First attempt of each event of `events` that no other batch claimed. `owner` names
    this batch (its job id): a re-run of the same batch takes its own marks back. `gate`:
    the destination's circuit (None: none)."""
    result = BatchResult()
    parsed = [Event.from_json(raw) for raw in events]
    claimed = await deliveries.claim_marks([e.id for e in parsed], destination, owner,
                                           int(deadline_s) + LEASE_MARGIN_S)
    mine = [(e.id, e.rkey, e) for e, ok in zip(parsed, claimed, strict=True) if ok]
    result.skipped = len(parsed) - len(mine)
    batch = _Batch(deliveries, notifier, destination, await deliveries.disabled_reason(destination), result,
                   gate=gate)
    started = time.monotonic()
    try:
        if not await batch.hold_all(mine):
            await batch.attempt_all(mine, concurrency, deadline_s)
        await batch.hand_over(queue, mine)
    finally:
        await deliveries.write(batch.records)
        released = [eid for eid, _, _ in mine if eid not in batch.final]
        await deliveries.settle_marks(destination, sorted(batch.final), released, keep_mark_s)
        log.debug("batch to %s: %d of %d sent in %.2fs", destination, result.delivered, len(events),
                  time.monotonic() - started)
    return result
