"""Delivering one event to one destination: send once, retry transient failures on the
destination's schedule, dead-letter permanent failures and exhausted retries, and, through
the destination's circuit (tasks/circuit.py), hold it while the destination is down. What
it leaves in Redis goes through store/deliveries.py and store/circuit.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.backoff import delivery_delay
from core.circuit import is_outage
from core.events import utc_iso
from model.events import Event
from model.outcomes import PermanentFailure, TransientFailure
from notifiers.base import Notifier
from store.deliveries import Attempt, Deliveries, DeliveryRecords

__all__ = ["CircuitGate", "DeliveryResult", "Sent", "attempt_delivery", "deliver_once", "give_up", "send_once"]

log = logging.getLogger("statehook.deliver")

MIN_PACED_PAUSE = 1.0
"""The least a paced send waits before it is made again (a flush's 429 with `Retry-After: 0`)."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the job does next: done, retry after `retry_in` seconds, dead-lettered, or held
    (its destination's circuit is not closed: it waits in Redis for the flush)."""

    delivered: bool
    retry_in: float | None = None
    dead_lettered: bool = False
    held: bool = False


@dataclass(frozen=True, slots=True)
class Sent:
    """One send's outcome: `error` None when delivered; `permanent` for a permanent failure;
    `bug` when the notifier failed in a way it does not report (retried, never lost)."""

    seconds: float
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    permanent: PermanentFailure | None = None
    bug: bool = False

    @property
    def answered(self) -> bool:
        """The destination is up: it took the delivery, or refused it for good."""
        return self.error is None or self.permanent is not None

    @property
    def outage(self) -> bool:
        """A failure that counts against the destination's circuit (core/circuit.py)."""
        return not self.answered and not self.bug and is_outage(self.status, self.retry_after)


class CircuitGate(Protocol):
    """A destination's circuit as one delivery job sees it (tasks/circuit.py's `Gate`)."""

    def holding(self) -> bool:
        """New deliveries wait (the circuit is open or flushing)."""
        ...

    def is_open(self) -> bool: ...

    async def refresh(self) -> None:
        """Reads the circuit again (another worker may have opened it)."""
        ...

    async def hold(self, items: Sequence[tuple[Event, int]]) -> bool:
        """Holds (event, attempts it made); False when the circuit closed meanwhile."""
        ...

    async def outcome(self, sent: Sent) -> None: ...


async def deliver_once(
    deliveries: Deliveries,
    notifier: Notifier | None,
    destination: str,
    event_json: bytes,
    attempt: int,
    gate: CircuitGate | None = None,
    retry_until: float | None = None,
) -> DeliveryResult:
    """One attempt. Records it, and decides: delivered, retry (in how long), dead letter, or
    held. `retry_until`: a retry that would come later is not made (the job would be gone)."""
    records = DeliveryRecords()
    try:
        return await attempt_delivery(deliveries, notifier, destination, Event.from_json(event_json), attempt,
                                      records, await deliveries.disabled_reason(destination), gate,
                                      retry_until=retry_until)
    finally:
        await deliveries.write(records)


SEND_GRACE = 0.5
"""Seconds past `send_limit` before the send is cut: a kind whose own timeout bounds the
whole send (a webhook's) reports it in its own words first (the two timers were equal and
raced); the guard is for a kind whose timeout bounds each step only."""


async def send_once(notifier: Notifier, event: Event, destination: str) -> Sent:
    """One send, bounded by the destination's `send_limit` as a whole (a kind's own timeout
    may bound each step only: an SMTP server that answers each command slowly would outlast
    the job, and a job that times out is neither retried nor dead-lettered)."""
    started = time.perf_counter()
    limit = notifier.settings.send_limit()
    try:
        async with asyncio.timeout(None if limit is None else limit + SEND_GRACE):
            done = await notifier.send(event)
    except TimeoutError:
        return Sent(time.perf_counter() - started, error=f"no answer within {limit:g}s")
    except TransientFailure as exc:
        return Sent(time.perf_counter() - started, exc.status, exc.reason, exc.retry_after)
    except PermanentFailure as exc:
        return Sent(time.perf_counter() - started, exc.status, exc.reason, permanent=exc)
    except Exception as exc:  # a bug or an unexpected library error: retried, never lost
        log.exception("delivery %s to %s: unexpected error", event.id, destination)
        return Sent(time.perf_counter() - started, error=f"unexpected {type(exc).__name__}", bug=True)
    return Sent(time.perf_counter() - started, done.status)


def attempt_record(destination: str, attempt: int, sent: Sent) -> Attempt:
    return Attempt(destination, attempt, utc_iso(time.time()), sent.error is None, sent.status, sent.seconds * 1000,
                   sent.error)


def _extra(event: Event, destination: str) -> dict[str, Any]:
    return {"rkey": event.rkey, "event_id": event.id, "destination": destination}


async def give_up(deliveries: Deliveries, destination: str, event: Event, sent: Sent, attempt: int,
                  records: DeliveryRecords, reason: str | None = None) -> DeliveryResult:
    """Dead-letters the attempt `sent` (a permanent failure, or a spent schedule with `reason`);
    a permanent failure that says so (410 Gone) disables the destination."""
    why = reason or sent.error or "failed"
    if sent.permanent is not None:
        if sent.permanent.disable:
            await deliveries.disable(destination, f"{sent.error} at {utc_iso(time.time())}")
            log.error("destination %s disabled: %s", destination, sent.error, extra=_extra(event, destination))
        log.warning("delivery %s to %s failed permanently: %s", event.id, destination, sent.error,
                    extra=_extra(event, destination))
    await deliveries.dead_letter(event.to_json(), destination, why, sent.status, attempt)
    records.add(event.id, attempt_record(destination, attempt, sent), "dead", sent.seconds)
    return DeliveryResult(False, dead_lettered=True)


async def attempt_delivery(
    deliveries: Deliveries,
    notifier: Notifier | None,
    destination: str,
    event: Event,
    attempt: int,
    records: DeliveryRecords,
    disabled: str | None,
    gate: CircuitGate | None = None,
    paced_wait: float = 0.0,
    retry_until: float | None = None,
) -> DeliveryResult:
    """One attempt, its record and stats added to `records` (the caller writes them).
    Dead letters and the disabling of a destination are written at once. With a `gate`, a
    delivery to a destination whose circuit is not closed is held instead (its try not
    spent), and so is one whose failure finds the circuit open. `paced_wait`: a send that
    the destination's pacing put off (our own rate schedule, or a 429) by at most this long
    is made again after the wait, as the same attempt (the flush keeps order and pace so)."""
    if notifier is None or disabled:
        why = "destination is not configured" if notifier is None else f"destination disabled: {disabled}"
        await deliveries.dead_letter(event.to_json(), destination, why, None, attempt)
        records.skipped(destination)
        return DeliveryResult(False, dead_lettered=True)
    if gate is not None and gate.holding() and await gate.hold([(event, attempt - 1)]):
        records.held(destination)
        return DeliveryResult(False, held=True)
    sent = await send_once(notifier, event, destination)
    while paced_wait and not sent.answered and not sent.outage and not sent.bug and (
            sent.retry_after is not None and sent.retry_after <= paced_wait):
        await asyncio.sleep(max(sent.retry_after, MIN_PACED_PAUSE))  # `Retry-After: 0` (or past) is no pause
        sent = await send_once(notifier, event, destination)
    if gate is not None:
        await gate.outcome(sent)
    extra = _extra(event, destination)
    if sent.error is None:
        log.debug("delivered %s to %s in %.0f ms", event.id, destination, sent.seconds * 1000, extra=extra)
        records.add(event.id, attempt_record(destination, attempt, sent), "ok", sent.seconds)
        return DeliveryResult(True)
    if sent.permanent is not None:
        return await give_up(deliveries, destination, event, sent, attempt, records)
    if gate is not None and sent.outage and gate.is_open() and await gate.hold([(event, attempt)]):
        log.info("delivery %s to %s: %s; held while the destination is down", event.id, destination, sent.error,
                 extra=extra)
        records.add(event.id, attempt_record(destination, attempt, sent), "retried", sent.seconds)
        records.held(destination)
        return DeliveryResult(False, held=True)
    delay = delivery_delay(attempt, notifier.settings.retry_schedule, jitter=notifier.settings.jitter,
                           retry_after=sent.retry_after)
    reason = f"gave up after {attempt} attempts: {sent.error}"
    if delay is not None and retry_until is not None and time.time() + delay > retry_until:
        delay = None
        reason = f"gave up after {attempt} attempts (the next would come after its job expires): {sent.error}"
    if delay is not None:
        log.info("delivery %s to %s: %s; retry in %.1fs", event.id, destination, sent.error, delay, extra=extra)
        records.add(event.id, attempt_record(destination, attempt, sent), "retried", sent.seconds)
        return DeliveryResult(False, retry_in=delay)
    log.warning("delivery %s to %s: %s", event.id, destination, reason, extra=extra)
    return await give_up(deliveries, destination, event, sent, attempt, records, reason)
