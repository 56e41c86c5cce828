"""How polling behaves against a rate-limited, failing provider (the simulator's faults)."""

from __future__ import annotations

import asyncio
import calendar
import logging
import time

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from model.resources import ResourceRef
from providers.artistree import ArtistreeProvider, ArtistreeSettings
from simulator.core import Fault, Simulator
from store import keys, sweeps
from store.rates import ProviderLimits
from store.records import ResourceState, decode_state, encode_state
from store.snapshots import Store, WatchMeta
from tasks.poll import Poller, PollOutcome
from tests.conftest import count_parses, wait_for


def make_poller(sim: Simulator, redis: aioredis.Redis, session: aiohttp.ClientSession, **settings: object) -> Poller:
    settings.setdefault("requests_per_second", 5000)
    cfg = ArtistreeSettings(
        base_url=sim.url("artistree"), token_url=sim.url("artistree") + "/oauth2/token",
        client_id="sim-client", client_secret="sim-secret", **settings,  # type: ignore[arg-type]
    )
    return Poller(Store(redis), {"artistree": ArtistreeProvider(cfg, session)})


async def scan_watch(poller: Poller, **spec: str) -> str:
    """A scan watch of the whole organization (plus `spec`); returns its rkey."""
    spec = {"project_id": "All Projects", **spec}
    scan = ResourceRef("artistree", "scan", "&".join(f"{k}={v}" for k, v in sorted(spec.items()))).key
    await poller.store.add_watches([(scan, WatchMeta(interval=60, scan=spec))])
    return scan


async def watched(poller: Poller, sim: Simulator, n: int, interval: float = 60) -> list[str]:
    ids = [sim["artistree"].add_order()["order_id"] for _ in range(n)]
    rkeys = [ResourceRef("artistree", "order", i).key for i in ids]
    await poller.store.add_watches([(k, WatchMeta(interval=interval)) for k in rkeys])
    return rkeys


