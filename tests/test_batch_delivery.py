"""Delivery batches (tasks/batch_delivery.py) against real Redis and a real HTTP endpoint:
each event sent once however often its batch runs, order kept per resource, failures and
what a deadline or a cancel left undone handed over to jobs of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from model.events import Event
from model.outcomes import Delivered, TransientFailure
from notifiers.base import NotifierContext
from notifiers.webhook import WebhookNotifier, WebhookSettings
from store import keys
from store.rates import RateSchedule
from store.slack import SlackThreads
from tasks.batch_delivery import BatchResult, deliver_batch, group_by_resource
from tests.conftest import wait_for
from tests.kit import WHSEC, telling_deliveries
from tests.test_webhook_delivery import FAST, Endpoint, endpoint, failed

__all__ = ["endpoint"]  # the fixture, imported for the tests below


def test_events_are_chained_per_resource_in_outbox_order() -> None:
    items = [("e1", "a", 1), ("e2", "b", 2), ("e3", "a", 3), ("e4", "c", 4), ("e5", "b", 5)]
    assert group_by_resource(items) == [[("e1", 1), ("e3", 3)], [("e2", 2), ("e5", 5)], [("e4", 4)]]


@pytest.fixture
async def hook(endpoint: Endpoint, redis: aioredis.Redis) -> AsyncIterator[WebhookNotifier]:
    async with aiohttp.ClientSession() as session:
        settings = WebhookSettings(url=endpoint.url, secret=WHSEC, **FAST)  # type: ignore[arg-type]
        yield WebhookNotifier("hook", settings, NotifierContext(session, RateSchedule(redis), SlackThreads(redis)))


class HandOvers:
    """A DeliveryQueue that records the `deliver` jobs a batch hands its events over to:
    (event id, retry in seconds or None for a first attempt)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, float | None]] = []

    async def deliver(self, event_id: str, event_json: bytes, destination: str, *, attempts_before: int = 0,
                      defer_s: float | None = None) -> bool:
        assert destination == "hook" and Event.from_json(event_json).id == event_id
        assert attempts_before == (0 if defer_s is None else 1)  # a retry follows the first attempt
        self.items.append((event_id, defer_s))
        return True

    async def deliver_events(self, event_ids: Sequence[str], events_json: Sequence[bytes], destination: str) -> bool:
        raise AssertionError("a batch hands events over one by one")


async def run(redis: aioredis.Redis, hook: WebhookNotifier, events: list[Event], handed: HandOvers,
              deadline_s: float = 30, owner: str = "batch-1") -> BatchResult:
    deliveries = telling_deliveries(redis)
    return await deliver_batch(deliveries, hook, "hook", [e.to_json() for e in events], handed, owner=owner,
                               concurrency=8, deadline_s=deadline_s, keep_mark_s=60)


def ids_received(endpoint: Endpoint) -> list[str]:
    return [orjson.loads(r.body)["id"] for r in endpoint.requests]


async def test_a_batch_that_runs_twice_sends_each_event_once(
    redis: aioredis.Redis, hook: WebhookNotifier, endpoint: Endpoint
) -> None:
    events = [failed(rid=f"ord-{i}") for i in range(20)]
    handed = HandOvers()
    first = await run(redis, hook, events, handed)
    again = await run(redis, hook, events, handed, owner="batch-2")  # the same events, reclaimed
    assert (first.delivered, first.skipped) == (20, 0)
    assert (again.delivered, again.skipped) == (0, 20)
    assert sorted(ids_received(endpoint)) == sorted(e.id for e in events)
    assert handed.items == []
    assert await redis.hget(keys.STATS, "deliveries:hook:ok") == b"20"


async def test_events_of_one_resource_arrive_in_order(
    redis: aioredis.Redis, hook: WebhookNotifier, endpoint: Endpoint
) -> None:
    events = [failed(rid="ord-1", seq=s) for s in range(1, 11)] + [failed(rid="ord-2", seq=s) for s in (1, 2, 3)]
    endpoint.script = [(204, {}, 0.02)] * 5  # the first answers are slow: order must not depend on speed
    await run(redis, hook, events, HandOvers())
    got = ids_received(endpoint)
    assert [i for i in got if "_ord-1_" in i] == [e.id for e in events[:10]]
    assert [i for i in got if "_ord-2_" in i] == [e.id for e in events[10:]]


