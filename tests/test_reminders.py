"""Reminders and acknowledgement against a real Redis, with a test clock for the periodic
step (no sleeping through periods): reminders repeat with n increasing, stop on a change of
state, on an ack (store, CLI and API), when the resource is gone, unwatched or its state
record lost; one per period however many workers' steps race; and the whole way through a
worker, the simulator and a real webhook receiver."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from arq.connections import ArqRedis
from typer.testing import CliRunner, Result

from config import Config
from core.route import route_key
from model.events import Event
from model.resources import ResourceRef
from model.routes import Route
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from store.reminders import AckResult, Fired, Reminders
from store.stats import parse_stats
from tasks.reminders import ReminderStep
from tests import test_api
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker, timeline, write_config
from tests.test_api import AUTH, api_config, call, serving
from tests.test_routes import Clock, deliveries, event, publish
from worker.cli import app
from worker.queue import dispatcher_for

sim_providers = test_api.sim_providers

T0 = 1_795_428_000.0
HOUR = 3600.0
PAGE = Route.model_validate({"name": "page", "match": {"severity": "critical"}, "to": ["pager"],
                             "repeat_every": "1h"})
PAGE_KEY = route_key(PAGE)
STATE_CHANGED = "artistree.order.state_changed"


def failed(rid: str = "ord-1", seq: int = 1, to: str = "Failed") -> Event:
    return event(STATE_CHANGED, "critical", to=to, rid=rid, seq=seq)


def moved(rid: str = "ord-1", seq: int = 2, to: str = "Human Certified") -> Event:
    return event(STATE_CHANGED, "info", to=to, rid=rid, seq=seq)


async def watched(redis: aioredis.Redis, *rkeys: str) -> None:
    """What a watched, polled resource has in Redis that the reminders look at."""
    for rkey in rkeys:
        await redis.hset(keys.META, rkey, b'{"i": 60.0}')
        await redis.hset(keys.STATE, rkey, "d|1|0")


async def raised(rem: Reminders, ev: Event, *, route: str = PAGE_KEY, destination: str = "pager",
                 now: float = T0) -> None:
    """What the dispatcher does for a critical event delivered through a repeating route."""
    await rem.seen(ev)
    await rem.arm(ev, route, destination, HOUR, now)


async def outbox(redis: aioredis.Redis) -> list[Event]:
    return [Event.from_json(f[b"e"]) for _id, f in await redis.xrange(keys.OUTBOX)]


async def notes(redis: aioredis.Redis, rkey: str, kind: str) -> list[list[Any]]:
    return [e for e in (orjson.loads(raw) for raw in await timeline(redis, rkey)) if e[2] == kind]


async def test_reminders_repeat_with_n_increasing_until_the_state_changes(redis: aioredis.Redis) -> None:
    rem, clock = Reminders(redis), Clock(T0)
    ev = failed()
    await watched(redis, ev.rkey)
    await raised(rem, ev)
    step = ReminderStep(rem, [PAGE], clock=clock)
    clock.now = T0 + HOUR - 1
    assert await step.step() == Counter()
    for n, at in enumerate([T0 + HOUR, T0 + 2 * HOUR + 30, T0 + 3 * HOUR + 1], start=1):
        clock.now = at
        assert await step.step() == Counter({Fired.SENT: 1})
        assert await step.step() == Counter()  # once per period
        (armed,) = await rem.armed(ev.rkey)
        assert armed.sent == n and armed.due == T0 + (n + 1) * HOUR  # on the grid, even when a step is late
    sent = await outbox(redis)
    assert [e.data["reminder"] for e in sent] == [1, 2, 3]
    assert len({e.id for e in sent} | {ev.id}) == 4
    assert all(e.type == ev.type and e.rkey == ev.rkey and e.data["to"] == "Failed" for e in sent)
    assert {e.data["reminder_destination"] for e in sent} == {"pager"} and sent[0].data["reminder_of"] == ev.id
    assert [n[6]["reminder"] for n in await notes(redis, ev.rkey, "reminder")] == [3, 2, 1]
    assert parse_stats({k.decode(): int(v) for k, v in (await redis.hgetall(keys.STATS)).items()}).reminders == {
        "pager": 3}

    await rem.seen(moved())  # Failed -> Human Certified
    assert await rem.armed(ev.rkey) == []
    clock.now = T0 + 10 * HOUR
    assert await step.step() == Counter()
    assert len(await outbox(redis)) == 3


async def test_an_ack_stops_the_reminders_of_the_current_state_and_is_in_the_timeline(
        redis: aioredis.Redis) -> None:
    rem, clock = Reminders(redis), Clock(T0 + HOUR)
    ev = failed()
    await watched(redis, ev.rkey)
    await raised(rem, ev)
    await raised(rem, ev, destination="mail")
    step = ReminderStep(rem, [PAGE.model_copy(update={"to": ["pager", "mail"]})], clock=clock)
    assert await step.step() == Counter({Fired.SENT: 2})

    result = await rem.ack(ev.rkey, author="ana", comment="on it", now=T0 + HOUR + 60)
    assert (result.known, result.state, result.stopped) == (True, "Failed", 2)
    (note,) = await notes(redis, ev.rkey, "acknowledged")
    assert note[4] == "acknowledged by ana: on it" and note[5] == ev.id
    assert note[6] == {"author": "ana", "comment": "on it", "state": "Failed", "reminders": 2}
    clock.now = T0 + 5 * HOUR
    assert await step.step() == Counter()

    again = await rem.ack(ev.rkey, author="bo", comment="", now=T0 + 5 * HOUR)
    assert again.state is None and again.previous is not None and again.previous.author == "ana"
    await raised(rem, failed(seq=3), now=T0 + 5 * HOUR)  # another critical event in the acknowledged state
    assert await rem.armed(ev.rkey) == []
    await rem.seen(moved(seq=4, to="In Progress"))  # a change forgets the ack
    await raised(rem, failed(seq=5), now=T0 + 6 * HOUR)  # and a later critical state arms again
    (armed,) = await rem.armed(ev.rkey)
    assert armed.state == "Failed" and armed.seq == 5
    assert await rem.ack("artistree:order:unknown", author="ana", comment="", now=T0) == AckResult(known=False)


async def test_two_workers_steps_racing_send_one_reminder_per_period(redis_url: str, redis: aioredis.Redis) -> None:
    clients = [aioredis.from_url(redis_url) for _ in range(2)]
    try:
        clock = Clock(T0)
        stores = [Reminders(c) for c in clients]
        steps = [ReminderStep(s, [PAGE], clock=clock, limit=7) for s in stores]
        evs = [failed(rid=f"ord-{i}") for i in range(40)]
        await watched(redis, *(e.rkey for e in evs))
        for e in evs:
            await raised(stores[0], e)
        for period in (1, 2, 3):
            clock.now = T0 + period * HOUR + 1
            results = await asyncio.gather(*(s.step() for s in steps for _ in range(3)))
            assert sum(r[Fired.SENT] for r in results) == 40
            assert all(r[Fired.SENT] < 40 for r in results[:2])  # both workers took part
        sent = Counter((e.rkey, e.data["reminder"]) for e in await outbox(redis))
        assert set(sent.values()) == {1} and len(sent) == 120
    finally:
        for c in clients:
            await c.aclose()


async def test_an_event_with_a_to_that_is_no_state_leaves_the_reminder_armed(redis: aioredis.Redis) -> None:
    """A Failed order's confidence changed in the same poll (`data.to = 0.41`): the reminder was
    disarmed as if the order had moved to a state "0.41" (found by a fresh-user trial)."""
    rem = Reminders(redis)
    ev = failed()
    await watched(redis, ev.rkey)
    await raised(rem, ev)
    confidence = event("artistree.order.confidence_changed", "info", rid="ord-1", seq=2)
    confidence = Event.from_dict({**confidence.as_dict(), "data": {"from": 0.93, "to": 0.41}})
    assert confidence.target_state is None
    await rem.seen(confidence)
    step = ReminderStep(rem, [PAGE], clock=Clock(T0 + HOUR))
    assert await step.step() == Counter({Fired.SENT: 1})  # still armed in Failed: reminded


async def test_a_claim_left_by_a_dead_step_is_sent_once_by_another(redis: aioredis.Redis) -> None:
    rem = Reminders(redis, lease=30)
    ev = failed()
    await watched(redis, ev.rkey)
    await raised(rem, ev)
    (dead,) = await rem.claim(T0 + HOUR)  # a step claims it, then its worker dies
    assert await rem.claim(T0 + HOUR + 10) == []  # nobody else takes it meanwhile
    step = ReminderStep(rem, [PAGE], clock=Clock(T0 + HOUR + 31))
    assert await step.step() == Counter({Fired.SENT: 1})  # after the lease, another does
    assert not isinstance(dead, str)
    late = await rem.fire(dead, (await outbox(redis))[0], next_due=T0 + 2 * HOUR, now=T0 + HOUR + 40)
    assert late is Fired.RACED  # the dead step's claim, were it to come back, sends nothing
    assert len(await outbox(redis)) == 1


async def test_a_reminder_sent_after_a_dead_step_keeps_the_rhythm_of_its_grid(redis: aioredis.Redis) -> None:
    rem = Reminders(redis, lease=30)
    ev = failed()
    await watched(redis, ev.rkey)
    await raised(rem, ev)
    (dead,) = await rem.claim(T0 + HOUR)  # due at T0 + HOUR; its step dies
    assert not isinstance(dead, str)
    (taken,) = await rem.claim(dead.due + 31)  # the lease ran out: another step takes it
    assert not isinstance(taken, str)
    assert taken.due == dead.due  # the due time it was claimed at, not the lease's end
    step = ReminderStep(rem, [PAGE], clock=Clock(dead.due + 31))
    await redis.zadd(keys.REMINDER_DUE, {dead.member: dead.due + 31})  # due again, as the lease left it
    assert await step.step() == Counter({Fired.SENT: 1})
    (entry,) = await redis.zrange(keys.REMINDER_DUE, 0, -1, withscores=True)
    assert entry[1] == dead.due + HOUR  # the next on the grid: the rhythm did not move by the lease
    (again,) = await rem.claim(dead.due + HOUR)
    assert not isinstance(again, str) and again.due == dead.due + HOUR  # a send moved the claimed time on


async def test_an_order_found_by_a_scan_is_reminded_while_its_scan_is_watched(redis: aioredis.Redis) -> None:
    """An order of a scan has no watch of its own: its reminder lasts while the scan does
    (it was disarmed as unwatched at its first due time)."""
    rem = Reminders(redis)
    scan = "artistree:scan:project_id=P1"
    found = event(STATE_CHANGED, "critical", to="Failed", rid="in-scan")
    found = Event.from_dict({**found.as_dict(), "resource": {**found.resource, "scan": scan}})
    await redis.hset(keys.META, scan, b'{"i": 60.0, "s": {"project_id": "P1"}}')
    await redis.hset(keys.STATE, found.rkey, "d|1|0")  # polled through the scan: a state, no meta
    await raised(rem, found)
    step = ReminderStep(rem, [PAGE], clock=Clock(T0 + HOUR))
    assert await step.step() == Counter({Fired.SENT: 1})
    await redis.hdel(keys.META, scan)  # the scan is no longer watched
    step = ReminderStep(rem, [PAGE], clock=Clock(T0 + 2 * HOUR))
    assert await step.step() == Counter({Fired.UNWATCHED: 1})


async def test_reminders_stop_for_a_resource_gone_unwatched_or_without_its_state(redis: aioredis.Redis) -> None:
    rem = Reminders(redis)
    gone, unwatched, lost, kept = (failed(rid=r) for r in ("gone", "unwatched", "lost", "kept"))
    await watched(redis, gone.rkey, unwatched.rkey, lost.rkey, kept.rkey)
    for e in (gone, unwatched, lost, kept):
        await raised(rem, e)
    await rem.seen(event("artistree.order.gone", "warning", rid="gone", seq=2))
    await redis.hdel(keys.META, unwatched.rkey)
    await redis.hdel(keys.STATE, lost.rkey)
    step = ReminderStep(rem, [PAGE], clock=Clock(T0 + HOUR))
    assert await step.step() == Counter({Fired.SENT: 1, Fired.UNWATCHED: 1, Fired.LOST: 1})
    assert [e.rkey for e in await outbox(redis)] == [kept.rkey]
    assert [await rem.armed(e.rkey) == [] for e in (gone, unwatched, lost)] == [True, True, True]
    assert await redis.zcard(keys.REMINDER_DUE) == 1


async def test_an_event_read_late_neither_arms_nor_disarms(redis: aioredis.Redis) -> None:
    """An outbox entry a dead worker left is reclaimed after newer ones were handled."""
    rem = Reminders(redis)
    await watched(redis, failed().rkey)
    await rem.seen(moved(seq=6))
    await raised(rem, failed(seq=5))  # Failed came before Human Certified: no reminder
    assert await rem.armed(failed().rkey) == []
    await raised(rem, failed(seq=7))
    await rem.seen(moved(seq=6))  # the old change, read again: changes nothing
    assert [a.seq for a in await rem.armed(failed().rkey)] == [7]
    await rem.seen(event("artistree.order.gone", "warning", seq=8))
    await raised(rem, failed(seq=7))  # gone since
    assert await rem.armed(failed().rkey) == []


async def test_a_critical_event_without_a_state_read_late_arms_nothing(redis: aioredis.Redis) -> None:
    """An error event (no target state) read after a later change: it armed a reminder in
    the state the resource is in now, repeated for as long as it stays there."""
    rem = Reminders(redis)
    await watched(redis, failed().rkey)
    await rem.seen(moved(seq=6))
    error = event("artistree.order.error", "critical", seq=5)
    assert error.target_state is None
    await raised(rem, error)
    assert await rem.armed(error.rkey) == []
    await raised(rem, event("artistree.order.error", "critical", seq=7))  # one after it arms, in that state
    assert [(a.seq, a.state) for a in await rem.armed(error.rkey)] == [(7, "Human Certified")]


async def test_buffered_hooks_write_nothing_until_flushed_then_all_in_order(redis: aioredis.Redis) -> None:
    """For a dispatcher that flushes before it acknowledges a read: one round trip a read."""
    rem = Reminders(redis, buffered=True)
    await watched(redis, failed().rkey)
    await raised(rem, failed(seq=1))
    await rem.seen(moved(seq=2))
    await raised(rem, failed(seq=3, to="Action Required"))
    assert await redis.exists(keys.REMINDER_SEEN, keys.REMINDER_DUE) == 0
    await rem.flush()
    (armed,) = await rem.armed(failed().rkey)
    assert (armed.state, armed.seq) == ("Action Required", 3)  # Failed was armed, then disarmed, in order
    await rem.flush()  # nothing queued: nothing sent
    assert [a.seq for a in await rem.armed(failed().rkey)] == [3]


async def test_a_critical_event_without_a_state_is_armed_in_the_state_it_is_in(redis: aioredis.Redis) -> None:
    rem = Reminders(redis)
    await watched(redis, failed().rkey)
    await rem.seen(failed(seq=1, to="Action Required"))
    error = event("artistree.order.analysis_failed", "critical", seq=2)
    await rem.arm(error, PAGE_KEY, "pager", HOUR, T0)
    (armed,) = await rem.armed(error.rkey)
    assert armed.state == "Action Required"
    await rem.seen(moved(seq=3, to="Reviewed"))
    assert await rem.armed(error.rkey) == []


async def test_a_route_that_left_the_config_or_stopped_repeating_drops_its_reminders(redis: aioredis.Redis) -> None:
    rem = Reminders(redis)
    a, b, c = failed(rid="a"), failed(rid="b"), failed(rid="c")
    await watched(redis, a.rkey, b.rkey, c.rkey)
    await raised(rem, a)
    await raised(rem, b, destination="old-pager")
    await raised(rem, c, route="n-gone")
    routes = [PAGE.model_copy(update={"repeat_every": 600.0})]
    assert await ReminderStep(rem, routes, clock=Clock(T0 + HOUR)).step() == Counter(
        {Fired.SENT: 1, Fired.DROPPED: 2})
    (armed,) = await rem.armed(a.rkey)
    assert armed.due == T0 + HOUR + 600  # a changed period applies from the next reminder
    await redis.hset(keys.reminder_record(armed.member), "event", b"not json")
    assert await ReminderStep(rem, routes, clock=Clock(T0 + 2 * HOUR)).step() == Counter({Fired.DROPPED: 1})


async def test_the_dispatcher_arms_routes_a_reminder_to_its_destination_and_disarms_on_change(
        arq: ArqRedis) -> None:
    route = Route.model_validate({"name": "page", "match": {"severity": "critical"}, "to": ["pager"],
                                  "repeat_every": "1h"})
    mail = Route.model_validate({"name": "mail", "to": ["mail"]})
    d = dispatcher_for(arq, [route, mail], "t", enabled_destinations={"pager", "mail"}, clock=Clock(T0))
    await d.ensure_group()
    ev = failed()
    await watched(arq, ev.rkey)
    await publish(arq, ev)
    await d.step()
    rem = Reminders(arq)
    (armed,) = await rem.armed(ev.rkey)
    assert (armed.destination, armed.due) == ("pager", T0 + HOUR)
    assert await ReminderStep(rem, [route, mail], clock=Clock(T0 + HOUR)).step() == Counter({Fired.SENT: 1})
    await d.step()
    reminded = [(dest, e["data"]["reminder"]) for dest, e in await deliveries(arq) if "reminder" in e["data"]]
    assert reminded == [("pager", 1)]  # not to the mail route, which does not repeat
    await publish(arq, moved())
    await d.step()
    assert await rem.armed(ev.rkey) == []


# ---- the CLI and the API ----------------------------------------------------------------------


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def test_statehook_ack_stops_the_reminders_in_one_line(tmp_path: Path, redis_url: str,
                                                            redis: aioredis.Redis) -> None:
    cfg = write_config(tmp_path / "statehook.toml", redis_url=redis_url, providers={}, destinations={}, routes=[])
    c = str(cfg.source)
    rem = Reminders(redis)
    ev = failed()
    await watched(redis, ev.rkey)
    await raised(rem, ev)
    result = await cli("ack", ev.rkey, "--comment", "fixing the file", "--author", "ana", "-c", c)
    assert result.exit_code == 0, result.output
    assert result.output == f"acknowledged {ev.rkey} in state 'Failed' by ana: 1 reminder stopped\n"
    assert await rem.armed(ev.rkey) == []
    (note,) = await notes(redis, ev.rkey, "acknowledged")
    assert note[6]["author"] == "ana" and note[6]["comment"] == "fixing the file"
    shown = await cli("show", ev.rkey, "-c", c)
    assert shown.exit_code == 0 and "acknowledged by ana: fixing the file" in shown.output, shown.output

    result = await cli("ack", ev.rkey, "-c", c)
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: nothing to acknowledge: no reminder is armed for {ev.rkey} (its state "
                                     "'Failed' was acknowledged by ana)")
    result = await cli("ack", "artistree:order:nope", "-c", c)
    assert (result.exit_code, result.output.strip()) == (
        1, "error: artistree:order:nope is not watched and was never polled")
    result = await cli("ack", "not-a-key", "-c", c)
    assert result.exit_code == 2 and result.output.startswith("error: ")
    result = await cli("ack", ev.rkey, "--author", " ", "-c", c)
    assert (result.exit_code, result.output.strip()) == (2, "error: the author is empty")


async def test_the_ack_endpoint_answers_200_404_409_and_400(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    rem = Reminders(redis)
    ev = failed()
    await watched(redis, ev.rkey)
    await raised(rem, ev)
    path = f"/v1/resources/{ev.rkey}/ack"
    async with serving(config) as (_, http):
        status, answer = await call(http, "POST", path, json={"comment": "x"})
        assert status == 401 and await rem.armed(ev.rkey) != []
        status, answer = await call(http, "POST", path, headers=AUTH, json={"colour": "red"})
        assert status == 400 and answer["problems"][0]["field"] == "colour"
        status, answer = await call(http, "POST", path, headers=AUTH, json={"comment": "on it", "author": "ana"})
        assert status == 200, answer
        assert {k: answer[k] for k in ("rkey", "state", "stopped", "author", "comment")} == {
            "rkey": ev.rkey, "state": "Failed", "stopped": 1, "author": "ana", "comment": "on it"}
        status, answer = await call(http, "POST", path, headers=AUTH)
        assert status == 409 and answer["error"].startswith("nothing to acknowledge")
        status, answer = await call(http, "POST", "/v1/resources/artistree:order:nope/ack", headers=AUTH)
        assert status == 404
        status, answer = await call(http, "GET", path, headers=AUTH)
        assert status == 405
    assert await rem.armed(ev.rkey) == []
    (note,) = await notes(redis, ev.rkey, "acknowledged")
    assert note[6]["author"] == "ana"


# ---- end to end: simulator -> worker -> webhook receiver ---------------------------------------------


def e2e_config(tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, oid: str) -> Config:
    return write_config(
        tmp_path / "statehook.toml",
        redis_url=redis_url,
        providers={"artistree": test_api.provider_blocks(sim)["artistree"]},
        watches=[{"provider": "artistree", "ids": [oid], "interval": "0.2s"}],
        destinations={"hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC,
                               "retry_schedule": [0.05, 0.05], "jitter": 0.0}},
        routes=[{"name": "page", "match": {"severity": "critical"}, "to": ["hook"], "repeat_every": "1h"},
                {"name": "all", "match": {"severity": ["info", "warning"]}, "to": ["hook"]}],
    )


def received(receiver: WebhookReceiver) -> list[tuple[str | None, int | None]]:
    return [(r.event["data"].get("to"), r.event["data"].get("reminder")) for r in receiver.delivered]


async def test_through_a_worker_reminders_repeat_and_stop_on_change_and_on_ack(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order(state="In Progress", title="Poster v3")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    config = e2e_config(tmp_path, redis_url, sim, receiver, oid)
    rem = Reminders(redis)
    step = ReminderStep(rem, config.routes, clock=lambda: time.time() + offset)
    offset = 0.0

    async def remind_at(hours: float) -> Counter[Fired]:
        nonlocal offset
        offset = hours * HOUR + 1
        return await step.step()

    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="baseline poll")
        sim["artistree"].set_state(oid, "Action Required")
        await wait_for(lambda: len(receiver.delivered) >= 1, what="the critical state")
        assert len(await rem.armed(rkey)) == 1
        assert await remind_at(1) == Counter({Fired.SENT: 1})
        await wait_for(lambda: len(receiver.delivered) >= 2, what="reminder 1")
        assert await remind_at(2) == Counter({Fired.SENT: 1})
        await wait_for(lambda: len(receiver.delivered) >= 3, what="reminder 2")
        assert received(receiver) == [("Action Required", None), ("Action Required", 1), ("Action Required", 2)]

        sim["artistree"].set_state(oid, "In Progress")  # the change stops them
        await wait_for(lambda: len(receiver.delivered) >= 4, what="the change")
        assert await rem.armed(rkey) == [] and await remind_at(5) == Counter()

        sim["artistree"].set_state(oid, "Failed")  # a later critical state arms again
        await wait_for(lambda: len(receiver.delivered) >= 5, what="the second critical state")
        assert await remind_at(1) == Counter({Fired.SENT: 1})
        await wait_for(lambda: len(receiver.delivered) >= 6, what="its reminder")
        assert (await cli("ack", rkey, "--author", "ana", "-c", str(config.source))).exit_code == 0
        assert await remind_at(3) == Counter()
        await asyncio.sleep(0.5)  # nothing more arrives
    assert received(receiver) == [("Action Required", None), ("Action Required", 1), ("Action Required", 2),
                                  ("In Progress", None), ("Failed", None), ("Failed", 1)]
    assert all(r.verified for r in receiver.delivered) and len({r.webhook_id for r in receiver.delivered}) == 6


async def test_a_reminder_reaches_only_the_destination_it_was_armed_for(arq: ArqRedis) -> None:
    """A route with two destinations arms one reminder each; each reminder event is for its
    own destination (`data.reminder_destination`), so each destination gets one per period."""
    both = Route.model_validate({"name": "page", "match": {"severity": "critical"}, "to": ["pager", "mail"],
                                 "repeat_every": "1h"})
    d = dispatcher_for(arq, [both], "t", enabled_destinations={"pager", "mail"}, clock=Clock(T0))
    await d.ensure_group()
    ev = failed()
    await watched(arq, ev.rkey)
    await publish(arq, ev)
    await d.step()
    assert await ReminderStep(Reminders(arq), [both], clock=Clock(T0 + HOUR)).step() == Counter({Fired.SENT: 2})
    await d.step()
    reminded = [(dest, e["data"]["reminder_destination"]) for dest, e in await deliveries(arq)
                if "reminder" in e["data"]]
    assert reminded == [("mail", "mail"), ("pager", "pager")]


async def test_a_routes_throttle_does_not_hold_its_reminders_back(arq: ArqRedis) -> None:
    """Reminders are paced by `repeat_every`; the throttle (same type, same resource) is for
    the provider's repeats."""
    paced = PAGE.model_copy(update={"throttle": 2 * HOUR})
    d = dispatcher_for(arq, [paced], "t", enabled_destinations={"pager"}, clock=Clock(T0))
    await d.ensure_group()
    ev = failed()
    await watched(arq, ev.rkey)
    await publish(arq, ev)
    await d.step()
    assert await ReminderStep(Reminders(arq), [paced], clock=Clock(T0 + HOUR)).step() == Counter({Fired.SENT: 1})
    await d.step()
    assert sorted(e["data"].get("reminder", 0) for _dest, e in await deliveries(arq)) == [0, 1]
