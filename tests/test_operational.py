"""Operational events against a real Redis: in the outbox, throttled, one per transition."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from model.events import Event, Severity
from model.operational import PROVIDER_RECOVERED, PROVIDER_UNHEALTHY, Subject
from store import keys
from store.history import note_entry
from store.operational import OperationalEvents
from store.timeline import TimelineWriter
from tests.kit import timeline


async def _outbox(redis: aioredis.Redis) -> list[Event]:
    return [Event.from_json(f[b"e"]) for _id, f in await redis.xrange(keys.OUTBOX)]


async def test_a_condition_emits_once_per_transition(redis: aioredis.Redis) -> None:
    ops, rev = OperationalEvents(redis, history_length=50), Subject("provider", "rev")
    for _ in range(3):  # three workers, or three failed polls, see it
        await ops.enter("unhealthy", rev, PROVIDER_UNHEALTHY, severity=Severity.CRITICAL, summary="rev refuses",
                        data={"reason": "401"})
    assert await ops.leave("unhealthy", rev, PROVIDER_RECOVERED, summary="rev answers") is not None
    assert await ops.leave("unhealthy", rev, PROVIDER_RECOVERED, summary="rev answers") is None
    await ops.enter("unhealthy", rev, PROVIDER_UNHEALTHY, severity=Severity.CRITICAL, summary="again")
    events = await _outbox(redis)
    assert [e.type for e in events] == [PROVIDER_UNHEALTHY, PROVIDER_RECOVERED, PROVIDER_UNHEALTHY]
    assert [e.seq for e in events] == [1, 2, 3] and len({e.id for e in events}) == 3
    assert events[0].data == {"reason": "401"} and events[0].resource["key"] == "statehook:provider:rev"
    assert len(await timeline(redis, rev.key)) == 3


async def test_the_throttle_holds_repeats(redis: aioredis.Redis) -> None:
    ops, dest = OperationalEvents(redis, history_length=50, throttle=60), Subject("destination", "hook")
    sent = [await ops.emit("statehook.destination.disabled", dest, severity=Severity.WARNING, summary="410")
            for _ in range(3)]
    assert sum(e is not None for e in sent) == 1


async def test_a_note_joins_the_timeline_kept_to_its_length(redis: aioredis.Redis) -> None:
    writer = TimelineWriter(redis)
    for at in (1.0, 2.0, 3.0):
        async with redis.pipeline(transaction=True) as pipe:
            entry = note_entry("acknowledged", at, "by ops", seq=0, event_id="", data={})
            await writer.queue(pipe, "rev:order:1", entry, 2)
            await pipe.execute()
    assert [orjson.loads(e)[1] for e in await timeline(redis, "rev:order:1")] == [3, 2]
