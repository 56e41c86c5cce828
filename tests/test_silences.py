"""Silences against a real Redis: the dispatcher mutes exactly what an active silence matches
(other destinations and other events still go), on time by its clock, with a `silenced`
note in the resource's timeline and the count in /metrics; a silence made or expired
elsewhere reaches a running dispatcher at its next read. The CLI's and the API's preview and
refusals are in tests/test_silence_commands.py."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis

from model.routes import Route
from model.silences import Silence, SilenceMatch
from store import keys
from store.history import read_history_entry
from store.silences import SilenceStore, new_silence_id
from tests.kit import timeline as stored_timeline
from tests.test_routes import Clock, deliveries, event, publish
from worker.metrics import render
from worker.queue import dispatcher_for

T0 = 1_795_428_000.0
ROUTES = [Route.model_validate({"name": "all", "to": ["slack", "mail"]})]


async def add_silence(redis: aioredis.Redis, match: dict[str, Any], *, starts: float = T0,
                      ends: float = T0 + 3600) -> Silence:
    silence = Silence(id=new_silence_id(), match=SilenceMatch.model_validate(match), starts_at=starts, ends_at=ends,
                      author="ops", comment="deploy", created_at=starts)
    await SilenceStore(redis).put(silence, T0)
    return silence


async def timeline(redis: aioredis.Redis, rkey: str) -> list[dict[str, Any]]:
    return [read_history_entry(raw, rkey) for raw in await stored_timeline(redis, rkey)]


def silenced_lines(metrics: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith("statehook_silenced_total")]


async def test_a_silence_mutes_only_the_deliveries_it_matches(arq: ArqRedis) -> None:
    silence = await add_silence(arq, {"provider": "artistree", "state": "failed", "destination": "slack"})
    d = dispatcher_for(arq, ROUTES, "t", enabled_destinations={"slack", "mail"}, clock=Clock(T0 + 10))
    await d.ensure_group()
    failed = event("artistree.order.state_changed", "critical", to="Failed", rid="ord-1")
    reviewed = event("artistree.order.state_changed", "info", to="Reviewed", rid="ord-2")
    rev = event("rev.order.state_changed", "critical", to="Failed", rid="TC1")
    await publish(arq, failed, reviewed, rev)
    await d.step()
    got = [(dest, e["id"]) for dest, e in await deliveries(arq)]
    assert got == sorted([("mail", failed.id), ("mail", reviewed.id), ("slack", reviewed.id),
                          ("mail", rev.id), ("slack", rev.id)])
    (note,) = await timeline(arq, failed.rkey)
    assert note["type"] == "silenced" and note["id"] == failed.id
    assert note["note"] == {"silence": silence.id, "destination": "slack"}
    assert await timeline(arq, reviewed.rkey) == [] and await timeline(arq, rev.rkey) == []
    assert silenced_lines((await render(arq)).decode()) == ['statehook_silenced_total{destination="slack"} 1.0']


async def test_a_silence_starts_and_expires_on_time_by_the_clock(arq: ArqRedis) -> None:
    await add_silence(arq, {"type": "*.reviewed"}, starts=T0 + 60, ends=T0 + 120)
    clock = Clock(T0)
    d = dispatcher_for(arq, ROUTES, "t", enabled_destinations={"slack", "mail"}, clock=clock)
    await d.ensure_group()
    assert d.mutes is not None
    for seq, now in enumerate((T0 + 59, T0 + 60, T0 + 119.5, T0 + 120), start=1):
        clock.now = now
        await publish(arq, event("artistree.order.reviewed", seq=seq))
        await d.step()
    sent = {e["seq"] for _, e in await deliveries(arq)}
    assert sent == {1, 4}  # pending before its start, expired at its end; muted in between
    assert d.mutes.stores.silences.loads == 1  # the clock did it: the silences were read once
    assert [n["note"]["destination"] for n in await timeline(arq, "artistree:order:ord-1")] == [
        "mail", "slack", "mail", "slack"]
    assert silenced_lines((await render(arq)).decode()) == ['statehook_silenced_total{destination="mail"} 2.0',
                                                            'statehook_silenced_total{destination="slack"} 2.0']


async def test_a_silence_made_or_expired_elsewhere_reaches_a_running_dispatcher(arq: ArqRedis) -> None:
    clock = Clock(T0 + 1)
    d = dispatcher_for(arq, ROUTES, "t", enabled_destinations={"slack", "mail"}, clock=clock)
    await d.ensure_group()
    await publish(arq, event("rev.order.attachment_added", rid="TC1", seq=1))
    await d.step()
    silence = await add_silence(arq, {"rkey": "rev:order:TC1"})  # by the API, another process
    await publish(arq, event("rev.order.attachment_added", rid="TC1", seq=2))
    await d.step()
    store = SilenceStore(arq)
    await store.put(silence.model_copy(update={"ends_at": clock.now}), clock.now)  # expired by the CLI
    clock.now += 1
    await publish(arq, event("rev.order.attachment_added", rid="TC1", seq=3))
    await d.step()
    assert sorted(e["seq"] for _, e in await deliveries(arq)) == [1, 1, 3, 3]


async def test_an_unreadable_silence_is_left_out_and_the_rest_apply(arq: ArqRedis) -> None:
    await arq.hset(keys.SILENCES, "sil_broken", b"{not json")  # type: ignore[misc]
    await add_silence(arq, {"destination": "mail"})
    d = dispatcher_for(arq, ROUTES, "t", enabled_destinations={"slack", "mail"}, clock=Clock(T0 + 1))
    await d.ensure_group()
    await publish(arq, event("rev.order.attachment_added", rid="TC1"))
    await d.step()
    assert [dest for dest, _ in await deliveries(arq)] == ["slack"]


async def test_every_routed_event_is_kept_for_previews(arq: ArqRedis) -> None:
    from store.recent import RecentEvents

    d = dispatcher_for(arq, [*ROUTES, Route.model_validate({"match": {"provider": "rev"}, "to": ["pager"]})], "t",
                       enabled_destinations={"slack", "mail"}, clock=Clock(T0))
    await d.ensure_group()
    await publish(arq, event("rev.order.attachment_added", rid="TC1", tags=("x",), project="P"),
                  event("artistree.order.state_changed", "critical", to="Failed"))
    await d.step()
    found = [f async for f in RecentEvents(arq).since()]
    assert [(f.rkey, f.destinations, f.state) for f in found] == [
        ("rev:order:TC1", ("slack", "mail"), None),  # pager is not enabled: not a destination
        ("artistree:order:ord-1", ("slack", "mail"), "Failed")]
    assert found[0].tags == ("x",) and found[0].project == "P" and found[0].resource_id == "TC1"


async def test_a_silence_mutes_reminders_like_any_event(arq: ArqRedis) -> None:
    from model.events import Event

    await add_silence(arq, {"rkey": "artistree:order:ord-1"})
    routes = [Route.model_validate({"name": "page", "to": ["pager"], "repeat_every": "1h"})]
    d = dispatcher_for(arq, routes, "t", enabled_destinations={"pager"}, clock=Clock(T0 + 1))
    await d.ensure_group()
    failed = event("artistree.order.state_changed", "critical", to="Failed")
    reminder = Event.from_dict({**failed.as_dict(), "id": failed.id + "_r1", "data": {**failed.data, "reminder": 1}})
    await publish(arq, reminder)
    await d.step()
    assert await deliveries(arq) == []
    assert [n["id"] for n in await timeline(arq, failed.rkey)] == [reminder.id]