async def test_a_failed_first_attempt_is_handed_over_with_its_retry_delay(
    redis: aioredis.Redis, hook: WebhookNotifier, endpoint: Endpoint
) -> None:
    events = [failed(rid="ord-1"), failed(rid="ord-2")]
    endpoint.script = [(503, {}, 0.0)]
    handed = HandOvers()
    result = await run(redis, hook, events[:1], handed)
    result2 = await run(redis, hook, events[1:], handed)
    assert (result.delivered, result.handed_over, result2.delivered) == (0, 1, 1)
    assert handed.items == [(events[0].id, FAST["retry_schedule"][0])]
    (attempt,) = [orjson.loads(a) for a in await redis.lrange(keys.attempts(events[0].id), 0, -1)]
    assert (attempt["attempt"], attempt["status"], attempt["ok"]) == (1, 503, False)


async def test_what_the_deadline_cut_off_is_handed_over_for_a_first_attempt(
    redis: aioredis.Redis, hook: WebhookNotifier, endpoint: Endpoint
) -> None:
    events = [failed(rid="ord-1", seq=s) for s in (1, 2, 3)]  # one chain: one at a time
    endpoint.script = [(204, {}, 0.0), (204, {}, 1.5)]
    handed = HandOvers()
    result = await run(redis, hook, events, handed, deadline_s=0.5)
    assert result.delivered == 1
    assert handed.items == [(events[1].id, None), (events[2].id, None)]


async def test_a_cancelled_batch_releases_what_it_did_not_hand_over(
    redis: aioredis.Redis, hook: WebhookNotifier, endpoint: Endpoint
) -> None:
    events = [failed(rid="ord-1", seq=s) for s in (1, 2, 3)]
    endpoint.script = [(204, {}, 0.0), (204, {}, 1.5)]
    task = asyncio.create_task(run(redis, hook, events, HandOvers()))

    async def second_in_flight() -> bool:
        return len(endpoint.requests) == 2

    await wait_for(second_in_flight, what="the second request")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    marks = [await redis.exists(keys.delivery_mark(e.id, "hook")) for e in events]
    assert marks == [1, 0, 0]
    again = await run(redis, hook, events, HandOvers())  # ARQ runs a cancelled job again
    assert (again.delivered, again.skipped) == (2, 1)


class _NoSchedule:
    """Settings with no retry schedule: scheduling a retry from them is a bug."""

    def send_limit(self) -> None:
        return None


class BuggyNotifier:
    """Fails with a bug (no settings to schedule a retry from) for ord-1; slow for others."""

    settings = _NoSchedule()

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def send(self, event: Event) -> Delivered:
        if event.rkey.endswith(":ord-1"):
            raise TransientFailure("later")
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            self.cancelled.append(event.id)
            raise
        return Delivered(204)


async def test_a_failing_chain_stops_the_others_before_everything_is_handed_over(redis: aioredis.Redis) -> None:
    events = [failed(rid="ord-1"), failed(rid="ord-2")]
    notifier = BuggyNotifier()
    handed = HandOvers()
    deliveries = telling_deliveries(redis)
    result = await deliver_batch(deliveries, notifier, "hook", [e.to_json() for e in events], handed,  # type: ignore[arg-type]
                                 owner="batch-1", concurrency=8, deadline_s=30, keep_mark_s=60)
    assert notifier.cancelled == [events[1].id]  # nothing still in flight once the batch returned
    assert sorted(handed.items) == sorted([(events[0].id, None), (events[1].id, None)])
    assert (result.delivered, result.handed_over) == (0, 2)


async def test_a_rerun_of_the_same_batch_takes_back_the_marks_it_left_behind(
    redis: aioredis.Redis, hook: WebhookNotifier, endpoint: Endpoint
) -> None:
    """Marks left leased (Redis failed before the batch could settle them) do not hold
    the events back from the re-run of the same batch job; another batch still skips them."""
    events = [failed(rid=f"ord-{i}") for i in range(3)]
    for e in events:
        await redis.set(keys.delivery_mark(e.id, "hook"), "batch-1", ex=60)
    other = await run(redis, hook, events, HandOvers(), owner="batch-2")
    rerun = await run(redis, hook, events, HandOvers(), owner="batch-1")
    assert (other.delivered, other.skipped) == (0, 3)
    assert (rerun.delivered, rerun.skipped) == (3, 0)
    assert [await redis.get(keys.delivery_mark(e.id, "hook")) for e in events] == [b"done"] * 3
