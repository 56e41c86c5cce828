"""Terminal is not forever: a resource in a terminal state keeps a slow poll (hourly for 7
days after its last change, then daily to 30 days, by default), so that one moved back out
of it is an event within the interval of the tail it is in. Real Redis and the simulator,
the poll's clock and the scheduler's claims given."""

from __future__ import annotations

import time

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from model.resources import ResourceRef
from providers.rev import RevProvider, RevSettings
from simulator.artistree import ArtistreeSim
from simulator.core import SimProvider, Simulator
from simulator.rev import RevSim
from store import keys
from store.snapshots import Store, WatchMeta
from tasks.poll import Poller, PollOutcome
from tests.test_polling import make_poller, watched

HOUR, DAY = 3600.0, 86400.0


@pytest.fixture
def sim_providers() -> list[SimProvider]:
    return [ArtistreeSim(), RevSim()]


async def claimed_by(store: Store, rkey: str, until: float) -> bool:
    """Whether the scheduler's claim up to `until` takes `rkey` (it is due by then)."""
    return rkey in {k for k, _ in await store.claim_due_times(until, 60, 1000)}


async def last_event(redis: aioredis.Redis) -> dict[str, object]:
    ((_, fields),) = await redis.xrevrange(keys.OUTBOX, count=1)
    event: dict[str, object] = orjson.loads(fields[b"e"])
    return event


async def test_an_order_reopened_from_failed_is_an_event_within_the_hourly_tail(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session)  # Artistree's default tail
    (rkey,) = await watched(poller, sim, 1)
    oid, t0 = ResourceRef.parse(rkey).id, time.time()
    await poller.poll([rkey], now=t0)
    sim["artistree"].set_state(oid, "Failed")
    await poller.poll([rkey], now=t0 + 60)
    sim["artistree"].reopen(oid)  # a resubmission, twenty minutes later
    assert not await claimed_by(poller.store, rkey, t0 + 60 + HOUR - 1)
    assert await claimed_by(poller.store, rkey, t0 + 60 + HOUR)
    assert (await poller.poll([rkey], now=t0 + 60 + HOUR))[PollOutcome.CHANGED] == 1
    event = await last_event(redis)
    assert event["type"] == "artistree.order.state_changed"
    assert event["data"] == {**event["data"], "from": "Failed", "to": "In Progress", "terminal": False}  # type: ignore[dict-item]
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(t0 + 120 + HOUR)  # open again: the interval


async def test_an_order_reopened_after_a_week_is_an_event_within_the_daily_tail(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    oid, t0 = ResourceRef.parse(rkey).id, time.time()
    await poller.poll([rkey], now=t0)
    sim["artistree"].set_state(oid, "Unsupported File")
    await poller.poll([rkey], now=t0 + 60)
    for hours in range(1, 7 * 24 + 1):  # an hourly look for 7 days: unchanged, without a parse
        assert (await poller.poll([rkey], now=t0 + 60 + hours * HOUR))[PollOutcome.UNCHANGED] == 1
    at = t0 + 60 + 7 * DAY  # the last hourly look
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(at + DAY)  # then daily
    sim["artistree"].reopen(oid, "Action Required")
    assert (await poller.poll([rkey], now=at + DAY))[PollOutcome.CHANGED] == 1
    assert (await last_event(redis))["data"]["to"] == "Action Required"  # type: ignore[index]


async def test_a_terminal_tail_is_configurable_per_provider(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, terminal_interval="10m", terminal_tail="1h",
                         terminal_late_interval="6h", terminal_late_tail="1d")
    (rkey,) = await watched(poller, sim, 1)
    t0 = time.time()
    await poller.poll([rkey], now=t0)
    sim["artistree"].set_state(ResourceRef.parse(rkey).id, "Human Certified")
    await poller.poll([rkey], now=t0)
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(t0 + 600)
    await poller.poll([rkey], now=t0 + 2 * HOUR)
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(t0 + 8 * HOUR)
    await poller.poll([rkey], now=t0 + DAY)
    assert await redis.zscore(keys.DUE, rkey) is None


async def test_a_rev_order_reopened_for_qc_is_an_event_within_its_tail(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Rev's QC re-open tail is the first stage of the tail: hourly for `reopen_tail` (a day),
    then daily to 30 days like every provider."""
    rev = RevProvider(RevSettings(base_url=sim.url("rev"), client_key=SecretStr("sim-client-key"),
                                  user_key=SecretStr("sim-user-key")), session)
    poller = Poller(Store(redis), {"rev": rev})
    number = sim["rev"].add_order()
    rkey = ResourceRef("rev", "order", number).key
    await poller.store.add_watches([(rkey, WatchMeta(interval=60))])
    t0 = time.time()
    await poller.poll([rkey], now=t0)
    sim["rev"].set_status(number, "Complete")
    await poller.poll([rkey], now=t0)
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(t0 + HOUR)
    await poller.poll([rkey], now=t0 + 2 * DAY)
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(t0 + 3 * DAY)
    sim["rev"].reopen(number)
    assert (await poller.poll([rkey], now=t0 + 3 * DAY))[PollOutcome.CHANGED] == 1
    assert (await last_event(redis))["data"]["from"] == "Complete"  # type: ignore[index]
