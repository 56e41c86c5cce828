"""The routing facts of the last 24 h of events (`sh:recent`, a stream), for a silence's
preview: the outbox is trimmed once its entries are dispatched, so the dispatcher appends
each event's facts here (model.silences.RoutingFacts), one entry per dispatcher read holding
the array of its events' facts (a preview reads 24 h of a busy install in a few hundred
entries rather than one per event). Entries older than `KEEP` are trimmed
by MINID on every append, by Redis's clock (the ids are the server's, so a worker's clock does
not matter), and the stream never holds more than about `MAX_ENTRIES`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from model.silences import RoutingFacts
from store import keys

__all__ = ["KEEP", "MAX_ENTRIES", "RecentEvents"]

log = logging.getLogger("statehook.recent")

KEEP = 86400.0
"""Seconds of events kept for previews."""
MAX_ENTRIES = 200_000
"""A bound on the stream's entries (dispatcher reads) whatever the rate."""
_CHUNK = 500
_APPEND = (Path(__file__).parent / "lua" / "append_recent.lua").read_text()


class RecentEvents:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._append = redis.register_script(_APPEND)

    async def append(self, facts: Sequence[RoutingFacts]) -> None:
        """One round trip for a dispatcher's read: the facts, and the trim of what is older than KEEP."""
        if facts:
            await self._append(keys=[keys.RECENT],
                               args=[int(KEEP * 1000), MAX_ENTRIES, orjson.dumps([f.as_dict() for f in facts])])

    async def since(self, seconds: float = KEEP) -> AsyncIterator[RoutingFacts]:
        """The facts of the events appended in the last `seconds` by Redis's clock (the
        stream's ids are its), oldest first; one that cannot be read is skipped."""
        secs, micros = await self.redis.time()
        start = f"{max(0, int(secs) * 1000 + int(micros) // 1000 - int(seconds * 1000))}-0"
        while True:
            entries = await self.redis.xrange(keys.RECENT, min=start, count=_CHUNK)
            for entry_id, fields in entries:
                try:
                    found = [RoutingFacts.from_dict(d) for d in orjson.loads(fields[b"f"])]
                except (KeyError, ValueError, TypeError):
                    log.warning("recent events %s in %s cannot be read: skipped", entry_id, keys.RECENT)
                    continue
                for facts in found:
                    yield facts
            if len(entries) < _CHUNK:
                return
            last = entries[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else str(last))
