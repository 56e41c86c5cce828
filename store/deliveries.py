"""What delivering leaves in Redis, read and written here only: the attempt records of each
event (`sh:att:{event}`, the last ATTEMPTS_KEPT for ATTEMPTS_TTL), the delivery stats, the
dead letters (`sh:dlq`), the destinations disabled by a 410 Gone or by hand (`sh:disabled`)
and the delivery marks that keep a batch from sending an event twice (`sh:dm:{event}:{dest}`).
The worker's delivery jobs write them; the CLI and the API read and operate them.

A dead letter, and a destination disabled or enabled again, is also told as an operational
event (`statehook.delivery.dead_lettered`, `statehook.destination.disabled` / `.enabled`,
store/operational.py), whoever caused it: a delivery job, the CLI or the API. The dead
letter of an operational event is not: that would be an event about an event about ...,
round and round between two destinations that are both down."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from core.events import utc_iso
from model.events import Severity
from model.operational import (
    DELIVERY_DEAD_LETTERED,
    DESTINATION_DISABLED,
    DESTINATION_ENABLED,
    Subject,
    is_operational,
)
from store import keys
from store.history import note_entry
from store.operational import OperationalEvents
from store.scripts import register
from store.stats import DeliveryOutcome, StatsRecorder
from store.timeline import TimelineWriter

__all__ = ["ATTEMPTS_KEPT", "ATTEMPTS_TTL", "Attempt", "DeadLetter", "Deliveries", "DeliveryRecords", "ReplayEntry"]

log = logging.getLogger("statehook.deliveries")

ATTEMPTS_KEPT = 20
REPLAY_PAGE = 500
"""Dead letters `replay --all` reads a round trip."""
COUNT_PAGE = 500
"""Dead letters read a round trip when their counts are rebuilt from the stream."""
ATTEMPTS_TTL = 7 * 86400
_CLAIM_MARKS = (Path(__file__).parent / "lua" / "claim_delivery_marks.lua").read_text()


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt's record."""

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


@dataclass(slots=True)
class DeliveryRecords:
    """Attempt records and stats of one or many attempts, gathered in memory and written in one
    round trip (`Deliveries.write`): a delivery batch records its hundreds of attempts at once,
    not three commands each."""

    attempts: list[tuple[str, bytes]] = field(default_factory=list)
    stats: StatsRecorder = field(default_factory=StatsRecorder)

    trim: bool = True
    """False for first attempts only: their lists cannot be longer than ATTEMPTS_KEPT"""

    def add(self, event_id: str, attempt: Attempt, outcome: DeliveryOutcome, seconds: float) -> None:
        self.attempts.append((event_id, attempt.to_json()))
        self.stats.delivery(attempt.destination, outcome, seconds)

    def skipped(self, destination: str) -> None:
        """A delivery dead-lettered without an attempt (its destination unknown or disabled)."""
        self.stats.delivery(destination, "dead")

    def held(self, destination: str) -> None:
        """A delivery held while its destination's circuit is not closed."""
        self.stats.held(destination)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as `statehook dlq ls` shows it."""

    id: str
    event_id: str
    type: str
    resource: str
    destination: str
    reason: str
    status: int | None
    attempts: int
    at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ReplayEntry:
    """A dead letter to deliver again: its entry, and the event as it was stored."""

    entry_id: str
    event_id: str
    event_json: bytes
    destination: str
    rkey: str | None = None
    """the event's resource, whose timeline notes the replay (None: the event names none)"""
    seq: int = 0


