"""Operating deliveries, the work behind `statehook dlq …` and `statehook notify …` and the
console's pages (worker/cli_deliveries.py only prints): dead letters listed, replayed and
purged, destinations' status, enabling and disabling them, a test event through the real
delivery path, an event's attempts. A replayed dead letter gets a job id of its own
(`…:replay:{entry id}`): the original job id may still be remembered by ARQ, and replaying
one entry twice at once must not deliver it twice.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from arq.connections import ArqRedis

import notifiers
from config.load import Config, canonical_name
from model.events import Event, Severity
from notifiers.base import NotifierContext
from notifiers.templates import sample_event
from store.circuit import Circuits
from store.deliveries import Deliveries
from store.operational import OperationalEvents
from store.rates import RateSchedule
from store.reads import Reads, Unreadable
from store.slack import SlackThreads
from tasks.deliver import deliver_once
from worker.metrics import circuit_gauges
from worker.queue import enqueue_delivery

__all__ = [
    "ReplayOutcome",
    "TestOutcome",
    "delivery_attempts",
    "destination_status",
    "disable_destination",
    "enable_destination",
    "is_entry_id",
    "list_dead_letters",
    "purge_dead_letters",
    "replay_dead_letters",
    "send_test",
]


ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
"""A stream entry id, `ms-seq` (each a 64-bit number, checked by `is_entry_id`)."""


def is_entry_id(text: str) -> bool:
    """Whether `text` is a stream entry id Redis takes (`1700000000000-0`)."""
    if ENTRY_ID.fullmatch(text) is None:
        return False
    ms, seq = text.split("-")
    return int(ms) < 2**64 and int(seq) < 2**64


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    entry_id: str
    event_id: str
    destination: str
    enqueued: bool
    """False when that replay was already queued (and this one was dropped)"""


async def list_dead_letters(redis: ArqRedis, limit: int = 1000) -> list[dict[str, Any]]:
    """The oldest `limit` dead letters; an entry that cannot be read is left out, logged
    with its key and counted (statehook_corrupt_records_total)."""
    bad = Unreadable()
    letters, _ = await Reads(redis).dead_letter_page(bad, count=limit)
    await bad.report(redis)
    return [d.as_dict() for d in letters]


async def replay_dead_letters(redis: ArqRedis, entry_ids: list[str] | None, *,
                             history_length: int) -> list[ReplayOutcome]:
    """Enqueue a delivery per dead letter (all of them if `entry_ids` is None), then remove
    each from the stream and note the replay in its resource's timeline (the config's
    `worker.history_length` entries kept): enqueued first, so a crash in between loses nothing."""
    deliveries = Deliveries(redis)
    out = []
    async for entry in deliveries.replay_entries(entry_ids):
        enqueued = await enqueue_delivery(redis, entry.event_id, entry.event_json, entry.destination,
                                          replay_of=entry.entry_id)
        await deliveries.replayed(entry, history_length=history_length, noted=enqueued)
        out.append(ReplayOutcome(entry.entry_id, entry.event_id, entry.destination, enqueued))
    return out


async def purge_dead_letters(redis: ArqRedis) -> int:
    return await Deliveries(redis).purge_dead_letters()


async def delivery_attempts(redis: ArqRedis, event_id: str) -> list[dict[str, Any]]:
    """Every recorded attempt to deliver `event_id`, oldest first (the last 20 per event)."""
    return await Deliveries(redis).attempts(event_id)


async def destination_status(redis: ArqRedis, config: Config) -> list[dict[str, Any]]:
    """Each destination: its kind, whether it is enabled or disabled (and why), its dead
    letters, and its circuit (`closed`, `open`, `flushing`) with the deliveries held."""
    deliveries = Deliveries(redis)
    disabled = await deliveries.disabled()
    dead = await deliveries.dead_letter_counts()
    circuits = {c.destination: c for c in await circuit_gauges(Circuits(redis))}
    names = sorted(set(config.destinations) | set(disabled))
    return [
        {
            "name": name,
            "kind": config.destinations[name].kind if name in config.destinations else None,
            "configured": name in config.destinations,
            "enabled": config.destinations[name].enabled if name in config.destinations else False,
            "disabled": disabled.get(name),
            "dead_letters": dead.get(name, 0),
            "circuit": circuits[name].status.value if name in circuits else "closed",
            "held": circuits[name].held if name in circuits else 0,
        }
        for name in names
    ]


def _telling(redis: ArqRedis, config: Config) -> Deliveries:
    """Deliveries that tell their dead letters, disables and enables in the destination's
    timeline, kept to the config's `worker.history_length`."""
    return Deliveries(redis, OperationalEvents(redis, history_length=config.settings.worker.history_length))


