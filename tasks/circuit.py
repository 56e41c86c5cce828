"""Each destination's circuit, orchestrated: its rules are core/circuit.py, its shared state
and held deliveries store/circuit.py; this is what delivery jobs, the probe and the watcher
do with them (the flush is tasks/circuit_flush.py).

- A delivery job (a batch's first attempts, or a retry) sees the circuit through a `Gate`:
  while it is open or flushing the delivery is held (its try not spent); every attempt's
  outcome is recorded (a success only when there is a failure to forget: a healthy
  destination's deliveries write nothing), and the worker whose record opens the circuit
  tells `statehook.destination.unhealthy`, enqueues the first probe and makes the retries
  already waiting on their schedule run now (so they are held too).
- The probe (`probe`) sends the oldest held delivery when its backoff says so; when the
  destination answers, the circuit is flushing: `statehook.destination.recovered`, the
  flush job, and again the waiting retries at once.
- The watcher (`watch`, a cron every second) starts a probe or a flush that nobody started
  (its job was lost with its worker).

A held delivery waits at most the policy's `max_hold` (3 days by default): each probe
first dead-letters those held longer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.circuit import (
    Circuit,
    CircuitPolicy,
    Status,
    answered,
    due_work,
    probe_candidate,
    probe_failed,
    record,
    release_lease,
    take_lease,
)
from core.events import utc_iso
from model.events import Event, Severity
from model.operational import DESTINATION_RECOVERED, DESTINATION_UNHEALTHY, Subject
from model.values import format_seconds
from notifiers.base import Notifier
from store.circuit import Circuits, HeldEntry
from store.deliveries import Deliveries, DeliveryRecords
from store.operational import OperationalEvents
from tasks.deliver import Sent, attempt_record, give_up, send_once
from tasks.enqueue import DeliveryQueue

__all__ = ["CONDITION", "WATCH_GRACE", "CircuitDeps", "CircuitQueue", "Gate", "expire_held", "held_events",
           "policy_of", "probe", "probe_key", "watch"]

log = logging.getLogger("statehook.circuit")

CONDITION = "circuit_open"
"""The operational condition (store/operational.py) a destination is in while its circuit is open."""
WATCH_GRACE = 1.0
"""Seconds a probe may be late (or a flush without its lease) before the watcher starts one."""
PROBE_LOOKAHEAD = 100
"""Held deliveries a probe chooses from (the first of each resource among them)."""
LEASE_MARGIN = 5.0


class CircuitQueue(DeliveryQueue, Protocol):
    """What the circuit asks of the job queue (worker/queue.py's ArqQueue)."""

    async def probe(self, destination: str, *, at: float, key: str) -> bool:
        """A probe job for `destination` at `at` (Unix time); one per `key`."""
        ...

    async def flush(self, destination: str) -> bool:
        """A flush job for `destination`, now."""
        ...

    async def hurry(self, destination: str) -> int:
        """Every delivery job of `destination` waiting on its retry schedule runs now."""
        ...

    async def retry_held(self, event_id: str, event_json: bytes, destination: str, *, attempts_before: int,
                         defer_s: float, round_key: str) -> bool:
        """A retry of a held delivery that failed in the flush, as a job of its own (its id
        names `round_key`: the event's first job id may still be remembered)."""
        ...


@dataclass(frozen=True, slots=True)
class CircuitDeps:
    """The store objects and queue circuit work uses."""

    circuits: Circuits
    deliveries: Deliveries
    ops: OperationalEvents
    queue: CircuitQueue | None = None
    clock: Callable[[], float] = time.time


def policy_of(notifier: Notifier | None) -> CircuitPolicy:
    """A destination's policy; one this worker does not know gets the defaults (what it held
    is flushed, and dead-lettered as not configured)."""
    return notifier.settings.circuit.policy() if notifier is not None else CircuitPolicy()


def probe_key(c: Circuit) -> str:
    """Names one probe of one opening: its job is enqueued once."""
    return f"{int(c.opened_at * 1000)}:{c.probes}"


def _timeout(notifier: Notifier | None) -> float:
    """How long a probe's send may take (tasks/deliver.py bounds it so)."""
    limit = notifier.settings.send_limit() if notifier is not None else None
    return 15.0 if limit is None else limit


@dataclass(slots=True)
class Gate:
    """One destination's circuit as one job sees it (tasks/deliver.py's CircuitGate): `view`
    is the record as last read or written by this job. `flush`: the gate of the probe or the
    flush, which send held deliveries and so never hold one before sending."""

    deps: CircuitDeps
    destination: str
    policy: CircuitPolicy
    view: Circuit = field(default_factory=Circuit)
    flush: bool = False

    @classmethod
    async def load(cls, deps: CircuitDeps, destination: str, notifier: Notifier | None, *,
                   flush: bool = False) -> Gate:
        policy = policy_of(notifier)
        view = await deps.circuits.read(destination) if policy.enabled else Circuit()
        return cls(deps, destination, policy, view, flush)

    def holding(self) -> bool:
        return self.policy.enabled and not self.flush and self.view.holds

    def is_open(self) -> bool:
        return self.policy.enabled and self.view.status is Status.OPEN

    async def refresh(self) -> None:
        if self.policy.enabled:
            self.view = await self.deps.circuits.read(self.destination)

    async def hold(self, items: Sequence[tuple[Event, int]]) -> bool:
        now = self.deps.clock()
        entries = [HeldEntry(event.id, event.to_json(), attempts, now) for event, attempts in items]
        if await self.deps.circuits.hold(self.destination, entries):
            return True
        self.view = await self.deps.circuits.read(self.destination)  # it closed meanwhile
        return False

    async def outcome(self, sent: Sent) -> None:
        if not self.policy.enabled:
            return
        v = self.view
        if sent.answered:
            if v.status is not Status.OPEN and v.consecutive == 0 and v.window_start == 0:
                return  # nothing to forget: the common case writes nothing
        elif not sent.outage:
            return
        now, ok, reason = self.deps.clock(), sent.answered, sent.error or ""
        before, after = await self.deps.circuits.change(
            self.destination, lambda c: record(c, now, self.policy, ok=ok, reason=reason))
        self.view = after
        await self.transitions(before, after)

    async def change(self, rule: Callable[[Circuit], Circuit | None]) -> Circuit:
        before, after = await self.deps.circuits.change(self.destination, rule)
        self.view = after
        await self.transitions(before, after)
        return after

    async def transitions(self, before: Circuit, after: Circuit) -> None:
        """What a transition this job wrote sets off (another worker's are its own)."""
        if after.status is Status.OPEN and before.status is not Status.OPEN:
            await self._opened(after)
        elif before.status is Status.OPEN and after.status is Status.FLUSHING:
            await self._recovered(before)

    async def _opened(self, c: Circuit) -> None:
        d = self.destination
        log.warning("destination %s is down (%s): its deliveries are held, a probe every %s at most",
                    d, c.reason, format_seconds(self.policy.probe_max), extra={"destination": d})
        await self.deps.ops.enter(
            CONDITION, Subject("destination", d), DESTINATION_UNHEALTHY, severity=Severity.WARNING,
            summary=f"destination {d} is down: its deliveries are held until it answers ({c.reason})",
            data={"destination": d, "reason": c.reason, "since": utc_iso(c.opened_at)})
        if self.deps.queue is not None:
            await self.deps.queue.probe(d, at=c.next_probe, key=probe_key(c))
            await self.deps.queue.hurry(d)

    async def _recovered(self, before: Circuit) -> None:
        d = self.destination
        held = await self.deps.circuits.held_count(d)
        down_for = max(0.0, self.deps.clock() - before.opened_at)
        log.info("destination %s answers again after %.1fs: flushing %d held deliveries", d, down_for, held,
                 extra={"destination": d})
        await self.deps.ops.leave(
            CONDITION, Subject("destination", d), DESTINATION_RECOVERED,
            summary=f"destination {d} answers again: {held} held deliveries are being sent",
            data={"destination": d, "held": held, "down_for_s": round(down_for, 3), "probes": before.probes})
        if self.deps.queue is not None:
            await self.deps.queue.flush(d)
            await self.deps.queue.hurry(d)


async def expire_held(deps: CircuitDeps, destination: str, policy: CircuitPolicy, now: float) -> int:
    """Dead-letters the held deliveries that have waited longer than `max_hold`."""
    expired = 0
    while True:
        entries = await deps.circuits.held(destination, PROBE_LOOKAHEAD)
        old = [e for e in entries if now - e.held_at > policy.max_hold]
        for entry in old:
            await deps.deliveries.dead_letter(
                entry.event_json, destination,
                f"held for more than {format_seconds(policy.max_hold)} while the destination was down", None,
                entry.attempts)
        await deps.circuits.release(destination, [e.event_id for e in old])
        expired += len(old)
        if not old or len(old) < len(entries):
            return expired


async def held_events(deps: CircuitDeps, destination: str, count: int) -> tuple[list[HeldEntry], list[Event]]:
    """The oldest `count` held deliveries and their events; one whose event does not read
    is dead-lettered (it can never be sent, and must not hold up the rest)."""
    entries, events, bad = [], [], []
    for entry in await deps.circuits.held(destination, count):
        try:
            events.append(Event.from_json(entry.event_json))
        except Exception:
            bad.append(entry)
            continue
        entries.append(entry)
    for entry in bad:
        log.error("a held delivery to %s does not read as an event: dead-lettered", destination)
        await deps.deliveries.dead_letter(entry.event_json, destination, "held event does not read", None,
                                          entry.attempts)
    await deps.circuits.release(destination, [e.event_id for e in bad])
    return entries, events


async def probe(deps: CircuitDeps, notifier: Notifier | None, destination: str) -> str:
    """One probe of an open circuit, if it is due and no other is in flight. Returns what
    happened: "not due", "nothing held", "recovered" or "failed"."""
    now = deps.clock()
    lease = _timeout(notifier) + LEASE_MARGIN
    before, leased = await deps.circuits.change(
        destination, lambda c: take_lease(c, now, lease) if c.status is Status.OPEN else None)
    if leased == before:
        return "not due"
    gate = Gate(deps, destination, policy_of(notifier), leased, flush=True)
    try:
        return await _probe(gate, notifier, now)
    except BaseException:
        # the lease would run out by itself; giving it back lets the next probe go on time
        if gate.view.status is Status.OPEN and gate.view.lease_until > now:
            try:
                await gate.change(lambda c: release_lease(c, deps.clock()) if c.status is Status.OPEN else None)
            except Exception:
                log.debug("circuit of %s: the probe's lease runs out by itself", destination)
        raise


async def _probe(gate: Gate, notifier: Notifier | None, now: float) -> str:
    deps, destination = gate.deps, gate.destination
    await expire_held(deps, destination, gate.policy, now)
    entries, events = await held_events(deps, destination, PROBE_LOOKAHEAD)
    pick = probe_candidate([(e.rkey, e.seq) for e in events], gate.view.probes)
    if pick is None:  # nothing to probe with: the next delivery is held and becomes the probe
        await _next_probe(gate, None)
        return "nothing held"
    entry, event = entries[pick], events[pick]
    if notifier is None or await deps.deliveries.disabled_reason(destination):
        await gate.change(lambda c: answered(c, deps.clock()))  # the flush dead-letters them, as for any
        return "recovered"
    sent = await send_once(notifier, event, destination)
    records, attempt = DeliveryRecords(), entry.attempts + 1
    if sent.error is None:
        records.add(event.id, attempt_record(destination, attempt, sent), "ok", sent.seconds)
    elif sent.permanent is not None:
        await give_up(deps.deliveries, destination, event, sent, attempt, records)
    else:
        records.add(event.id, attempt_record(destination, attempt, sent), "retried", sent.seconds)
    await deps.deliveries.write(records)
    if sent.answered:
        await deps.circuits.release(destination, [event.id])
        await gate.change(lambda c: answered(c, deps.clock()))
        outcome = "recovered"
    else:
        await _next_probe(gate, sent)
        log.info("probe of %s failed: %s; next in %.1fs", destination, sent.error,
                 max(0.0, gate.view.next_probe - deps.clock()), extra={"destination": destination})
        outcome = "failed"
    if gate.view.status is Status.FLUSHING and gate.view.lease_until > deps.clock():
        # a delivery in flight answered first: the flush waited for this probe to end
        await gate.change(lambda c: release_lease(c, deps.clock()) if c.status is Status.FLUSHING else None)
        if deps.queue is not None:
            await deps.queue.flush(destination)
    return outcome


async def _next_probe(gate: Gate, sent: Sent | None) -> None:
    deps, policy = gate.deps, gate.policy
    after = await gate.change(lambda c: probe_failed(
        c, deps.clock(), policy, at_least=(sent.retry_after or 0.0) if sent else policy.probe_max,
        reason=(sent.error or "") if sent else ""))
    if deps.queue is not None and after.status is Status.OPEN:
        await deps.queue.probe(gate.destination, at=after.next_probe, key=probe_key(after))


async def watch(deps: CircuitDeps) -> int:
    """Starts what is overdue on each circuit that is not closed; returns how many jobs."""
    started = 0
    for destination in await deps.circuits.not_closed():
        c = await deps.circuits.read(destination)
        if c.status is Status.CLOSED:
            if not await deps.circuits.held_count(destination):
                await deps.circuits.forget(destination)
                continue
            # held deliveries behind a record that was lost or unreadable: flush them
            c = (await deps.circuits.change(destination, lambda r: Circuit(Status.FLUSHING)
                                            if r.status is Status.CLOSED else None))[1]
        work = due_work(c, deps.clock(), WATCH_GRACE)
        if deps.queue is None or work is None:
            continue
        if work == "probe":
            await deps.queue.probe(destination, at=deps.clock(), key=probe_key(c))
        else:
            await deps.queue.flush(destination)
        started += 1
    return started
