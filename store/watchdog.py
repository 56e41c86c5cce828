"""What the overdue check reads and marks (tasks/watchdog.py): the watches claimed and not yet
polled (`sh:late`, kept by the scheduler's claim and the poll's commit, store/commit.py) and
those reported overdue (`sh:overdue`). Every read is bounded: a range with a LIMIT over the
late set, the members of the (bounded) overdue set, and the metas of what they name."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from store import keys
from store.records import CorruptRecord, decode_meta

__all__ = ["LateWatches"]


class LateWatches:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def read(self, until: float, limit: int) -> tuple[list[tuple[str, float]], set[str]]:
        """Up to `limit` watches claimed at a due time no later than `until` and not polled
        since (the oldest first, with that due time), and the watches marked overdue."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(keys.LATE, "-inf", until, start=0, num=limit, withscores=True)
            pipe.smembers(keys.OVERDUE)
            late, marked = await pipe.execute()
        return [(k.decode(), float(s)) for k, s in late], {m.decode() for m in marked}

    async def intervals(self, rkeys: Sequence[str]) -> dict[str, float]:
        """The interval of each watch of `rkeys` still watched (a removed or unreadable one is left out)."""
        if not rkeys:
            return {}
        raw = await self.redis.hmget(keys.META, list(rkeys))  # type: ignore[misc]
        out = {}
        for rkey, value in zip(rkeys, raw, strict=True):
            try:
                meta = decode_meta(value, f"{keys.META}[{rkey}]")
            except CorruptRecord:
                continue
            if meta is not None:
                out[rkey] = meta.interval
        return out

    async def late_since(self, rkeys: Sequence[str]) -> list[float | None]:
        """For each of `rkeys`: the due time it is late from, None when it was polled since."""
        if not rkeys:
            return []
        return [None if s is None else float(s) for s in await self.redis.zmscore(keys.LATE, list(rkeys))]

    async def mark(self, rkeys: Sequence[str]) -> None:
        if rkeys:
            await self.redis.sadd(keys.OVERDUE, *rkeys)  # type: ignore[misc]

    async def unmark(self, rkeys: Sequence[str]) -> None:
        if rkeys:
            await self.redis.srem(keys.OVERDUE, *rkeys)  # type: ignore[misc]
