"""A resource's timeline, where it is kept: inside the resource's record (store/record_frame.py),
or, for one written before the timeline moved there, in its old list until the next entry.

Writing outside the commit script (which writes the committed events): statehook's own
operational events and the notes about an event (store/history.py spells both entries), by
store/lua/timeline_push.lua, which keeps the timeline to its length as the commit does.
Reading: the record and the old list together, one round trip for any number of resources.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from store import keys, record_frame, scripts
from store.records import CorruptRecord

__all__ = ["TimelineWriter", "read_timelines", "timeline_of"]


class TimelineWriter:
    """Registers its script at its first entry: the store objects that hold one are built
    per delivery job, and most never write a note."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._script: AsyncScript | None = None

    @property
    def _push(self) -> AsyncScript:
        if self._script is None:
            self._script = scripts.register(self.redis, "timeline_push")
        return self._script

    async def queue(self, pipe: Pipeline, rkey: str, entry: bytes, history_length: int) -> None:
        """Queue `entry` at the head of `rkey`'s timeline on `pipe`, the timeline kept to
        `history_length` entries (0: no timeline, nothing queued)."""
        if history_length > 0:
            await self._push(keys=[keys.snapshot(rkey), keys.old_timeline(rkey)],
                             args=[entry, history_length], client=pipe)


def timeline_of(rkey: str, raw: bytes | None, old: Sequence[bytes] | ResponseError, limit: int) -> list[bytes]:
    """The `limit` newest entries of `rkey`'s timeline, from its record as read and the reply
    to the LRANGE of its old list (read in the same round trip). Raises CorruptRecord for a
    record that is not one, and for an old list that is not a list (WRONGTYPE) where the
    record does not hold the timeline itself."""
    try:
        record = record_frame.split(raw) if raw is not None else None
    except ValueError as exc:
        raise CorruptRecord(keys.snapshot(rkey), str(exc)) from None
    if record is not None and record.framed:
        return record.entries[:limit]
    if isinstance(old, ResponseError):
        raise CorruptRecord(keys.old_timeline(rkey), "not a timeline list")
    return list(old[:limit])


async def read_timelines(redis: aioredis.Redis, rkeys: Sequence[str], limit: int) -> list[list[bytes] | CorruptRecord]:
    """The `limit` newest entries of each of `rkeys`' timelines, newest first; a resource whose
    timeline cannot be read (`timeline_of`) gets its CorruptRecord instead."""
    if not rkeys:
        return []
    async with redis.pipeline(transaction=True) as pipe:  # the record and its old list as of one moment
        pipe.mget([keys.snapshot(r) for r in rkeys])
        for rkey in rkeys:
            pipe.lrange(keys.old_timeline(rkey), 0, limit - 1)
        raws, *olds = await pipe.execute(raise_on_error=False)
    if isinstance(raws, Exception):
        raise raws
    out: list[list[bytes] | CorruptRecord] = []
    for rkey, raw, old in zip(rkeys, raws, olds, strict=True):
        try:
            out.append(timeline_of(rkey, raw, old, limit))
        except CorruptRecord as exc:
            out.append(exc)
    return out
