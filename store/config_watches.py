"""The config file's watches, found without reading every watch.

Every worker registers the file's watches when it starts (and when the dataset is taken
again) and forgets those that left the file. Which watches came from the file was found by
reading all of `sh:meta` (HGETALL): at a million watches that is ~100 MB through the client
and ~180 MB more of the worker's peak RSS, for a file that may name a few. `sh:watches:config`
(a SET) names them instead: the file's rkeys as of the last sync, and "" (Redis stores no
empty set, and the marker tells a dataset kept this way from one written before it). A
dataset without the set is read once by HSCAN, a thousand watches a round trip, keeping only
the file's own; the set is written then.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis

from store import keys
from store.records import CorruptRecord, WatchMeta, decode_meta
from store.snapshots import Store

__all__ = ["ConfigWatches"]

MARKER = ""
"""A member of the set that no rkey can be: the set exists even when the file names no watch."""
SOURCE = "config"


class ConfigWatches:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.redis: aioredis.Redis = store.redis

    async def current(self) -> set[str]:
        """The rkeys the config file registered at its last sync."""
        members = await self.redis.smembers(keys.CONFIG_WATCHES)  # type: ignore[misc]
        if members:
            return {m.decode(errors="replace") for m in members} - {MARKER}
        return await self._scan()

    async def _scan(self) -> set[str]:
        """The watches whose meta says they came from the file, read by HSCAN (a dataset
        written before the set existed). Unreadable metas are left to the polls that count them."""
        found: set[str] = set()
        cursor = 0
        while True:
            cursor, page = await self.redis.hscan(keys.META, cursor, count=1000)
            found.update(k.decode(errors="replace") for k, v in page.items() if _from_file(v))
            if cursor == 0:
                return found

    async def sync(self, wanted: Mapping[str, WatchMeta]) -> tuple[int, int]:
        """Register `wanted` (the file's watches now) and forget the file's watches that are
        no longer in it, unless another source has watched them since (the API added one
        again). Returns (added, removed)."""
        stale = sorted((await self.current()) - wanted.keys())
        if stale:
            metas = await self.redis.hmget(keys.META, stale)  # type: ignore[misc]
            stale = [k for k, raw in zip(stale, metas, strict=True) if _from_file(raw)]
        added = await self.store.add_watches(wanted.items())
        removed = await self.store.remove_watches(stale)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.CONFIG_WATCHES)
            pipe.sadd(keys.CONFIG_WATCHES, MARKER, *wanted)
            await pipe.execute()
        return added, removed


def _from_file(raw: bytes | None) -> bool:
    try:
        meta = decode_meta(raw)
    except CorruptRecord:
        return False
    return meta is not None and meta.source == SOURCE
