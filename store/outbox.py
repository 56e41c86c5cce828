"""The outbox: the stream of events the poller commits (`sh:outbox`, field `e` = event JSON)
and its consumer group (`dispatch`), read by the dispatchers (tasks/dispatch.py); plus the
route throttles the dispatcher keeps. The only code that reads, claims, acknowledges or
trims the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from store import keys
from store.stats import StatsRecorder

__all__ = ["DEAD_CONSUMER_IDLE_MS", "Outbox", "OutboxEntry", "is_missing_group"]

DEAD_CONSUMER_IDLE_MS = 10 * 60 * 1000
"""A consumer of the outbox that holds nothing and read nothing for this long is gone."""
_FIELD = b"e"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One entry read from the outbox; `event` is None for an entry without one (written by
    something else): it is acknowledged and skipped."""

    entry_id: str
    event: bytes | None


def is_missing_group(exc: BaseException) -> bool:
    """Whether `exc` says the consumer group is gone (Redis lost its data)."""
    return isinstance(exc, ResponseError) and "NOGROUP" in str(exc)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(raw: Sequence[Any]) -> list[OutboxEntry]:
    return [OutboxEntry(_text(entry_id), fields.get(_FIELD)) for entry_id, fields in raw]


class Outbox:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def ensure_group(self) -> None:
        """The consumer group (and the stream), made if missing."""
        try:
            await self.redis.xgroup_create(keys.OUTBOX, keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, consumer: str, count: int, block_ms: int | None = None) -> list[OutboxEntry]:
        """Entries no consumer of the group has read yet, now `consumer`'s (until acknowledged)."""
        response = await self.redis.xreadgroup(keys.GROUP, consumer, {keys.OUTBOX: ">"}, count=count, block=block_ms)
        return [entry for _stream, raw in response or () for entry in _entries(raw)]

    async def reclaim(self, consumer: str, idle_ms: int, start: str, count: int) -> tuple[str, list[OutboxEntry]]:
        """One page of the entries other consumers read but left unacknowledged for `idle_ms`,
        now `consumer`'s; returns where the next page starts ("0-0": no more) and the entries
        that still exist."""
        result = await self.redis.xautoclaim(keys.OUTBOX, keys.GROUP, consumer, idle_ms, start_id=start, count=count)
        return _text(result[0]), _entries([e for e in result[1] if e and e[1]])

    async def entries(self, after: str | None, limit: int) -> list[OutboxEntry]:
        """Entries after `after` (exclusive), oldest first; without it, the latest `limit`. A
        plain read: no consumer group, nothing claimed."""
        if after is None:
            return _entries(list(reversed(await self.redis.xrevrange(keys.OUTBOX, count=limit))))
        return _entries(await self.redis.xrange(keys.OUTBOX, min=f"({after}", count=limit))

    async def ack(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self.redis.xack(keys.OUTBOX, keys.GROUP, *entry_ids)

    async def count_corrupt(self, n: int) -> None:
        """Entries that were not events, in the stats."""
        recorder = StatsRecorder()
        recorder.corrupt(n)
        for name, value in recorder.drain().items():
            await self.redis.hincrby(keys.STATS, name, value)  # type: ignore[misc]

    async def first_in_window(self, route: str, rkey: str, event_type: str, event_id: str, window_s: float) -> bool:
        """Whether this is the first event of its type and resource through `route` (its key)
        within `window_s`: the route's throttle. The event that opened the window passes for
        every destination of the route (and when its read is handled again)."""
        key = keys.throttle(route, rkey, event_type)
        before = await self.redis.set(key, event_id, nx=True, px=int(window_s * 1000), get=True)
        return before is None or (before.decode() if isinstance(before, bytes) else before) == event_id

    async def forget_dead_consumers(self, keep: str, idle_ms: int = DEAD_CONSUMER_IDLE_MS) -> int:
        """Remove the group's consumers but `keep` that hold nothing and were idle for
        `idle_ms` (workers that died or stopped; each start names a new one). Returns how many."""
        try:
            consumers = await self.redis.xinfo_consumers(keys.OUTBOX, keys.GROUP)
        except ResponseError:
            return 0
        removed = 0
        for c in consumers:
            name = _text(c["name"])
            idle, pending = int(c.get("idle") or 0), int(c.get("pending") or 0)
            if name != keep and not pending and idle > idle_ms:
                await self.redis.xgroup_delconsumer(keys.OUTBOX, keys.GROUP, name)
                removed += 1
        return removed

    async def trim(self) -> None:
        """Drop entries every consumer has acknowledged; keep everything pending."""
        try:
            pending = await self.redis.xpending(keys.OUTBOX, keys.GROUP)
            groups = await self.redis.xinfo_groups(keys.OUTBOX)
        except ResponseError:
            return
        last = next((g["last-delivered-id"] for g in groups if g["name"] in (keys.GROUP, keys.GROUP.encode())), None)
        if last is None:
            return
        floor = pending["min"] if pending and pending.get("pending") else last
        if isinstance(floor, bytes):
            floor = floor.decode()
        if pending and pending.get("pending"):
            await self.redis.xtrim(keys.OUTBOX, minid=floor, approximate=True)
        else:
            # everything up to `last` is acknowledged: keep only what follows it
            ms, _, seq = str(floor).partition("-")
            await self.redis.xtrim(keys.OUTBOX, minid=f"{ms}-{int(seq or 0) + 1}", approximate=True)

    async def backlog(self, *, limit: int = 10_000) -> int:
        """Entries not yet handed on: read by a dispatcher and not acknowledged, plus those no
        dispatcher has read (counted up to `limit`). Counted from the stream itself: XINFO's
        `lag` is an estimate that a failover or a trim can leave far from the truth."""
        try:
            groups = await self.redis.xinfo_groups(keys.OUTBOX)
        except ResponseError:
            return 0
        for g in groups:
            if g["name"] in (keys.GROUP, keys.GROUP.encode()):
                last = _text(g["last-delivered-id"])
                unread = await self.redis.xrange(keys.OUTBOX, min=f"({last}", max="+", count=limit)
                return int(g.get("pending") or 0) + len(unread)
        return 0

