"""Event ids name one change forever; unreadable stored records are skipped, never raised;
which Redis failures are an outage. Pure where it can be, real Redis where it must."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

import providers
from core.events import change_of, event_id
from model.resources import ResourceRef
from model.routes import Route
from simulator.artistree import ArtistreeSim
from simulator.core import Simulator
from store import keys
from store.snapshots import Store, WatchMeta
from store.unavailable import is_redis_down
from tasks.poll import Poller, PollOutcome
from tests.kit import WHSEC, write_config
from tests.test_pipeline import artistree_block
from worker.outage import Outage
from worker.queue import dispatcher_for

RKEY = "artistree:order:1"


def test_the_same_change_detected_again_has_the_same_id() -> None:
    change = change_of("epoch-a", "digest-1", "digest-2")
    assert event_id(RKEY, 3, "t", change) == event_id(RKEY, 3, "t", change_of("epoch-a", "digest-1", "digest-2"))


def test_a_sequence_number_used_again_in_a_new_dataset_gets_a_new_id() -> None:
    """After a data loss seq starts again; the same transition in the new epoch is a new id."""
    before = event_id(RKEY, 1, "t", change_of("epoch-a", "d1", "d2"))
    assert event_id(RKEY, 1, "t", change_of("epoch-b", "d1", "d2")) != before


def test_another_change_with_the_same_seq_gets_another_id() -> None:
    """A commit lost at a failover: seq is used again, for a different transition."""
    lost = event_id(RKEY, 5, "t", change_of("e", "d1", "d2"))
    assert event_id(RKEY, 5, "t", change_of("e", "d1", "d3")) != lost


@pytest.mark.parametrize("exc", [
    RedisConnectionError("Error 111 connecting"), TimeoutError(), BusyLoadingError("LOADING"),
    ReadOnlyError("READONLY You can't write against a read only replica."),
    ResponseError("NOREPLICAS Not enough good replicas to write."),
    ResponseError("MASTERDOWN Link with MASTER is down"),
    ResponseError("UNBLOCKED force unblock from blocking operation"),
    ResponseError("Command # 1 (HSET sh:meta k v) of pipeline caused error: ('NOREPLICAS Not enough good replicas',)"),
    OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),  # redis-py strips the OOM
    ResponseError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT."),
])
def test_these_failures_are_an_outage(exc: Exception) -> None:
    assert is_redis_down(exc)


@pytest.mark.parametrize("exc", [ResponseError("WRONGTYPE Operation against a key"), ValueError("x"), KeyError()])
def test_these_are_not(exc: Exception) -> None:
    assert not is_redis_down(exc)


def test_a_pipeline_failure_is_named_by_its_reply_never_its_values() -> None:
    from store.unavailable import redis_problem

    wrapped = ResponseError("Command # 1 (HSET sh:meta secret-key secret) of pipeline caused error: ('MASTERDOWN x',)")
    assert redis_problem(wrapped) == "MASTERDOWN"


async def test_writes_refused_end_only_when_a_write_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage()
    with caplog.at_level(logging.WARNING, logger="statehook.redis"):
        outage.failed(ResponseError("NOREPLICAS Not enough good replicas to write."), "heartbeat")
        outage.ok(wrote=False)  # a pickup's read
        assert outage.down
        outage.ok()
        assert not outage.down
        outage.failed(RedisConnectionError("Error 111 connecting"), "poll")
        outage.ok(wrote=False)  # refused connections: any answer ends it
        assert not outage.down
    assert len(caplog.records) == 4


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage()
    with caplog.at_level(logging.WARNING, logger="statehook.redis"):
        for _ in range(50):
            outage.failed(RedisConnectionError("Error 111 connecting to redis://:secret@host"), "poll")
        assert outage.down and not await outage.wait_up(0.01)
        outage.ok()
        outage.ok()
    assert await outage.wait_up(0.01)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "unavailable" in lines[0] and "available again" in lines[1]
    assert "secret" not in " ".join(lines)


async def test_a_step_that_redis_failed_runs_again_when_redis_answers() -> None:
    outage = Outage()
    tries = 0

    async def step() -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise RedisConnectionError("refused")
        return "done"

    assert await asyncio.wait_for(outage.through(step, "test"), 5) == "done"
    assert tries == 3 and not outage.down


async def test_unreadable_records_are_logged_counted_and_skipped(
    tmp_path: Path, redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    sim = Simulator([ArtistreeSim()])
    await sim.start()
    try:
        good = sim["artistree"].add_order()["order_id"]
        bad_state = sim["artistree"].add_order()["order_id"]
        config = write_config(tmp_path / "statehook.toml", redis_url="redis://unused", providers={
            "artistree": artistree_block(sim)}, destinations={"hook": {"kind": "webhook",
            "url": "http://127.0.0.1:9/h", "secret": WHSEC}}, routes=[{"to": ["hook"]}])
        refs = {oid: ResourceRef("artistree", "order", oid).key for oid in (good, bad_state)}
        async with aiohttp.ClientSession() as session:
            provs = {n: providers.REGISTRY[n](s, session) for n, s in config.providers.items()}
            poller = Poller(Store(redis), provs)
            await poller.store.add_watches([(k, WatchMeta(interval=60)) for k in refs.values()])
            await redis.hset(keys.META, "artistree:order:poison", b"not json")
            await redis.zadd(keys.DUE, {"artistree:order:poison": 0})
            await redis.hset(keys.STATE, refs[bad_state], b"garbage-without-fields")
            with caplog.at_level(logging.WARNING, logger="statehook.store"):
                outcomes = await poller.poll([*refs.values(), "artistree:order:poison"])
            assert outcomes[PollOutcome.CORRUPT] == 1
            assert outcomes[PollOutcome.BASELINE] == 2  # the unreadable state was forgotten: a baseline
            assert await redis.xlen(keys.OUTBOX) == 0
            assert int(await redis.hget(keys.STATS, "corrupt_records")) == 2
            assert set(await poller.store.watches()) == set(refs.values())
    finally:
        await sim.stop()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "artistree:order:poison" in logged and refs[bad_state] in logged


async def test_an_outbox_entry_that_is_not_an_event_is_skipped(redis: aioredis.Redis) -> None:
    dispatcher = dispatcher_for(redis, [], "c1", enabled_destinations=set())  # type: ignore[arg-type]
    await dispatcher.ensure_group()
    await redis.xadd(keys.OUTBOX, {"e": b"{not an event"})
    assert await dispatcher.step(block_ms=10) == 1
    pending = await redis.xpending(keys.OUTBOX, keys.GROUP)
    assert pending["pending"] == 0
    assert int(await redis.hget(keys.STATS, "corrupt_records")) == 1


@pytest.mark.parametrize("damage", [{"resource": {"id": "x"}}, {"resource": "x"}, {"id": 7}, {"type": None},
                                    {"data": [1]}, {"tags": "ab"}, {"tags": [1]}, {"project": 3}, {"summary": {}},
                                    {"seq": 1e20}, {"seq": "100000000000000000000"}, {"seq": -1}])
async def test_an_outbox_entry_shaped_unlike_an_event_is_skipped_and_the_rest_of_its_read_sent(
    redis: aioredis.Redis, damage: dict[str, object]
) -> None:
    """JSON that parses but is not an event as statehook writes it (a resource without a
    key, an id that is not a string, ...) is skipped like unparsable bytes: it blocked its
    whole read (and every reclaim of it) when routing or the batch's job id met it."""
    from arq.connections import ArqRedis

    from tests.test_routes import event
    from worker.queue import batch_job_id

    good = event("artistree.order.state_changed", "critical", to="Failed")
    bad = {**good.as_dict(), "id": "evt_damaged", **damage}
    arq = ArqRedis(connection_pool=redis.connection_pool)
    route = Route.model_validate({"to": ["hook"]})
    dispatcher = dispatcher_for(arq, [route], "c1", enabled_destinations={"hook"})
    await dispatcher.ensure_group()
    await redis.xadd(keys.OUTBOX, {"e": orjson.dumps(bad)})
    await redis.xadd(keys.OUTBOX, {"e": good.to_json()})
    assert await dispatcher.step(block_ms=10) == 2
    assert (await redis.xpending(keys.OUTBOX, keys.GROUP))["pending"] == 0
    assert int(await redis.hget(keys.STATS, "corrupt_records")) == 1
    assert await redis.zrange("arq:queue", 0, -1) == [batch_job_id([good.id], "hook").encode()]