async def test_a_429_pauses_the_provider_for_every_worker(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    worker_a, worker_b = make_poller(sim, redis, session), make_poller(sim, redis, session)
    rkeys = await watched(worker_a, sim, 2)
    sim.faults.add("artistree", "/v1/orders/", Fault(status=429, retry_after=30, times=1))
    outcomes = await worker_a.poll(rkeys[:1])
    assert outcomes[PollOutcome.RATE_LIMITED] == 1
    before = sim.requests["artistree"]
    outcomes = await worker_b.poll(rkeys[1:])
    assert outcomes[PollOutcome.PAUSED] == 1
    assert sim.requests["artistree"] == before  # worker b did not call the provider
    due = await redis.zscore(keys.DUE, rkeys[1])
    assert due is not None and due > time.time() + 20


async def test_server_errors_back_off_per_resource_and_recover(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1, interval=1)
    oid = ResourceRef.parse(rkey).id
    sim.faults.add("artistree", f"/v1/orders/{oid}", Fault(status=500, times=3))
    for failures in (1, 2, 3):
        assert (await poller.poll([rkey]))[PollOutcome.UNAVAILABLE] == 1
        assert int(await redis.hget(keys.ERRORS, rkey)) == failures  # type: ignore[misc]
    due = await redis.zscore(keys.DUE, rkey)
    assert due is not None and due >= time.time() + 15  # 5 s, 10 s, 20 s: backed off past the 1 s interval
    assert (await poller.poll([rkey]))[PollOutcome.BASELINE] == 1
    assert await redis.hget(keys.ERRORS, rkey) is None  # type: ignore[misc]


async def test_unauthorized_marks_the_provider_unhealthy_with_one_log_line(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    poller = make_poller(sim, redis, session)
    rkeys = await watched(poller, sim, 20)
    sim.faults.add("artistree", "/v1/orders/", Fault(status=401))
    with caplog.at_level(logging.ERROR, logger="statehook.poll"):
        assert (await poller.poll(rkeys))[PollOutcome.UNAUTHORIZED] == 20
        assert (await poller.poll(rkeys))[PollOutcome.UNAUTHORIZED] == 20
    lines = [r for r in caplog.records if "unhealthy" in r.getMessage()]
    assert len(lines) == 1
    assert "sim-secret" not in caplog.text
    assert await redis.hget(keys.PROVIDER_HEALTH, "artistree")  # type: ignore[misc]
    # the first token, then one refresh per burst of 401s (not one per request)
    assert sim["artistree"].tokens_issued == 2
    sim.faults.clear()
    assert (await poller.poll(rkeys))[PollOutcome.BASELINE] == 20
    assert await redis.hget(keys.PROVIDER_HEALTH, "artistree") is None  # type: ignore[misc]


async def test_a_resource_that_disappears_is_gone_and_no_longer_polled(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    sim["artistree"].remove(ResourceRef.parse(rkey).id)
    assert (await poller.poll([rkey]))[PollOutcome.GONE] == 1
    ((_, fields),) = await redis.xrange(keys.OUTBOX)
    assert orjson.loads(fields[b"e"])["type"] == "artistree.order.gone"
    assert await redis.zscore(keys.DUE, rkey) is None


async def test_an_id_that_never_existed_is_not_gone(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session)
    rkey = ResourceRef("artistree", "order", "00000000-0000-0000-0000-000000000000").key
    await poller.store.add_watches([(rkey, WatchMeta(interval=60))])
    assert (await poller.poll([rkey]))[PollOutcome.NOT_FOUND] == 1
    assert await redis.xlen(keys.OUTBOX) == 0


async def test_a_malformed_payload_is_counted_and_logged_never_an_event(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    poller = make_poller(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    sim.faults.add("artistree", "/v1/orders/", Fault(malformed=True, times=1))
    with caplog.at_level(logging.WARNING, logger="statehook.poll"):
        assert (await poller.poll([rkey]))[PollOutcome.MALFORMED] == 1
    assert rkey in caplog.text
    assert await redis.xlen(keys.OUTBOX) == 0
    assert (await poller.poll([rkey]))[PollOutcome.UNCHANGED] == 1


async def test_a_terminal_order_stops_being_polled_past_its_tails(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    sim["artistree"].set_state(ResourceRef.parse(rkey).id, "Human Certified")
    now = time.time()
    assert (await poller.poll([rkey], now=now))[PollOutcome.CHANGED] == 1
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(now + 3600)  # hourly, for 7 days
    assert (await poller.poll([rkey], now=now + 8 * 86400))[PollOutcome.UNCHANGED] == 1
    assert await redis.zscore(keys.DUE, rkey) == pytest.approx(now + 9 * 86400)  # then daily, to 30 days
    assert (await poller.poll([rkey], now=now + 30 * 86400))[PollOutcome.UNCHANGED] == 1
    assert await redis.zscore(keys.DUE, rkey) is None


async def test_a_terminal_order_without_a_tail_stops_being_polled(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, terminal_tail=0, terminal_late_tail=0)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    sim["artistree"].set_state(ResourceRef.parse(rkey).id, "Human Certified")
    assert (await poller.poll([rkey]))[PollOutcome.CHANGED] == 1
    assert await redis.zscore(keys.DUE, rkey) is None


async def test_a_terminal_tail_keeps_a_slow_poll(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, terminal_tail=86400, terminal_interval=3600)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    sim["artistree"].set_state(ResourceRef.parse(rkey).id, "Failed")
    await poller.poll([rkey])
    due = await redis.zscore(keys.DUE, rkey)
    assert due is not None and due > time.time() + 3000


async def test_the_rate_schedule_is_shared_between_workers(redis: aioredis.Redis) -> None:
    a, b = ProviderLimits(redis, burst=0), ProviderLimits(redis, burst=0)
    now = 1_000_000.0
    first = await a.reserve("rev", 10, 20.0, now=now)
    second = await b.reserve("rev", 10, 20.0, now=now)
    assert first.start == pytest.approx(now)
    assert second.start == pytest.approx(now + 0.5)  # after the first worker's 10 slots at 20/s
    assert second.slot(9) == pytest.approx(now + 0.95)


async def test_a_batch_fetches_what_its_rate_slots_allow_within_its_horizon_and_books_the_rest(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """More due than the provider's rate allows before the job's timeout: the batch does not
    wait past its horizon for slots; the resources whose slot is beyond it keep it (booked)
    and are due at it, and when one comes back it is fetched in that slot without taking
    another (tasks/rate_slots.py)."""
    poller = make_poller(sim, redis, session, requests_per_second=10)
    poller.rate_horizon = 0.5
    rkeys = await watched(poller, sim, 40, interval=1)
    started = time.time()
    outcomes = await poller.poll(rkeys)
    polled = outcomes[PollOutcome.BASELINE]
    assert outcomes[PollOutcome.DEFERRED] == 40 - polled and 1 <= polled <= 16  # 0.5 s and the burst allowance
    booked = {k.decode(): float(v) for k, v in (await redis.hgetall(keys.BOOKED)).items()}  # type: ignore[misc]
    assert sorted(booked) == sorted(rkeys[polled:])
    slots = [booked[k] for k in rkeys[polled:]]
    assert slots == sorted(slots) and slots[0] >= started + 0.5
    assert slots[-1] - slots[0] == pytest.approx((len(slots) - 1) * 0.1, abs=0.001)  # one slot apart, at 10/s
    assert [await redis.zscore(keys.DUE, k) for k in rkeys[polled:]] == pytest.approx(slots)
    schedule = await redis.get(keys.provider_rate("artistree"))
    assert (await poller.poll([rkeys[polled]]))[PollOutcome.BASELINE] == 1
    assert await redis.get(keys.provider_rate("artistree")) == schedule  # no slot taken again
    assert not await redis.hexists(keys.BOOKED, rkeys[polled])  # type: ignore[misc]


async def test_a_scan_baselines_every_order_then_sees_changes(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(250)
    scan = await scan_watch(poller)
    assert (await poller.poll([scan]))[PollOutcome.BASELINE] == 250
    assert await redis.xlen(keys.OUTBOX) == 0
    sim["artistree"].set_state(ids[7], "Failed")
    outcomes = await poller.poll([scan])
    assert outcomes[PollOutcome.CHANGED] == 1 and outcomes[PollOutcome.UNCHANGED] == 249
    ((_, fields),) = await redis.xrange(keys.OUTBOX)
    event = orjson.loads(fields[b"e"])
    assert event["resource"]["id"] == ids[7] and event["data"]["to"] == "Failed"
    assert event["resource"]["scan"] == scan  # the watch the order is watched through


async def test_a_poll_whose_body_fingerprint_matches_is_unchanged_without_a_parse(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """The presigned URLs differ in every answer; they are blanked before the fingerprint."""
    poller = make_poller(sim, redis, session)
    rkeys = await watched(poller, sim, 3)
    await poller.poll(rkeys)
    parsed = count_parses(poller.providers["artistree"])
    sim["artistree"].rotate_presigned_urls(ResourceRef.parse(rkeys[0]).id)
    assert (await poller.poll(rkeys))[PollOutcome.UNCHANGED] == 3
    assert parsed == []
    sim["artistree"].set_state(ResourceRef.parse(rkeys[1]).id, "Failed")
    outcomes = await poller.poll(rkeys)
    assert (outcomes[PollOutcome.CHANGED], outcomes[PollOutcome.UNCHANGED]) == (1, 2)
    assert [orjson.loads(p)["order_id"] for p in parsed] == [ResourceRef.parse(rkeys[1]).id]


async def test_the_fast_path_keeps_a_terminal_order_on_its_slow_tail(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, terminal_tail=86400, terminal_interval=3600)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    sim["artistree"].set_state(ResourceRef.parse(rkey).id, "Failed")
    await poller.poll([rkey])
    parsed = count_parses(poller.providers["artistree"])
    assert (await poller.poll([rkey]))[PollOutcome.UNCHANGED] == 1
    assert parsed == []
    due = await redis.zscore(keys.DUE, rkey)
    assert due is not None and due > time.time() + 3000


async def test_a_state_without_a_fingerprint_is_parsed_once_then_fingerprinted(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """States written before fingerprints (digest|seq|changed_at) still work."""
    poller = make_poller(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    state = decode_state(await redis.hget(keys.STATE, rkey))
    assert state is not None and state.preview and state.terminal is False
    await redis.hset(keys.STATE, rkey, f"{state.digest}|{state.seq}|{int(state.changed_at)}")
    parsed = count_parses(poller.providers["artistree"])
    assert (await poller.poll([rkey]))[PollOutcome.UNCHANGED] == 1
    assert len(parsed) == 1
    assert (await poller.poll([rkey]))[PollOutcome.UNCHANGED] == 1
    assert len(parsed) == 1
    assert await redis.xlen(keys.OUTBOX) == 0


async def test_a_scan_parses_only_the_listed_orders_whose_bytes_changed(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Presigned URLs differ in every listing; they are blanked before the comparison."""
    poller = make_poller(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(250)
    scan = await scan_watch(poller)
    await poller.poll([scan])
    parsed = count_parses(poller.providers["artistree"])
    assert (await poller.poll([scan]))[PollOutcome.UNCHANGED] == 250
    assert parsed == []
    sim["artistree"].set_state(ids[3], "Reviewed")
    sim["artistree"].rotate_presigned_urls(ids[4])
    outcomes = await poller.poll([scan])
    assert (outcomes[PollOutcome.CHANGED], outcomes[PollOutcome.UNCHANGED]) == (1, 249)
    assert sorted(orjson.loads(p)["order_id"] for p in parsed) == [ids[3]]
    assert await redis.xlen(keys.OUTBOX) == 1


async def test_a_preview_scan_fetches_full_details_only_for_what_changed(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session, page_size=100)
    ids = sim["artistree"].add_many(250)
    scan = await scan_watch(poller, preview="true")
    assert (await poller.poll([scan]))[PollOutcome.BASELINE] == 250
    before = sim.requests["artistree"]
    assert (await poller.poll([scan]))[PollOutcome.UNCHANGED] == 250
    assert sim.requests["artistree"] - before == 3  # three preview pages, no order fetched
    sim["artistree"].set_state(ids[42], "Action Required")
    before = sim.requests["artistree"]
    outcomes = await poller.poll([scan])
    assert outcomes[PollOutcome.CHANGED] == 1 and outcomes[PollOutcome.UNCHANGED] == 249
    assert sim.requests["artistree"] - before == 4  # three pages and the one changed order
    ((_, fields),) = await redis.xrange(keys.OUTBOX)
    assert orjson.loads(fields[b"e"])["data"]["to"] == "Action Required"


async def test_every_artistree_event_type_from_a_simulator_scenario(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    poller = make_poller(sim, redis, session)
    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    await poller.store.add_watches([(rkey, WatchMeta(interval=60, discovered=True))])
    await poller.poll([rkey])
    sim["artistree"].update(oid, analysis_failed_items=["Layer 2"], confidence=0.42,
                            annotations=[], order_state="Action Required")
    await poller.poll([rkey])
    sim["artistree"].update(oid, reviewed_by="reviewer@example.com", review_timestamp="2026-11-23T10:00:00Z",
                            order_state="Reviewed")
    await poller.poll([rkey])
    sim["artistree"].remove(oid)
    await poller.poll([rkey])
    events = [orjson.loads(f[b"e"]) for _, f in await redis.xrange(keys.OUTBOX)]
    types = [e["type"] for e in events]
    assert set(types) == {
        "artistree.order.discovered",
        "artistree.order.state_changed",
        "artistree.order.analysis_failed",
        "artistree.order.annotations_changed",
        "artistree.order.confidence_changed",
        "artistree.order.reviewed",
        "artistree.order.gone",
    }
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    by_type = {e["type"]: e for e in events}
    assert by_type["artistree.order.analysis_failed"]["data"]["items"] == ["Layer 2"]
    assert by_type["artistree.order.analysis_failed"]["severity"] == "warning"
    assert by_type["artistree.order.reviewed"]["data"]["reviewed_by"] == "reviewer@example.com"
    assert by_type["artistree.order.confidence_changed"]["data"]["to"] == 0.42


async def test_a_heartbeat_with_the_same_worker_count_keeps_the_concurrency_limit(
    redis: aioredis.Redis, sim: Simulator
) -> None:
    """The heartbeat calls share_concurrency every interval: with the same count, a batch
    started after it must still wait for the lanes of the batch already in flight."""
    in_flight, most = 0, 0

    async def started(*_: object) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)

    async def ended(*_: object) -> None:
        nonlocal in_flight
        in_flight -= 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    trace.on_request_end.append(ended)
    trace.on_request_exception.append(ended)
    async with aiohttp.ClientSession(trace_configs=[trace]) as traced:
        poller = make_poller(sim, redis, traced, max_concurrency=2)
        rkeys = await watched(poller, sim, 8)
        await poller.poll(rkeys)  # baselines, and the token is fetched outside the count
        sim.faults.add("artistree", "/v1/orders/", Fault(delay=0.2))
        most = 0
        first = asyncio.create_task(poller.poll(rkeys[:4]))
        await wait_for(lambda: in_flight == 2, what="the first batch's two requests")
        poller.share_concurrency(1)  # a heartbeat: still one live worker
        second = asyncio.create_task(poller.poll(rkeys[4:]))
        outcomes = await first + await second
    assert outcomes[PollOutcome.UNCHANGED] == 8
    assert most == 2


@pytest.mark.parametrize("sep", ["", "\n"])  # "\n" in a key: the comparison in Python instead of Lua
async def test_a_listing_matches_only_the_fingerprint_its_state_records(redis: aioredis.Redis, sep: str) -> None:
    store, d, fp, t = Store(redis), "0123456789abcdef01234567", "l" + "a" * 23, 1_700_000_000
    records = {
        "with-flag": ResourceState(d, 2, t, fp, True, t),
        "without-flag": ResourceState(d, 2, t, fp, entered_at=t),
        "stall-armed": ResourceState(d, 2, t, fp, False, t, stall_at=t + 100),
        "stalled": ResourceState(d, 2, t, fp, False, t, stalled=True),
        "stall-due": ResourceState(d, 2, t, fp, False, t, stall_at=t + 50),
        "untracked": ResourceState(d, 2, t, fp, True),  # written before stalls were tracked: parsed once
        "other": ResourceState(d, 2, t, "l" + "b" * 23, False, t),
        "none": ResourceState(d, 2, t),
    }
    rkeys = [f"artistree:order:{sep}{name}" for name in [*records, "missing", "corrupt"]]
    await redis.hset(keys.STATE, mapping={k: encode_state(s) for k, s in zip(rkeys, records.values(), strict=False)})
    await redis.hset(keys.STATE, rkeys[-1], b"garbage")
    assert await store.listed_unchanged(rkeys, [fp] * len(rkeys), now=t + 60, sweep="artistree:scan:p") == [
        True, True, True, True, False, False, False, False, False, False]
    (entry,) = await redis.lrange(keys.sweep("artistree:scan:p", "cur"), 0, -1)  # type: ignore[misc]
    assert list(sweeps.members([entry])) == [k.encode() for k in rkeys]  # the page added to the sweep


async def test_a_listing_page_of_ten_thousand_items_is_compared_in_one_script(redis: aioredis.Redis) -> None:
    """Lua's unpack stops near 8,000 values: the page's HMGET of the states goes in parts."""
    store, d, fp, t = Store(redis), "0123456789abcdef01234567", "l" + "a" * 23, 1_700_000_000
    rkeys = [f"artistree:order:big-{i}" for i in range(10_000)]
    await redis.hset(keys.STATE, mapping={k: encode_state(ResourceState(d, 2, t, fp, True, t)) for k in rkeys[::2]})
    same = await store.listed_unchanged(rkeys, [fp] * len(rkeys), now=t + 60, sweep=None)
    assert same == [i % 2 == 0 for i in range(len(rkeys))]


async def test_a_change_seen_after_a_held_up_batch_is_dated_when_it_was_seen(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """A batch held up between its start and its fetches (Redis hung under its rate
    reservation) dates what it saw at the answers, never before the change it saw."""
    poller = make_poller(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    reserve = poller.limits.reserve
    changed_at = 0.0

    async def held_up(*args: object, **kwargs: object) -> object:
        nonlocal changed_at
        await asyncio.sleep(1.2)
        sim["artistree"].set_state(ResourceRef.parse(rkey).id, "Failed")
        changed_at = time.time()
        return await reserve(*args, **kwargs)  # type: ignore[arg-type]

    poller.limits.reserve = held_up  # type: ignore[method-assign]
    assert (await poller.poll([rkey]))[PollOutcome.CHANGED] == 1
    (*_, (_, fields)) = await redis.xrange(keys.OUTBOX)
    event = orjson.loads(fields[b"e"])
    detected = calendar.timegm(time.strptime(event["detected_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert event["data"]["to"] == "Failed" and detected >= int(changed_at)


async def test_a_state_record_that_would_refuse_every_commit_is_forgotten_and_the_next_change_seen(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """`|00|` reads as seq 0 but is written back `|0|`: the commit guard would never match it."""
    poller = make_poller(sim, redis, session)
    (rkey,) = await watched(poller, sim, 1)
    await poller.poll([rkey])
    stored = (await redis.hget(keys.STATE, rkey)).decode()
    await redis.hset(keys.STATE, rkey, stored.replace("|0|", "|00|", 1))
    sim["artistree"].set_state(ResourceRef.parse(rkey).id, "Reviewed")
    assert (await poller.poll([rkey]))[PollOutcome.BASELINE] == 1  # forgotten, taken again
    sim["artistree"].set_state(ResourceRef.parse(rkey).id, "Failed")
    assert (await poller.poll([rkey]))[PollOutcome.CHANGED] == 1
    assert await redis.xlen(keys.OUTBOX) == 1
