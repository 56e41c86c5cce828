"""What the dispatcher writes for the deliveries it muted (a silence or a maintenance window):
a `silenced` note in each resource's timeline and the `silenced:{destination}` stats, all of
one dispatcher read in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from store import keys
from store.history import note_entry
from store.stats import StatsRecorder
from store.timeline import TimelineWriter

__all__ = ["MutedDelivery", "MutedLog"]


@dataclass(frozen=True, slots=True)
class MutedDelivery:
    rkey: str
    seq: int
    event_id: str
    destination: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    """{"silence": id, "destination": d} or {"window": name, "destination": d}"""


class MutedLog:
    def __init__(self, redis: aioredis.Redis, *, history_length: int = 50) -> None:
        self.redis = redis
        self._timeline = TimelineWriter(redis)
        self.history_length = history_length

    async def record(self, muted: Sequence[MutedDelivery], at: float) -> None:
        if not muted:
            return
        stats = StatsRecorder()
        async with self.redis.pipeline(transaction=False) as pipe:
            for m in muted:
                stats.silenced(m.destination)
                entry = note_entry("silenced", at, m.summary, seq=m.seq, event_id=m.event_id, data=m.data)
                await self._timeline.queue(pipe, m.rkey, entry, self.history_length)
            for name, value in stats.drain().items():
                pipe.hincrby(keys.STATS, name, value)
            await pipe.execute()
