"""Resources that disappear from a scan, against real Redis and the simulator: what a full
sweep no longer lists is fetched, a 404 is `gone` (once), one that only moved between pages
is not, and a partial sweep reports nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis

from model.resources import ResourceRef
from simulator.core import Fault, Simulator
from store import keys
from store.rates import ProviderLimits
from store.snapshots import WatchMeta
from tasks.poll import Poller, PollOutcome
from tests.test_polling import make_poller, scan_watch


async def gone(redis: aioredis.Redis) -> list[dict[str, Any]]:
    events = [orjson.loads(f[b"e"]) for _, f in await redis.xrange(keys.OUTBOX)]
    return [e for e in events if e["type"] == "artistree.order.gone"]


async def sweep(poller: Poller, scan: str, sim: Simulator) -> tuple[dict[PollOutcome, int], int]:
    """One sweep's outcomes and how many requests it made."""
    before = sim.requests["artistree"]
    outcomes = await poller.poll([scan])
    return outcomes, sim.requests["artistree"] - before


async def test_a_deleted_order_is_gone_and_one_that_moved_pages_is_not(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(250)
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    sim["artistree"].remove(ids[10])
    sim["artistree"].remove(ids[200])
    sim["artistree"].move_between_pages(ids[120])
    outcomes, requests = await sweep(poller, scan, sim)
    assert outcomes[PollOutcome.GONE] == 2 and outcomes[PollOutcome.UNCHANGED] == 247
    assert requests == 3 + 3  # three pages, and a GET of each order not listed
    events = await gone(redis)
    assert sorted(e["resource"]["id"] for e in events) == sorted([ids[10], ids[200]])
    assert events[0]["severity"] == "warning" and events[0]["summary"].endswith("is gone (404)")
    # the next sweep lists the order that moved: no GET; the gone ones are not looked for again
    outcomes, requests = await sweep(poller, scan, sim)
    assert (outcomes[PollOutcome.UNCHANGED], outcomes[PollOutcome.GONE], requests) == (248, 0, 3)
    assert len(await gone(redis)) == 2


async def test_an_order_deleted_while_it_was_off_the_listing_is_gone_at_the_next_sweep(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(150)
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    sim["artistree"].move_between_pages(ids[5])
    assert (await sweep(poller, scan, sim))[0][PollOutcome.GONE] == 0  # listed nowhere, answered: kept
    sim["artistree"].remove(ids[5])
    assert (await sweep(poller, scan, sim))[0][PollOutcome.GONE] == 1


async def test_an_order_that_left_the_listing_for_good_is_let_go_after_a_second_look(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(120)
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    sim["artistree"].move_between_pages(ids[0], sweeps=10)  # e.g. moved to a project the scan does not list
    assert (await sweep(poller, scan, sim))[1] == 2 + 1
    assert (await sweep(poller, scan, sim))[1] == 2 + 1  # looked at once more, then let go
    assert (await sweep(poller, scan, sim))[1] == 2
    assert await gone(redis) == []


async def test_a_sweep_that_fails_before_its_end_reports_nothing(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(250)
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    sim["artistree"].remove(ids[249])  # on the last page
    sim.faults.add("artistree", "/v1/orders", Fault(status=503, times=1))
    assert (await sweep(poller, scan, sim))[0][PollOutcome.GONE] == 0
    sim.faults.clear()
    # the fault took the first page: a fresh sweep compares with the last full one
    outcomes, _ = await sweep(poller, scan, sim)
    assert outcomes[PollOutcome.GONE] == 1 and outcomes[PollOutcome.UNCHANGED] == 249


async def test_the_gets_of_one_sweep_are_bounded_and_the_rest_wait(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=100)
    poller.watchdog = poller.watchdog.model_copy(update={"gone_checks": 2})
    ids = sim["artistree"].add_many(50)
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    for oid in ids[:5]:
        sim["artistree"].remove(oid)
    assert [(await sweep(poller, scan, sim))[0][PollOutcome.GONE] for _ in range(4)] == [2, 2, 1, 0]
    assert sorted(e["resource"]["id"] for e in await gone(redis)) == sorted(ids[:5])


async def test_a_preview_scan_reports_a_deleted_order_gone(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(120)
    scan = await scan_watch(poller, preview="true")
    await sweep(poller, scan, sim)
    sim["artistree"].remove(ids[60])
    sim["artistree"].move_between_pages(ids[61])
    outcomes, requests = await sweep(poller, scan, sim)
    assert outcomes[PollOutcome.GONE] == 1 and requests == 2 + 2
    ((event),) = await gone(redis)
    assert event["resource"]["key"] == ResourceRef("artistree", "order", ids[60]).key


async def test_removing_a_scan_watch_forgets_its_sweeps(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session)
    sim["artistree"].add_many(3)
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    (entry,) = await redis.lrange(keys.sweep(scan, "prev"), 0, -1)  # type: ignore[misc]
    assert len(entry.split(b"\n")) == 3
    await poller.store.remove_watches([scan])
    assert not await redis.exists(keys.sweep(scan, "prev"), keys.sweep(scan, "cur"))


async def test_a_last_sweep_stored_as_a_set_before_is_read(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Sweeps were SETs of rkeys: one left by that version is compared like a LIST, and what
    is missing from it is gone."""
    poller = make_poller(sim, redis, session)
    ids = sim["artistree"].add_many(3)
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    await redis.delete(keys.sweep(scan, "prev"))
    await redis.sadd(keys.sweep(scan, "prev"), *(ResourceRef("artistree", "order", i).key for i in ids))  # type: ignore[misc]
    sim["artistree"].remove(ids[1])
    outcomes, _ = await sweep(poller, scan, sim)
    assert outcomes[PollOutcome.GONE] == 1
    assert await redis.type(keys.sweep(scan, "prev")) == b"list"


async def test_ids_left_by_a_sweep_that_stopped_delay_a_gone_by_one_sweep_and_lose_none(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """What a sweep that stopped before its end (an error of Redis, not of the provider) left
    in the sweep in progress counts as listed by the next one: the next sweep after it says
    the order is gone. A sweep does not start by dropping it, since another sweep of the same
    scan may be running (a `watch scan` beside the workers, a worker that hung and resumed)."""
    poller = make_poller(sim, redis, session)
    ids = sim["artistree"].add_many(3)
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    sim["artistree"].remove(ids[0])
    await redis.rpush(keys.sweep(scan, "cur"), ResourceRef("artistree", "order", ids[0]).key)  # type: ignore[misc]
    assert (await sweep(poller, scan, sim))[0][PollOutcome.GONE] == 0
    assert (await sweep(poller, scan, sim))[0][PollOutcome.GONE] == 1


async def test_a_sweep_longer_than_the_lease_is_not_claimed_again_while_it_runs(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=20)
    poller.scan_lease = 0.6
    sim["artistree"].add_many(100)  # five pages
    scan = await scan_watch(poller)
    await sweep(poller, scan, sim)
    await redis.zadd(keys.DUE, {scan: time.time()}, xx=True)
    assert [k for k, _ in await poller.store.claim_due_times(time.time(), 0.6, 10)] == [scan]
    sim.faults.add("artistree", "/v1/orders", Fault(delay=0.3))  # 1.5 s a sweep: past its lease
    running = asyncio.create_task(poller.poll([scan]))
    claimed_again = []
    while not running.done():
        claimed_again += await poller.store.claim_due_times(time.time(), 0.6, 10)
        await asyncio.sleep(0.05)
    assert (await running)[PollOutcome.UNCHANGED] == 100
    assert claimed_again == []
    assert (await redis.zscore(keys.DUE, scan)) > time.time() + 30  # the sweep's end: its interval on


async def test_a_scan_asks_for_no_page_while_its_provider_is_paused(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """A 429 another worker met pauses the provider for every poll; a scan's pages too."""
    poller = make_poller(sim, redis, session)
    for _ in range(3):
        sim["artistree"].add_order()
    scan = await scan_watch(poller)
    await ProviderLimits(redis).pause("artistree", 30)
    before = sim.requests["artistree"]
    outcomes = await poller.poll([scan])
    assert outcomes[PollOutcome.RATE_LIMITED] == 1 and sim.requests["artistree"] == before
    due = await redis.zscore(keys.DUE, scan)
    assert due is not None and due > time.time() + 20


async def watched_and_scanned(poller: Poller, sim: Simulator, state: str, *, interval: float) -> tuple[str, str, str]:
    """An order in `state`, watched by id and by a scan of the organization, polled and swept
    once each: its id, rkey and the scan's rkey."""
    oid = sim["artistree"].add_order(state=state)["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    await poller.store.add_watches([(rkey, WatchMeta(interval=interval))])
    scan = await scan_watch(poller)
    await poller.poll([rkey])
    await sweep(poller, scan, sim)
    return oid, rkey, scan


async def test_an_order_watched_by_id_and_listed_by_a_scan_is_gone_once_with_its_last_state(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Deleted, it was gone twice (its id's poll, then the scan's sweep), each with
    `last_state: null` (found by a fresh-user trial)."""
    poller = make_poller(sim, redis, session, page_size=100)
    oid, rkey, scan = await watched_and_scanned(poller, sim, "Action Required", interval=60)
    sim["artistree"].remove(oid)
    outcomes = await poller.poll([rkey])
    assert outcomes[PollOutcome.GONE] == 1
    await sweep(poller, scan, sim)
    await poller.poll([rkey])  # polled again (a poll now): still gone, no news
    (event,) = await gone(redis)
    assert event["data"] == {"last_state": "Action Required"}


async def test_a_failing_scan_backs_off_as_a_resources_poll_does(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Its sweeps failed every 5 s for as long as the provider answered 502 (found by a
    fresh-user trial): the failure count was never passed to the decision."""
    poller = make_poller(sim, redis, session, page_size=100)
    sim["artistree"].add_many(3)
    spec = {"project_id": "All Projects"}
    scan = ResourceRef("artistree", "scan", "project_id=All Projects").key
    await poller.store.add_watches([(scan, WatchMeta(interval=1, scan=spec))])
    sim.faults.add("artistree", "/v1/orders", Fault(status=502))
    waits = []
    for _ in range(3):
        started = time.time()
        await poller.poll([scan])
        due = await redis.zscore(keys.DUE, scan)
        assert due is not None
        waits.append(due - started)
    assert waits[0] >= 4.9 and waits[1] >= 9.9 and waits[2] >= 19.9, waits
    sim.faults.clear()
    await poller.poll([scan])
    assert not await redis.hexists(keys.ERRORS, scan)  # a sweep that ends clears the count


async def test_an_order_watched_by_id_that_a_scan_sees_reopen_leaves_its_terminal_tail(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Its id watch stayed on the terminal tail (due in an hour) after the scan had seen it go
    from Failed back to In Progress (found by a fresh-user trial)."""
    poller = make_poller(sim, redis, session, page_size=100)
    oid, rkey, scan = await watched_and_scanned(poller, sim, "Failed", interval=2)
    tail = await redis.zscore(keys.DUE, rkey)
    assert tail is not None and tail > time.time() + 600  # a terminal order: on the tail
    sim["artistree"].set_state(oid, "In Progress")
    before = time.time()
    await sweep(poller, scan, sim)  # the scan sees it reopen
    due = await redis.zscore(keys.DUE, rkey)
    assert due is not None and due <= time.time() + 1, due - before
    await poller.poll([rkey])  # its own poll: back on its interval
    due = await redis.zscore(keys.DUE, rkey)
    assert due is not None and due <= time.time() + 2.5
