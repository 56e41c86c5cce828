"""statehook watching itself, against real Redis and the simulator: a provider unhealthy and
recovered (credentials refused, failed polls in a row across workers, rate-limited too
long), one event per transition; a watch overdue (claimed, not polled) and recovered."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from config.schema import WatchdogSettings
from model.events import Event
from model.resources import ResourceRef
from providers.artistree import ArtistreeProvider, ArtistreeSettings
from simulator.core import Fault, Simulator
from store import keys
from store.operational import OperationalEvents
from store.snapshots import Store, WatchMeta
from store.watchdog import LateWatches
from tasks.poll import Poller, PollOutcome
from tasks.watchdog import OverdueCheck
from tests.conftest import wait_for
from tests.kit import running_worker, write_config
from tests.test_polling import watched


def poller_for(sim: Simulator, redis: aioredis.Redis, session: aiohttp.ClientSession, **watchdog: Any) -> Poller:
    cfg = ArtistreeSettings(base_url=sim.url("artistree"), token_url=sim.url("artistree") + "/oauth2/token",
                            client_id="sim-client", client_secret="sim-secret",  # type: ignore[arg-type]
                            requests_per_second=5000)
    return Poller(Store(redis), {"artistree": ArtistreeProvider(cfg, session)}, watchdog=WatchdogSettings(**watchdog))


async def operational(redis: aioredis.Redis) -> list[Event]:
    events = [Event.from_json(f[b"e"]) for _, f in await redis.xrange(keys.OUTBOX)]
    return [e for e in events if e.provider == "statehook"]


async def kinds(redis: aioredis.Redis) -> list[str]:
    return [e.type.removeprefix("statehook.") for e in await operational(redis)]


# ---- providers ------------------------------------------------------------------------------


async def test_refused_credentials_make_the_provider_unhealthy_once_and_recovered_once(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = poller_for(sim, redis, session)
    rkeys = await watched(poller, sim, 3)
    await poller.poll(rkeys)
    sim.faults.add("artistree", "/v1/orders/", Fault(status=401))
    for _ in range(4):
        assert (await poller.poll(rkeys))[PollOutcome.UNAUTHORIZED] == 3
    (event,) = await operational(redis)
    assert (event.type, event.severity, event.resource["key"]) == (
        "statehook.provider.unhealthy", "critical", "statehook:provider:artistree")
    assert event.data["cause"] == "unauthorized" and event.data["provider"] == "artistree"
    assert "sim-secret" not in event.to_json().decode()
    sim.faults.clear()
    for _ in range(3):
        await poller.poll(rkeys)
    assert await kinds(redis) == ["provider.unhealthy", "provider.recovered"]
    assert await redis.hget(keys.PROVIDER_HEALTH, "artistree") is None  # type: ignore[misc]


async def test_failed_polls_in_a_row_across_workers_make_the_provider_unhealthy(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    a, b = poller_for(sim, redis, session, failed_polls=4), poller_for(sim, redis, session, failed_polls=4)
    (one, two) = await watched(a, sim, 2, interval=1)
    await a.poll([one, two])
    sim.faults.add("artistree", "/v1/orders/", Fault(status=503))
    assert (await a.poll([one, two]))[PollOutcome.UNAVAILABLE] == 2  # 2 in a row
    assert (await b.poll([one]))[PollOutcome.UNAVAILABLE] == 1  # 3, on another worker
    assert await operational(redis) == []
    await b.poll([two])  # 4
    (event,) = await operational(redis)
    assert event.data["cause"] == "failed_polls" and event.data["failed_polls"] == 4
    assert "503" in event.data["reason"]
    assert "4 polls failed in a row" in (await redis.hget(keys.PROVIDER_HEALTH, "artistree")).decode()  # type: ignore[misc]
    await a.poll([one])
    assert len(await operational(redis)) == 1  # still unhealthy: no second event
    sim.faults.clear()
    await b.poll([one, two])
    assert await kinds(redis) == ["provider.unhealthy", "provider.recovered"]


async def test_an_answered_poll_between_failures_starts_the_count_again(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = poller_for(sim, redis, session, failed_polls=3)
    (rkey,) = await watched(poller, sim, 1, interval=1)
    for _ in range(3):
        sim.faults.add("artistree", "/v1/orders/", Fault(status=500, times=2))
        await poller.poll([rkey])
        await poller.poll([rkey])
        assert (await poller.poll([rkey]))[PollOutcome.UNAVAILABLE] == 0  # answered: 0 again
    assert await operational(redis) == []


async def test_a_provider_rate_limited_too_long_is_unhealthy_until_it_answers(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = poller_for(sim, redis, session, rate_limited_for=120)
    rkeys = await watched(poller, sim, 2)
    t0 = time.time()
    await poller.poll(rkeys, now=t0)
    sim.faults.add("artistree", "/v1/orders/", Fault(status=429, retry_after=60, times=1))
    assert (await poller.poll(rkeys[:1], now=t0 + 1))[PollOutcome.RATE_LIMITED] == 1  # 60 s: not yet
    assert await operational(redis) == []
    assert (await poller.poll(rkeys[1:], now=t0 + 70))[PollOutcome.PAUSED] == 1  # still paused, 130 s by its end
    (event,) = await operational(redis)
    assert event.data["cause"] == "rate_limited" and event.data["rate_limited_for"] >= 120
    await redis.delete(keys.pause("artistree"))  # the pause ran out
    await poller.poll(rkeys, now=t0 + 200)
    assert await kinds(redis) == ["provider.unhealthy", "provider.recovered"]


async def test_a_retry_after_past_the_threshold_is_unhealthy_at_once(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = poller_for(sim, redis, session)
    rkeys = await watched(poller, sim, 1)
    sim.faults.add("artistree", "/v1/orders/", Fault(status=429, retry_after=3600, times=1))
    await poller.poll(rkeys)
    assert await kinds(redis) == ["provider.unhealthy"]


async def test_a_watched_id_that_never_existed_says_nothing_of_the_provider(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = poller_for(sim, redis, session, failed_polls=2)
    rkey = ResourceRef("artistree", "order", "00000000-0000-0000-0000-000000000000").key
    await poller.store.add_watches([(rkey, WatchMeta(interval=60))])
    for _ in range(3):
        assert (await poller.poll([rkey]))[PollOutcome.NOT_FOUND] == 1
    assert await operational(redis) == []


# ---- watches ----------------------------------------------------------------------------------


def overdue_check(redis: aioredis.Redis, **settings: Any) -> OverdueCheck:
    return OverdueCheck(LateWatches(redis), OperationalEvents(redis, history_length=50), WatchdogSettings(**settings))


async def test_a_watch_claimed_and_not_polled_for_three_intervals_is_overdue_until_it_is_polled(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = poller_for(sim, redis, session)
    (fast,) = await watched(poller, sim, 1, interval=60)
    (slow,) = await watched(poller, sim, 1, interval=3600)
    check, t0 = overdue_check(redis), time.time()
    claimed = await poller.store.claim_due_times(t0, 60, 100)  # the scheduler claims both; no poll follows
    assert {k for k, _ in claimed} == {fast, slow}
    assert (await check.run(t0 + 100)).overdue == 0  # under overdue_min (120 s)
    await poller.store.claim_due_times(t0 + 200, 60, 100)  # the lease ran out: claimed again
    assert (await check.run(t0 + 200)).overdue == 1  # 2 intervals past its due time: 3 since its last poll
    assert (await check.run(t0 + 300)).overdue == 0  # reported already
    (event,) = await operational(redis)
    assert (event.type, event.resource["key"], event.severity) == (
        "statehook.watch.overdue", f"statehook:watch:{fast}", "warning")
    assert event.data["rkey"] == fast and event.data["interval"] == 60 and event.data["late_for"] == 200
    await poller.poll([fast], now=t0 + 310)
    assert (await check.run(t0 + 311)).recovered == 1
    assert await kinds(redis) == ["watch.overdue", "watch.recovered"]
    assert (await check.run(t0 + 312)).recovered == 0
    assert await redis.smembers(keys.OVERDUE) == set()  # type: ignore[misc]


async def test_a_watch_removed_while_overdue_recovers_as_no_longer_watched(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = poller_for(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    check, t0 = overdue_check(redis), time.time()
    await poller.store.claim_due_times(t0, 60, 100)
    await check.run(t0 + 500)
    await poller.store.remove_watches([rkey])
    await check.run(t0 + 501)
    events = await operational(redis)
    assert [e.type for e in events] == ["statehook.watch.overdue", "statehook.watch.recovered"]
    assert events[1].data == {"rkey": rkey, "watched": False}


async def test_overdue_watches_are_reported_up_to_the_limit_and_the_rest_logged(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    poller = poller_for(sim, redis, session)
    rkeys = await watched(poller, sim, 5)
    check, t0 = overdue_check(redis, overdue_limit=2), time.time()
    await poller.store.claim_due_times(t0, 60, 100)
    with caplog.at_level(logging.WARNING, logger="statehook.watchdog"):
        first = await check.run(t0 + 500)
        second = await check.run(t0 + 501)
    assert (first.overdue, first.more, second.overdue, second.more) == (2, 1, 0, 1)
    assert len(await operational(redis)) == 2
    assert "more watches are overdue" in caplog.text
    await poller.poll(rkeys)
    assert (await check.run(t0 + 502)).recovered == 2


async def test_the_scheduler_reports_a_watch_whose_poll_hangs(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator
) -> None:
    """A real worker: its unique scheduler cron runs the check every second; a poll that hangs
    for 3 s makes a watch polled every 0.2 s overdue, and its end makes it recovered."""
    oid = sim["artistree"].add_order()["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    config = write_config(
        tmp_path / "statehook.toml", redis_url=redis_url,
        providers={"artistree": {"base_url": sim.url("artistree"), "token_url": sim.url("artistree") + "/oauth2/token",
                                 "client_id": "sim-client", "client_secret": "sim-secret"}},
        watches=[{"provider": "artistree", "ids": [oid], "interval": "0.2s"}],
        destinations={}, routes=[],
    )
    config.settings.watchdog.overdue_min = 1.0
    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="the baseline")  # type: ignore[arg-type]
        sim.faults.add("artistree", f"/v1/orders/{oid}", Fault(delay=3.0, times=1))
        await wait_for(lambda: _has(redis, "statehook.watch.overdue"), timeout=10, what="overdue")
        await wait_for(lambda: _has(redis, "statehook.watch.recovered"), timeout=10, what="recovered")
    assert await kinds(redis) == ["watch.overdue", "watch.recovered"]


async def _has(redis: aioredis.Redis, event_type: str) -> bool:
    return any(e.type == event_type for e in await operational(redis))
