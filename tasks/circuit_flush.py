"""The flush: when a destination answers again, every delivery its circuit held is sent at
once, oldest first, in order per resource, concurrently across resources, through the
destination's notifier (so within its rate limit: Slack's shared pacing applies to each
send). New deliveries keep being held behind the flush until nothing is left, then the
circuit closes: the close is a write that requires the held set to be empty, in one step
(store/circuit.py), so nothing is left behind and nothing overtakes what waited.

A held delivery is taken off the held set only once it is handed over: sent, dead-lettered,
or given a retry job of its own (a failure that does not re-open the circuit follows the
delivery's retry schedule from where it was). A flush killed with its worker is taken over
by another flush job (its lease runs out; the watcher starts one) and sends at least what
it had not taken off. A failure that re-opens the circuit stops the flush: what is left
waits for the next probe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, replace

from core.circuit import Circuit, Status, drained, take_lease
from model.events import Event
from notifiers.base import Notifier
from store.circuit import HeldEntry
from store.deliveries import DeliveryRecords
from tasks.circuit import CircuitDeps, Gate, held_events, policy_of
from tasks.deliver import attempt_delivery

__all__ = ["FLUSH_CHUNK", "FLUSH_LEASE", "FlushResult", "flush", "flush_lanes", "resource_chains"]

log = logging.getLogger("statehook.circuit")

FLUSH_CHUNK = 1000
"""Held deliveries read at a time; each resource's among them go in sequence order."""
FLUSH_LEASE = 60.0
"""How long a flush may go without renewing its lease before another may take over."""
PACED_WAIT = 30.0
"""A send the destination's pacing puts off by at most this long waits in the flush and
goes again (in order, as the same attempt) instead of becoming a retry."""


@dataclass(slots=True)
class FlushResult:
    sent: int = 0
    """handed over: delivered, dead-lettered or given a retry job"""
    closed: bool = False
    reopened: bool = False
    busy: bool = False
    """another flush holds the lease, or the circuit is not flushing"""


def flush_lanes(notifier: Notifier | None, concurrency: int) -> int:
    """Sends in flight: `concurrency`, or fewer for a destination paced by its own schedule
    (Slack's `min_interval`): each send then waits for its slot within `max_wait` instead
    of being handed back as a retry (a retry from the schedule's position, minutes away)."""
    settings = getattr(notifier, "settings", None)
    interval, max_wait = getattr(settings, "min_interval", 0.0), getattr(settings, "max_wait", 0.0)
    if not interval or interval <= 0:
        return concurrency
    return max(1, min(concurrency, int(max_wait / interval) - 1))


def resource_chains(items: list[tuple[HeldEntry, Event]]) -> list[list[tuple[HeldEntry, Event]]]:
    """Held deliveries in arrival order → one chain per resource in sequence order, the
    chains in the order of their oldest delivery. Pure."""
    chains: dict[str, list[tuple[HeldEntry, Event]]] = defaultdict(list)
    for entry, event in items:
        chains[event.rkey].append((entry, event))
    return [sorted(chain, key=lambda item: item[1].seq) for chain in chains.values()]


async def flush(deps: CircuitDeps, notifier: Notifier | None, destination: str, *, concurrency: int,
                deadline_s: float) -> FlushResult:
    """Flushes `destination` until nothing is held (then closes its circuit), it re-opens,
    or `deadline_s` passes (then another flush job goes on)."""
    result = FlushResult()
    now = deps.clock()
    before, leased = await deps.circuits.change(
        destination, lambda c: take_lease(c, now, FLUSH_LEASE) if c.status is Status.FLUSHING else None)
    if leased == before:
        result.busy = True
        return result
    gate = Gate(deps, destination, policy_of(notifier), leased, flush=True)
    disabled = await deps.deliveries.disabled_reason(destination)
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        entries, events = await held_events(deps, destination, FLUSH_CHUNK)
        if not entries:
            if await _close(gate, result):
                return result
            continue
        result.sent += await _send_chunk(gate, notifier, list(zip(entries, events, strict=True)), disabled,
                                         flush_lanes(notifier, concurrency))
        if gate.view.status is not Status.FLUSHING:
            result.reopened = True
            return result
        await _renew(gate)
    log.info("flush of %s passed its deadline of %.0fs: another flush job goes on", destination, deadline_s)
    await gate.change(lambda c: replace(c, lease_until=0.0) if c.status is Status.FLUSHING else None)
    if deps.queue is not None:
        await deps.queue.flush(destination)
    return result


async def _close(gate: Gate, result: FlushResult) -> bool:
    """Nothing held: close the circuit. False when a delivery was held meanwhile (flush it)."""
    closed = await gate.deps.circuits.close_if_drained(gate.destination, gate.view, drained(gate.view))
    if closed:
        gate.view = Circuit()
        result.closed = True
        log.info("destination %s: flush done, circuit closed (%d sent)", gate.destination, result.sent,
                 extra={"destination": gate.destination})
        return True
    if closed is None:  # the record changed (another worker's outcome, or it re-opened)
        gate.view = await gate.deps.circuits.read(gate.destination)
        if gate.view.status is not Status.FLUSHING:
            result.reopened = gate.view.status is Status.OPEN
            return True
    return False


async def _renew(gate: Gate) -> None:
    until = gate.deps.clock() + FLUSH_LEASE
    gate.view = (await gate.deps.circuits.change(
        gate.destination, lambda c: replace(c, lease_until=until) if c.status is Status.FLUSHING else None))[1]


async def _send_chunk(gate: Gate, notifier: Notifier | None, items: list[tuple[HeldEntry, Event]],
                      disabled: str | None, concurrency: int) -> int:
    """One chunk, concurrent across resources; returns how many were handed over."""
    deps, destination = gate.deps, gate.destination
    records = DeliveryRecords()
    done: list[str] = []
    lanes = asyncio.Semaphore(concurrency)
    round_key = f"{int(gate.view.opened_at * 1000)}"

    async def chain(items: list[tuple[HeldEntry, Event]]) -> None:
        for entry, event in items:
            if gate.view.status is not Status.FLUSHING:
                return  # re-opened: the rest of this resource waits behind what was not sent
            attempt = entry.attempts + 1
            async with lanes:
                outcome = await attempt_delivery(deps.deliveries, notifier, destination, event, attempt, records,
                                                 disabled, gate, paced_wait=PACED_WAIT)
            if outcome.held:
                return
            if outcome.retry_in is not None:
                if deps.queue is None:
                    return  # nowhere to hand it over: it stays held
                await deps.queue.retry_held(event.id, entry.event_json, destination, attempts_before=attempt,
                                            defer_s=outcome.retry_in, round_key=f"{round_key}:{attempt}")
            done.append(event.id)

    renewing = asyncio.create_task(_keep_lease(gate))
    try:
        async with asyncio.TaskGroup() as group:
            for items_of_one in resource_chains(items):
                group.create_task(chain(items_of_one))
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
        await deps.deliveries.write(records)
        await deps.circuits.release(destination, done)
    return len(done)


async def _keep_lease(gate: Gate) -> None:
    """Renews the flush's lease while a chunk is being sent (a slow receiver's timeouts)."""
    while True:
        await asyncio.sleep(FLUSH_LEASE / 3)
        if gate.view.status is not Status.FLUSHING:
            return
        try:
            await _renew(gate)
        except Exception:
            log.warning("flush of %s: could not renew its lease", gate.destination)
