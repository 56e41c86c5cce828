"""The config file's watches at a worker's start (store/config_watches.py): registered, the
ones that left the file forgotten, without reading every watch once the set names them."""

from __future__ import annotations

import redis.asyncio as aioredis

from store import keys
from store.config_watches import ConfigWatches
from store.snapshots import Store, WatchMeta

FILE = WatchMeta(interval=60.0, source="config")
API = WatchMeta(interval=60.0)


async def _hscans(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_hscan", {}).get("calls", 0))


async def test_a_dataset_from_before_the_set_is_read_once_then_the_set_is_used(redis: aioredis.Redis) -> None:
    store = Store(redis)
    await store.add_watches([("rev:order:A", FILE), ("rev:order:B", FILE), ("rev:order:C", API)])
    synced = ConfigWatches(store)

    assert await synced.sync({"rev:order:A": FILE}) == (0, 1)  # B left the file; C is the API's
    assert {k.decode() for k in await redis.hkeys(keys.META)} == {"rev:order:A", "rev:order:C"}  # type: ignore[misc]
    assert await redis.smembers(keys.CONFIG_WATCHES) == {b"", b"rev:order:A"}  # type: ignore[misc]

    # a watch of the file's source that the set does not name is not looked for again
    await store.add_watches([("rev:order:D", FILE)])
    scans = await _hscans(redis)
    assert await synced.sync({"rev:order:E": FILE}) == (1, 1)  # A forgotten, E added
    assert await _hscans(redis) == scans
    assert {k.decode() for k in await redis.hkeys(keys.META)} == {"rev:order:C", "rev:order:D", "rev:order:E"}  # type: ignore[misc]


async def test_a_file_watch_taken_over_by_the_api_is_kept(redis: aioredis.Redis) -> None:
    store = Store(redis)
    synced = ConfigWatches(store)
    await synced.sync({"rev:order:A": FILE, "rev:order:B": FILE})
    await store.add_watches([("rev:order:B", API)])  # the API watches it now
    assert await synced.sync({"rev:order:A": FILE}) == (0, 0)
    assert await redis.hexists(keys.META, "rev:order:B")  # type: ignore[misc]
    assert await redis.smembers(keys.CONFIG_WATCHES) == {b"", b"rev:order:A"}  # type: ignore[misc]


async def test_a_file_without_watches_is_remembered_too(redis: aioredis.Redis) -> None:
    store = Store(redis)
    await store.add_watches([(f"rev:order:{i}", API) for i in range(3000)])
    synced = ConfigWatches(store)
    assert await synced.sync({}) == (0, 0)
    scans = await _hscans(redis)
    assert scans > 0
    assert await synced.sync({}) == (0, 0)
    assert await _hscans(redis) == scans
    assert await redis.hlen(keys.META) == 3000  # type: ignore[misc]