def _replay_entry(entry_id: str, fields: dict[bytes, bytes]) -> ReplayEntry | None:
    try:
        event_json = fields[b"event"]
        event = orjson.loads(event_json)
        resource = event.get("resource")
        rkey = resource.get("key") if isinstance(resource, dict) else None
        seq = event.get("seq")
        return ReplayEntry(entry_id, str(event["id"]), event_json, fields[b"destination"].decode(),
                           rkey if isinstance(rkey, str) else None, seq if isinstance(seq, int) else 0)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # orjson's error is a ValueError
        log.warning("dead letter %s[%s] is unreadable (%s): left in the stream", keys.DLQ, entry_id,
                    type(exc).__name__)
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Deliveries:
    def __init__(self, redis: aioredis.Redis, operational: OperationalEvents | None = None) -> None:
        """`operational` tells the dead letters and the disables and enables (with the
        config's `worker.history_length`); without it, those raise."""
        self.redis = redis
        self._operational = operational
        self._remove = register(redis, "remove_dead_letters")
        self._timeline = TimelineWriter(redis)

    @property
    def operational(self) -> OperationalEvents:
        if self._operational is None:
            raise RuntimeError("Deliveries made without OperationalEvents cannot tell a dead letter, "
                               "a disable or an enable")
        return self._operational

    # -- attempts and stats ----------------------------------------------------------------

    async def write(self, records: DeliveryRecords) -> None:
        """`records`' attempts and stats, in one round trip; then `records` is empty."""
        counts = records.stats.drain()
        if not records.attempts and not counts:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id, record in records.attempts:
                pipe.lpush(keys.attempts(event_id), record)
            for event_id in {eid for eid, _ in records.attempts}:
                if records.trim:
                    pipe.ltrim(keys.attempts(event_id), 0, ATTEMPTS_KEPT - 1)
                pipe.expire(keys.attempts(event_id), ATTEMPTS_TTL)
            for name, n in counts.items():
                pipe.hincrby(keys.STATS, name, n)
            await pipe.execute()
        records.attempts.clear()

    async def attempts(self, event_id: str) -> list[dict[str, Any]]:
        """Every recorded attempt to deliver `event_id` (the last ATTEMPTS_KEPT), oldest first,
        as stored (`Attempt.to_json`)."""
        raw = await self.redis.lrange(keys.attempts(event_id), 0, -1)  # type: ignore[misc]
        return [orjson.loads(r) for r in reversed(raw)]

    async def stored_attempts(self, event_ids: Sequence[str]) -> list[list[bytes]]:
        """The attempt records of each of `event_ids`, newest first, as stored (one round trip)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.lrange(keys.attempts(event_id), 0, -1)
            return list(await pipe.execute())

    async def gauges(self) -> tuple[int, int]:
        """(dead letters, destinations disabled), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(keys.DLQ)
            pipe.hlen(keys.DISABLED)
            dead, disabled = await pipe.execute()
        return int(dead), int(disabled)

    # -- dead letters ----------------------------------------------------------------------

    async def dead_letter(self, event_json: bytes, destination: str, reason: str, status: int | None,
                          attempts: int) -> str:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.DLQ, {"event": event_json, "destination": destination, "reason": reason,
                                 "status": "" if status is None else str(status), "attempts": str(attempts),
                                 "at": utc_iso(time.time())})
            pipe.hincrby(keys.DLQ_COUNTS, destination, 1)
            entry_id, _ = await pipe.execute()
        await self._tell_dead_letter(event_json, destination, reason, status, attempts)
        return _text(entry_id)

    async def _tell_dead_letter(self, event_json: bytes, destination: str, reason: str, status: int | None,
                                attempts: int) -> None:
        """`statehook.delivery.dead_lettered`, at most one per destination within the
        operational throttle (`statehook dlq ls` lists them all)."""
        try:
            event = orjson.loads(event_json)
            event_id, event_type = str(event["id"]), str(event["type"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            event_id, event_type = "", ""
        if is_operational(event_type):
            return
        await self.operational.emit(
            DELIVERY_DEAD_LETTERED, Subject("destination", destination), severity=Severity.WARNING,
            summary=f"a delivery to {destination} was dead-lettered: {reason}",
            data={"destination": destination, "reason": reason, "event_id": event_id, "event_type": event_type,
                  "status": status, "attempts": attempts})

    async def replay_entries(self, entry_ids: Sequence[str] | None) -> AsyncIterator[ReplayEntry]:
        """The dead letters `entry_ids` that exist (all of them if None, read REPLAY_PAGE at a
        time), oldest first. An entry that cannot be read is logged with its id and left in
        the stream (`statehook dlq ls` counts it as unreadable)."""
        if entry_ids is not None:
            for entry_id in entry_ids:
                for raw_id, fields in await self.redis.xrange(keys.DLQ, min=entry_id, max=entry_id):
                    if (entry := _replay_entry(_text(raw_id), fields)) is not None:
                        yield entry
            return
        start = "-"
        while page := await self.redis.xrange(keys.DLQ, min=start, count=REPLAY_PAGE):
            for raw_id, fields in page:
                if (entry := _replay_entry(_text(raw_id), fields)) is not None:
                    yield entry
            start = "(" + _text(page[-1][0])

    async def remove_dead_letter(self, entry_id: str) -> None:
        await self._remove(keys=[keys.DLQ, keys.DLQ_COUNTS], args=[entry_id])

    async def dead_letter_counts(self) -> dict[str, int]:
        """Dead letters per destination, from their counts (one round trip); counted again
        from the stream, and the counts rewritten, when they do not add up to its length
        (a dataset written before the counts were kept)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.DLQ_COUNTS)
            pipe.xlen(keys.DLQ)
            raw, length = await pipe.execute()
        counts = {_text(k): int(v) for k, v in raw.items()}
        if sum(counts.values()) == int(length):
            return counts
        counts = {}
        start = "-"
        while entries := await self.redis.xrange(keys.DLQ, min=start, count=COUNT_PAGE):
            for _, fields in entries:
                name = _text(fields.get(b"destination", b""))
                counts[name] = counts.get(name, 0) + 1
            start = "(" + _text(entries[-1][0])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.DLQ_COUNTS)
            if counts:
                pipe.hset(keys.DLQ_COUNTS, mapping=counts)
            await pipe.execute()
        return counts

    async def replayed(self, entry: ReplayEntry, *, history_length: int, noted: bool = True,
                       at: float | None = None) -> None:
        """`entry` was queued for delivery again: it leaves the dead letters, and, when
        `noted` (this replay queued it, not another one at the same moment), its resource's
        timeline gets a `replayed` note naming the destination."""
        async with self.redis.pipeline(transaction=False) as pipe:
            await self._remove(keys=[keys.DLQ, keys.DLQ_COUNTS], args=[entry.entry_id], client=pipe)
            if noted and entry.rkey is not None:
                note = note_entry("replayed", time.time() if at is None else at,
                                  f"dead letter replayed to {entry.destination}", seq=entry.seq,
                                  event_id=entry.event_id,
                                  data={"destination": entry.destination, "dead_letter": entry.entry_id})
                await self._timeline.queue(pipe, entry.rkey, note, history_length)
            await pipe.execute()

    async def purge_dead_letters(self) -> int:
        """Delete every dead letter; returns how many there were."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xlen(keys.DLQ)
            pipe.delete(keys.DLQ, keys.DLQ_COUNTS)
            n, _ = await pipe.execute()
        return int(n)

    # -- disabled destinations -------------------------------------------------------------

    async def disabled_reason(self, destination: str) -> str | None:
        raw = await self.redis.hget(keys.DISABLED, destination)  # type: ignore[misc]
        return raw.decode() if raw else None

    async def disabled(self) -> dict[str, str]:
        """Every disabled destination and why."""
        return {k.decode(): v.decode() for k, v in (await self.redis.hgetall(keys.DISABLED)).items()}  # type: ignore[misc]

    async def is_disabled(self, destination: str) -> bool:
        return bool(await self.redis.hexists(keys.DISABLED, destination))  # type: ignore[misc]

    async def disable(self, destination: str, reason: str) -> None:
        """Disables `destination` (its deliveries are dead-lettered until it is enabled); the
        first time, `statehook.destination.disabled` is told (a 410 of many deliveries at once
        tells it once)."""
        if await self.redis.hset(keys.DISABLED, destination, reason):  # type: ignore[misc]
            await self.operational.emit(
                DESTINATION_DISABLED, Subject("destination", destination), severity=Severity.CRITICAL,
                summary=f"destination {destination} disabled: {reason}",
                data={"destination": destination, "reason": reason}, throttle=0)

    async def enable(self, destination: str) -> bool:
        """True if it was disabled (and then `statehook.destination.enabled` is told)."""
        if not await self.redis.hdel(keys.DISABLED, destination):  # type: ignore[misc]
            return False
        await self.operational.emit(
            DESTINATION_ENABLED, Subject("destination", destination), severity=Severity.INFO,
            summary=f"destination {destination} enabled again", data={"destination": destination}, throttle=0)
        return True

    # -- delivery marks --------------------------------------------------------------------

    async def claim_marks(self, event_ids: Sequence[str], destination: str, owner: str, lease_s: int) -> list[bool]:
        """Leases the marks of `event_ids` to `owner` (a batch job) for `lease_s`: True for each
        taken (free, or `owner`'s already), False for one done or leased by another batch."""
        if not event_ids:
            return []
        marks = [keys.delivery_mark(eid, destination) for eid in event_ids]
        claim = self.redis.register_script(_CLAIM_MARKS)
        return [bool(r) for r in await claim(keys=marks, args=[owner, lease_s])]

    async def settle_marks(self, destination: str, done: Sequence[str], released: Sequence[str], keep_s: int) -> None:
        """`done`: handed over for good (sent, dead-lettered or given a job of their own), kept
        as "done" for `keep_s`; `released`: claimed but not handed over (a cancelled batch),
        freed so that a re-run sends them."""
        if not done and not released:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for eid in done:
                pipe.set(keys.delivery_mark(eid, destination), "done", ex=keep_s)
            if released:
                pipe.delete(*(keys.delivery_mark(eid, destination) for eid in released))
            await pipe.execute()
