"""Timeline notes: what is written to a resource's timeline besides its committed events
(the commit script writes those). Entries are spelled by store/history.py."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from store import keys
from store.history import note_entry

__all__ = ["Timeline"]


class Timeline:
    def __init__(self, redis: aioredis.Redis, *, history_length: int = 50) -> None:
        self.redis = redis
        self.history_length = history_length

    async def note(self, rkey: str, kind: str, summary: str, *, at: float, seq: int = 0, event_id: str = "",
                   data: dict[str, Any] | None = None) -> None:
        """Add a note (`store.history.note_entry`) at the head of `rkey`'s timeline, kept to
        `history_length` entries like the events'."""
        if self.history_length <= 0:
            return
        entry = note_entry(kind, at, summary, seq=seq, event_id=event_id, data=data or {})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(keys.history(rkey), entry)
            pipe.ltrim(keys.history(rkey), 0, self.history_length - 1)
            await pipe.execute()
