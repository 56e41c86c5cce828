"""Stalled resources against real Redis and the simulator, with the poll's clock given: one
`*.stalled` event per entry into a state, re-armed by a change, for watched ids and for the
orders of a scan, and none for resources that keep changing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from config.schema import WatchSpec
from model.resources import ResourceRef
from providers.artistree import ArtistreeProvider
from simulator.core import Simulator
from store import keys
from store.records import decode_state
from store.snapshots import WatchMeta
from tasks.poll import Poller, PollOutcome
from tests.conftest import count_parses
from tests.kit import write_config
from tests.test_polling import make_poller, scan_watch, watched
from worker.runtime import watch_rkeys

HOUR = 3600.0


async def events(redis: aioredis.Redis) -> list[dict[str, Any]]:
    return [orjson.loads(f[b"e"]) for _, f in await redis.xrange(keys.OUTBOX)]


async def stalls(redis: aioredis.Redis) -> list[dict[str, Any]]:
    return [e for e in await events(redis) if e["type"].endswith(".stalled")]


def stalling(sim: Simulator, redis: aioredis.Redis, session: aiohttp.ClientSession, **settings: Any) -> Poller:
    return make_poller(sim, redis, session, stall_after={"In Progress": "2h", "*": 0}, **settings)


async def test_a_watched_order_in_one_state_past_its_stall_time_is_stalled_once_per_entry(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = stalling(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    oid, t0 = ResourceRef.parse(rkey).id, time.time()
    assert (await poller.poll([rkey], now=t0))[PollOutcome.BASELINE] == 1
    assert (await poller.poll([rkey], now=t0 + HOUR))[PollOutcome.UNCHANGED] == 1
    assert await stalls(redis) == []
    assert (await poller.poll([rkey], now=t0 + 2 * HOUR + 5))[PollOutcome.STALLED] == 1
    (event,) = await stalls(redis)
    assert (event["type"], event["severity"], event["seq"]) == ("artistree.order.stalled", "warning", 1)
    assert event["data"]["state"] == "In Progress" and event["data"]["for"] >= 2 * HOUR
    assert event["data"]["since"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t0)))
    assert "has been In Progress for 2 h" in event["summary"]
    for later in (3 * HOUR, 30 * HOUR):  # still In Progress: nothing more
        assert (await poller.poll([rkey], now=t0 + later))[PollOutcome.UNCHANGED] == 1
    assert len(await stalls(redis)) == 1

    t1 = t0 + 31 * HOUR
    sim["artistree"].set_state(oid, "Reviewed")
    await poller.poll([rkey], now=t1)
    sim["artistree"].set_state(oid, "In Progress")
    await poller.poll([rkey], now=t1 + 60)
    assert (await poller.poll([rkey], now=t1 + 60 + 2 * HOUR))[PollOutcome.STALLED] == 1
    assert [e["type"].rsplit(".", 1)[1] for e in await events(redis)] == [
        "stalled", "state_changed", "state_changed", "stalled"]
    assert [e["seq"] for e in await events(redis)] == [1, 2, 3, 4]


async def test_a_rarely_polled_order_is_due_by_its_stall_moment(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = stalling(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1, interval=86400)
    t0 = time.time()
    await poller.poll([rkey], now=t0)
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(int(t0) + 2 * HOUR, abs=1)
    parsed = count_parses(poller.providers["artistree"])
    assert (await poller.poll([rkey], now=t0 + 2 * HOUR + 1))[PollOutcome.STALLED] == 1
    assert len(parsed) == 1  # the body was the same, and parsed because the stall was due
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(t0 + 2 * HOUR + 1 + 86400)


async def test_an_order_that_keeps_changing_state_is_never_stalled(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = stalling(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    oid, t0 = ResourceRef.parse(rkey).id, time.time()
    await poller.poll([rkey], now=t0)
    for hour in range(1, 12):
        sim["artistree"].set_state(oid, "Reviewed" if hour % 2 else "In Progress")
        await poller.poll([rkey], now=t0 + hour * 1.5 * HOUR)
    assert await stalls(redis) == []
    assert len(await events(redis)) == 11


async def test_the_orders_of_a_scan_are_stalled_once_and_a_listing_parses_only_those(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = stalling(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(150)
    scan = await scan_watch(poller)
    t0 = time.time()
    assert (await poller.poll([scan], now=t0))[PollOutcome.BASELINE] == 150
    sim["artistree"].set_state(ids[0], "Failed")
    sim["artistree"].set_state(ids[1], "Reviewed")
    await poller.poll([scan], now=t0 + HOUR)
    parsed = count_parses(poller.providers["artistree"])
    outcomes = await poller.poll([scan], now=t0 + 2 * HOUR + 5)
    assert outcomes[PollOutcome.STALLED] == 148 and outcomes[PollOutcome.UNCHANGED] == 2
    assert len(parsed) == 148  # the two that moved are not due: no parse
    assert {e["resource"]["id"] for e in await stalls(redis)} == set(ids[2:])
    parsed.clear()
    assert (await poller.poll([scan], now=t0 + 5 * HOUR))[PollOutcome.UNCHANGED] == 150
    assert parsed == [] and len(await stalls(redis)) == 148


async def test_a_preview_scan_fetches_only_the_orders_whose_stall_is_due(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = stalling(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(20)
    scan = await scan_watch(poller, preview="true")
    t0 = time.time()
    await poller.poll([scan], now=t0)
    for oid in ids[5:]:
        sim["artistree"].set_state(oid, "Reviewed")
    await poller.poll([scan], now=t0 + HOUR)  # 15 fetched (their summaries changed), 5 not
    before = sim.requests["artistree"]
    assert (await poller.poll([scan], now=t0 + 2 * HOUR + 5))[PollOutcome.STALLED] == 5
    assert sim.requests["artistree"] - before == 1 + 5  # one page, the five due
    assert {e["resource"]["id"] for e in await stalls(redis)} == set(ids[:5])


async def test_a_state_written_before_stalls_were_tracked_is_tracked_without_an_event(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = stalling(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    t0 = time.time()
    await poller.poll([rkey], now=t0)
    state = decode_state(await redis.hget(keys.STATE, rkey))  # type: ignore[misc]
    assert state is not None
    await redis.hset(keys.STATE, rkey, f"{state.digest}|{state.seq}|{int(t0)}|{state.preview}|o")  # type: ignore[misc]
    assert (await poller.poll([rkey], now=t0 + 60))[PollOutcome.UNCHANGED] == 1
    tracked = decode_state(await redis.hget(keys.STATE, rkey))  # type: ignore[misc]
    assert tracked is not None and tracked.entered_at == int(t0) and tracked.stall_at == int(t0) + 2 * HOUR
    assert await events(redis) == []
    assert (await poller.poll([rkey], now=t0 + 2 * HOUR))[PollOutcome.STALLED] == 1


async def test_stall_times_come_from_the_watch_then_the_provider(
    tmp_path: Path, redis_url: str, sim: Simulator
) -> None:
    config = write_config(
        tmp_path / "statehook.toml", redis_url=redis_url,
        providers={"artistree": {"base_url": sim.url("artistree"), "token_url": sim.url("artistree") + "/t",
                                 "client_id": "c", "client_secret": "s", "stall_after": {"Reviewed": "3h"}}},
        watches=[{"provider": "artistree", "ids": ["o-1"], "stall_after": "10m"},
                 {"provider": "artistree", "ids": ["o-2"], "stall_after": {"Reviewed": "1h"}},
                 {"provider": "artistree", "ids": ["o-3"]}],
        destinations={}, routes=[],
    )
    settings = config.providers["artistree"]
    assert settings.stall_after == {"In Progress": 2 * 86400, "*": 7 * 86400, "Reviewed": 3 * HOUR}
    metas = [watch_rkeys(spec, ArtistreeProvider)[0][1] for spec in config.watches]
    assert [m.stall_after for m in metas] == [{"*": 600.0}, {"Reviewed": HOUR}, None]
    assert [WatchMeta.from_json(m.to_json()) for m in metas] == metas
    with pytest.raises(ValueError, match="stall_after"):
        WatchSpec.model_validate({"provider": "artistree", "ids": ["o"], "stall_after": {"Reviewed": "-1h"}})
