"""The whole path of a change, against real Redis and real HTTP servers on loopback:
simulator → poll → diff → commit → outbox → dispatcher → delivery → webhook receiver."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis

import providers
from config import Config
from model.resources import ResourceRef
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from store.snapshots import Store, WatchMeta
from tasks.poll import Poller, PollOutcome
from tests.conftest import wait_for
from tests.kit import WHSEC, outbox_len, running_worker, write_config


def artistree_block(sim: Simulator) -> dict[str, Any]:
    return {
        "base_url": sim.url("artistree"),
        "token_url": sim.url("artistree") + "/oauth2/token",
        "client_id": "sim-client",
        "client_secret": "sim-secret",
    }


def make_config(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, ids: list[str], **extra: Any
) -> Config:
    schedule = extra.pop("retry_schedule", [0.05, 0.05, 0.05])
    return write_config(
        tmp_path / "statehook.toml",
        redis_url=redis_url,
        providers={"artistree": artistree_block(sim)},
        watches=[{"provider": "artistree", "ids": ids, "interval": "0.2s"}] if ids else [],
        destinations={
            "hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC, "retry_schedule": schedule,
                     "jitter": 0.0},
        },
        routes=[{"to": ["hook"]}],
        **extra,
    )


@contextlib.asynccontextmanager
async def poller_for(config: Config, redis: aioredis.Redis) -> AsyncIterator[Poller]:
    async with aiohttp.ClientSession() as session:
        provs = {n: providers.REGISTRY[n](s, session) for n, s in config.providers.items()}
        yield Poller(Store(redis), provs)


async def test_state_transitions_are_delivered_in_order_and_signed(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    order = sim["artistree"].add_order(state="In Progress", title="Poster v3")
    oid = order["order_id"]
    config = make_config(tmp_path, redis_url, sim, receiver, [oid])
    rkey = ResourceRef("artistree", "order", oid).key

    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="baseline poll")
        sim["artistree"].set_state(oid, "Action Required")
        await wait_for(lambda: len(receiver.delivered) >= 1, what="first delivery")
        sim["artistree"].set_state(oid, "Human Certified")
        await wait_for(lambda: len(receiver.delivered) >= 2, what="second delivery")

    events = [r.event for r in receiver.delivered]
    assert [(e["data"]["from"], e["data"]["to"]) for e in events] == [
        ("In Progress", "Action Required"),
        ("Action Required", "Human Certified"),
    ]
    assert all(e["type"] == "artistree.order.state_changed" for e in events)
    assert events[0]["seq"] < events[1]["seq"]
    assert events[0]["severity"] == "critical" and events[1]["severity"] == "info"
    assert all(r.verified and r.webhook_id == r.event["id"] for r in receiver.delivered)
    assert len(receiver.received) == 2  # the baseline was not an event


async def test_rotating_presigned_urls_is_not_a_change(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order()["order_id"]
    config = make_config(tmp_path, redis_url, sim, receiver, [])
    rkey = ResourceRef("artistree", "order", oid).key
    async with poller_for(config, redis) as poller:
        await poller.store.add_watches([(rkey, WatchMeta(interval=60))])
        assert (await poller.poll([rkey]))[PollOutcome.BASELINE] == 1
        for _ in range(5):
            sim["artistree"].rotate_presigned_urls(oid)
            assert (await poller.poll([rkey]))[PollOutcome.UNCHANGED] == 1
    assert await outbox_len(redis) == 0


async def test_event_committed_before_a_crash_is_delivered_by_the_next_worker(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    """Two events reach the outbox while no worker runs; one was even read by a consumer
    that died before acknowledging it. The next worker delivers both."""
    a = sim["artistree"].add_order()["order_id"]
    b = sim["artistree"].add_order()["order_id"]
    config = make_config(tmp_path, redis_url, sim, receiver, [], worker={"reclaim_idle": "0.2s"})
    rkeys = [ResourceRef("artistree", "order", x).key for x in (a, b)]
    async with poller_for(config, redis) as poller:
        await poller.store.add_watches([(k, WatchMeta(interval=3600)) for k in rkeys])
        await poller.poll(rkeys)
        sim["artistree"].set_state(a, "Failed")
        sim["artistree"].set_state(b, "Failed")
        assert (await poller.poll(rkeys))[PollOutcome.CHANGED] == 2
    assert await outbox_len(redis) == 2
    # a consumer reads one entry and dies without XACK
    await redis.xgroup_create(keys.OUTBOX, keys.GROUP, id="0")
    await redis.xreadgroup(keys.GROUP, "dead-worker", {keys.OUTBOX: ">"}, count=1)

    async with running_worker(config):
        await wait_for(lambda: len(receiver.delivered) == 2, what="both events delivered")
    assert {r.event["resource"]["id"] for r in receiver.delivered} == {a, b}


async def test_transient_failures_are_retried_with_the_same_webhook_id(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order()["order_id"]
    config = make_config(tmp_path, redis_url, sim, receiver, [oid])
    receiver.script = [500, 500]
    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, ResourceRef("artistree", "order", oid).key))
        sim["artistree"].set_state(oid, "Failed")
        await wait_for(lambda: len(receiver.delivered) == 1, what="delivery after two 500s")
    (wid,) = receiver.attempts
    assert receiver.attempts[wid] == 3
    assert receiver.delivered[0].webhook_id == wid
    assert await redis.xlen(keys.DLQ) == 0


async def test_a_400_is_dead_lettered_with_status_and_reason(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order()["order_id"]
    config = make_config(tmp_path, redis_url, sim, receiver, [oid])
    receiver.script = [400]
    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, ResourceRef("artistree", "order", oid).key))
        sim["artistree"].set_state(oid, "Unsupported File")
        await wait_for(lambda: redis.xlen(keys.DLQ), what="a dead letter")
    ((_, fields),) = await redis.xrange(keys.DLQ)
    assert fields[b"status"] == b"400"
    assert b"scripted 400" in fields[b"reason"]
    assert fields[b"destination"] == b"hook"
    assert orjson.loads(fields[b"event"])["data"]["to"] == "Unsupported File"
    assert sum(receiver.attempts.values()) == 1


async def test_exhausted_retries_are_dead_lettered(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order()["order_id"]
    config = make_config(tmp_path, redis_url, sim, receiver, [oid], retry_schedule=[0.05, 0.05])
    receiver.script = [503, 503, 503, 503]
    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, ResourceRef("artistree", "order", oid).key))
        sim["artistree"].set_state(oid, "Failed")
        await wait_for(lambda: redis.xlen(keys.DLQ), what="a dead letter")
    (_, fields), = await redis.xrange(keys.DLQ)
    assert fields[b"attempts"] == b"3"
    assert fields[b"reason"].startswith(b"gave up after 3 attempts")


async def test_two_workers_deliver_every_event_exactly_once(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    ids = [sim["artistree"].add_order()["order_id"] for _ in range(30)]
    config = make_config(tmp_path, redis_url, sim, receiver, ids)
    rkeys = [ResourceRef("artistree", "order", i).key for i in ids]

    async def all_baselined() -> bool:
        return all(await redis.hmget(keys.STATE, rkeys))

    async with running_worker(config), running_worker(config):
        await wait_for(all_baselined, what="baselines")
        for oid in ids:
            sim["artistree"].set_state(oid, "Action Required")
        await wait_for(lambda: len(receiver.delivered) >= 30, what="30 deliveries")
        for oid in ids:
            sim["artistree"].set_state(oid, "Human Certified")
        await wait_for(lambda: len(receiver.delivered) >= 60, what="60 deliveries")
    counts = receiver.unique_ids()
    assert len(counts) == 60
    assert max(counts.values()) == 1


async def test_the_dispatcher_recovers_when_redis_loses_its_data(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order()["order_id"]
    config = make_config(tmp_path, redis_url, sim, receiver, [oid])
    rkey = ResourceRef("artistree", "order", oid).key
    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="baseline poll")
        await redis.flushall()  # a Redis restarted without persistence
        async with poller_for(config, redis) as poller:
            await poller.store.add_watches([(rkey, WatchMeta(interval=0.2))])
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="a new baseline")
        sim["artistree"].set_state(oid, "Failed")
        await wait_for(lambda: len(receiver.delivered) == 1, what="delivery after the data loss")