async def enable_destination(redis: ArqRedis, config: Config, name: str) -> bool:
    """Lift a 410's disable. True if it was disabled."""
    return await _telling(redis, config).enable(canonical_name(name))


async def disable_destination(redis: ArqRedis, config: Config, name: str, reason: str) -> None:
    await _telling(redis, config).disable(canonical_name(name), f"{reason} (by hand)")


@dataclass(frozen=True, slots=True)
class TestOutcome:
    event_id: str
    delivered: bool
    dead_lettered: bool = False
    retry_in: float | None = None
    attempt: dict[str, Any] | None = None
    queued: bool = False
    held: str | None = None
    """with `via_worker` and no attempt: the destination's circuit is not closed (why it
    opened), so the event waits behind it instead of being sent"""
    disabled: str | None = None
    """with `via_worker`: the destination is disabled (why): the worker dead-letters the event"""


async def _test_via_worker(redis: ArqRedis, name: str, event: Event, timeout: float) -> TestOutcome:
    """The test event as a delivery job, and the worker's first attempt at it (none: the
    destination is disabled, and the worker dead-letters it; or its circuit holds it)."""
    await enqueue_delivery(redis, event.id, event.to_json(), name)
    disabled = await Deliveries(redis).disabled_reason(name)
    if disabled is not None:
        return TestOutcome(event.id, False, queued=True, disabled=disabled)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attempts = await delivery_attempts(redis, event.id)
        if attempts:
            last = attempts[-1]
            return TestOutcome(event.id, bool(last["ok"]), attempt=last, queued=True)
        await asyncio.sleep(0.1)
    circuit = await Circuits(redis).read(name)
    return TestOutcome(event.id, False, queued=True,
                       held=(circuit.reason or circuit.status.value) if circuit.holds else None)


async def send_test(
    redis: ArqRedis,
    config: Config,
    destination: str,
    *,
    severity: Severity = Severity.CRITICAL,
    via_worker: bool = False,
    timeout: float = 30.0,
) -> TestOutcome:
    """A sample event to `destination` through the delivery path: its templates, its rate
    limit, a recorded attempt, the dead letters on a permanent failure. In this process by
    default; with `via_worker`, as a delivery job that a running worker takes (and retries)."""
    name = canonical_name(destination)
    if name not in config.destinations:
        raise KeyError(name)
    event = sample_event(severity, event_id=f"evt_test_{uuid.uuid4().hex[:16]}")
    if via_worker:
        return await _test_via_worker(redis, name, event, timeout)
    settings = config.destinations[name]
    async with aiohttp.ClientSession() as session:
        nctx = NotifierContext(session, RateSchedule(redis), SlackThreads(redis))
        notifier = notifiers.REGISTRY[settings.kind](name, settings, nctx)
        notifiers.bind_routes([notifier], config.routes)
        try:
            result = await deliver_once(_telling(redis, config), notifier, name, event.to_json(), 1)
        finally:
            await notifier.close()
    attempts = await delivery_attempts(redis, event.id)
    return TestOutcome(event.id, result.delivered, result.dead_lettered, result.retry_in,
                       attempts[-1] if attempts else None)
