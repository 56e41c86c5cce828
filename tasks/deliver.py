"""Delivering one event to one destination: send once, retry transient failures on the
destination's schedule, dead-letter permanent failures and exhausted retries. What it
leaves in Redis goes through store/deliveries.py."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from core.backoff import delivery_delay
from core.events import utc_iso
from model.events import Event
from model.outcomes import PermanentFailure, TransientFailure
from notifiers.base import Notifier
from store.deliveries import Attempt, Deliveries, DeliveryRecords

__all__ = ["DeliveryResult", "attempt_delivery", "deliver_once"]

log = logging.getLogger("statehook.deliver")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the job does next: done, retry after `retry_in` seconds, or dead-lettered."""

    delivered: bool
    retry_in: float | None = None
    dead_lettered: bool = False


@dataclass(frozen=True, slots=True)
class _Sent:
    """One send's outcome: `error` None when delivered; `permanent` for a permanent failure."""

    seconds: float
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    permanent: PermanentFailure | None = None


async def deliver_once(
    deliveries: Deliveries,
    notifier: Notifier | None,
    destination: str,
    event_json: bytes,
    attempt: int,
) -> DeliveryResult:
    """One attempt. Records it, and decides: delivered, retry (in how long), or dead letter."""
    records = DeliveryRecords()
    try:
        return await attempt_delivery(deliveries, notifier, destination, Event.from_json(event_json), attempt,
                                      records, await deliveries.disabled_reason(destination))
    finally:
        await deliveries.write(records)


async def _send(notifier: Notifier, event: Event, destination: str) -> _Sent:
    started = time.perf_counter()
    try:
        done = await notifier.send(event)
    except TransientFailure as exc:
        return _Sent(time.perf_counter() - started, exc.status, exc.reason, exc.retry_after)
    except PermanentFailure as exc:
        return _Sent(time.perf_counter() - started, exc.status, exc.reason, permanent=exc)
    except Exception as exc:  # a bug or an unexpected library error: retried, never lost
        log.exception("delivery %s to %s: unexpected error", event.id, destination)
        return _Sent(time.perf_counter() - started, error=f"unexpected {type(exc).__name__}")
    return _Sent(time.perf_counter() - started, done.status)


async def attempt_delivery(
    deliveries: Deliveries,
    notifier: Notifier | None,
    destination: str,
    event: Event,
    attempt: int,
    records: DeliveryRecords,
    disabled: str | None,
) -> DeliveryResult:
    """One attempt, its record and stats added to `records` (the caller writes them).
    Dead letters and the disabling of a destination are written at once."""
    if notifier is None or disabled:
        why = "destination is not configured" if notifier is None else f"destination disabled: {disabled}"
        await deliveries.dead_letter(event.to_json(), destination, why, None, attempt)
        records.skipped(destination)
        return DeliveryResult(False, dead_lettered=True)
    sent = await _send(notifier, event, destination)
    record = Attempt(destination, attempt, utc_iso(time.time()), sent.error is None, sent.status,
                     sent.seconds * 1000, sent.error)
    extra = {"rkey": event.rkey, "event_id": event.id, "destination": destination}
    if sent.error is None:
        log.debug("delivered %s to %s in %.0f ms", event.id, destination, sent.seconds * 1000, extra=extra)
        records.add(event.id, record, "ok", sent.seconds)
        return DeliveryResult(True)
    reason = sent.error
    if sent.permanent is not None:
        if sent.permanent.disable:
            await deliveries.disable(destination, f"{sent.error} at {utc_iso(time.time())}")
            log.error("destination %s disabled: %s", destination, sent.error, extra=extra)
        log.warning("delivery %s to %s failed permanently: %s", event.id, destination, sent.error, extra=extra)
    else:
        delay = delivery_delay(attempt, notifier.settings.retry_schedule, jitter=notifier.settings.jitter,
                               retry_after=sent.retry_after)
        if delay is not None:
            log.info("delivery %s to %s: %s; retry in %.1fs", event.id, destination, sent.error, delay, extra=extra)
            records.add(event.id, record, "retried", sent.seconds)
            return DeliveryResult(False, retry_in=delay)
        reason = f"gave up after {attempt} attempts: {sent.error}"
        log.warning("delivery %s to %s: %s", event.id, destination, reason, extra=extra)
    await deliveries.dead_letter(event.to_json(), destination, reason, sent.status, attempt)
    records.add(event.id, record, "dead", sent.seconds)
    return DeliveryResult(False, dead_lettered=True)
