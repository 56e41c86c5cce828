"""Emitting statehook's own operational events (model/operational.py) into the outbox, where
the dispatcher routes them like any other event. Each has its own throttle (one per type
and subject per window), and a condition (a provider unhealthy, a watch overdue, a
destination's circuit open) reports only its transitions: `enter` emits when the condition
begins, `leave` when it ends, however many workers see it."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from core.operational import operational_event
from model.events import Event, Severity
from model.operational import Subject
from store import keys
from store.history import history_entry
from store.stats import StatsRecorder
from store.timeline import TimelineWriter

__all__ = ["DEFAULT_THROTTLE", "OperationalEvents"]

log = logging.getLogger("statehook.operational")

DEFAULT_THROTTLE = 300.0
"""Seconds: at most one operational event of a type and subject within this."""
_FIELD = b"e"


class OperationalEvents:
    def __init__(self, redis: aioredis.Redis, *, history_length: int, throttle: float = DEFAULT_THROTTLE,
                 clock: Any = time.time) -> None:
        """`history_length`: the config's `worker.history_length`, the entries a subject's
        timeline keeps (no default: a destination's timeline cut to another length than the
        resources' loses entries for good)."""
        self.redis = redis
        self._timeline = TimelineWriter(redis)
        self.throttle = throttle
        self.history_length = history_length
        self.clock = clock

    async def emit(self, event_type: str, subject: Subject, *, severity: Severity, summary: str,
                   data: dict[str, Any] | None = None, throttle: float | None = None) -> Event | None:
        """Append one operational event to the outbox (and the subject's timeline). None when
        the throttle holds it back (`throttle=0`: never)."""
        window = self.throttle if throttle is None else throttle
        if window > 0 and not await self.redis.set(
                keys.operational_throttle(event_type, subject.key), b"1", nx=True, px=int(window * 1000)):
            return None
        seq = int(await self.redis.hincrby(keys.OPERATIONAL_SEQ, subject.key, 1))  # type: ignore[misc]
        epoch = await self.redis.get(keys.EPOCH)
        event = operational_event(event_type, subject, severity=severity, summary=summary, data=data or {},
                                  seq=seq, now=self.clock(), epoch=epoch.decode() if epoch else "")
        recorder = StatsRecorder()
        recorder.event(event.provider, event.type)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.OUTBOX, {_FIELD: event.to_json()})
            await self._timeline.queue(pipe, subject.key, history_entry(subject.key, event), self.history_length)
            for name, n in recorder.drain().items():
                pipe.hincrby(keys.STATS, name, n)
            await pipe.execute()
        log.info("operational event %s about %s", event.type, subject.key)
        return event

    async def enter(self, condition: str, subject: Subject, event_type: str, *, severity: Severity, summary: str,
                    data: dict[str, Any] | None = None) -> Event | None:
        """`condition` began for `subject`: the event when it was not already on (by any worker)."""
        since = orjson.dumps({"since": self.clock(), **(data or {})}).decode()
        if not await self.redis.hsetnx(keys.OPERATIONAL_CONDITIONS, _field(condition, subject), since):  # type: ignore[misc]
            return None
        return await self.emit(event_type, subject, severity=severity, summary=summary, data=data, throttle=0)

    async def leave(self, condition: str, subject: Subject, event_type: str, *, summary: str,
                    data: dict[str, Any] | None = None) -> Event | None:
        """`condition` ended for `subject`: the event when it was on."""
        if not await self.redis.hdel(keys.OPERATIONAL_CONDITIONS, _field(condition, subject)):  # type: ignore[misc]
            return None
        return await self.emit(event_type, subject, severity=Severity.INFO, summary=summary, data=data, throttle=0)

    async def conditions(self) -> dict[str, dict[str, Any]]:
        """Every condition now on: "condition|subject key" -> what `enter` recorded."""
        raw = await self.redis.hgetall(keys.OPERATIONAL_CONDITIONS)  # type: ignore[misc]
        out = {}
        for k, v in raw.items():
            try:
                out[k.decode()] = orjson.loads(v)
            except orjson.JSONDecodeError:
                continue
        return out


def _field(condition: str, subject: Subject) -> str:
    return f"{condition}|{subject.key}"