@pytest.mark.parametrize("raw", [b'{"i": 1e-9}', b'{"i": 1e308}', b'{"i": null}', b'{"i": "inf"}', b'[]', b'{"s": 5}',
                                 b'{"i": 60, "s": {"project_id": 3}}'])
def test_a_stored_watch_out_of_bounds_is_unreadable_not_polled(raw: bytes) -> None:
    """A watch stored by an older version or by hand (an interval of 1 ns would poll in a loop)."""
    from store.snapshots import CorruptRecord

    with pytest.raises(CorruptRecord):
        WatchMeta.from_json(raw, "sh:meta[x]")


async def test_a_batch_reads_each_watch_as_stored_now(redis: aioredis.Redis) -> None:
    """Store.load keeps watches decoded by their stored bytes: a watch changed since is read
    as it is now, and an unreadable one stays unreadable on every load."""
    store = Store(redis)
    a, b = "artistree:order:a", "artistree:order:b"
    await store.add_watches([(a, WatchMeta(interval=60)), (b, WatchMeta(interval=60))])
    await redis.hset(keys.META, "artistree:order:poison", b'{"i": 1e-9}')
    first = await store.load([a, b, "artistree:order:poison"])
    assert first.metas[:2] == [WatchMeta(interval=60), WatchMeta(interval=60)] and first.metas[2] is None
    await redis.hset(keys.META, a, WatchMeta(interval=5, stall_after={"*": 30.0}).to_json())
    again = await store.load([a, b, "artistree:order:poison"])
    assert again.metas == [WatchMeta(interval=5, stall_after={"*": 30.0}), WatchMeta(interval=60), None]
    assert again.corrupt == {"artistree:order:poison"}
    assert int(await redis.hget(keys.STATS, "corrupt_records")) == 2
