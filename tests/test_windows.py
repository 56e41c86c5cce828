"""Maintenance windows against a real Redis with the dispatcher's clock injected: a route's
`mute_during` window mutes it (timeline notes, counted), and when the window ends ONE summary
per destination lists what it muted by resource, the latest state first, whichever of several
dispatchers gets there; `after_window = "drop"` sends none; `active_during` mutes outside
its intervals and summarises when one begins; unknown window names stop start-up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis

from config import load_config
from core.window_summary import WINDOW_SUMMARY_TYPE
from model.events import Event
from model.resources import ResourceRef
from model.routes import Route
from model.time_intervals import NamedTimeInterval
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from store.history import read_history_entry
from store.window_hold import WindowHold
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker, timeline, write_config
from tests.test_api import provider_blocks
from tests.test_routes import Clock, deliveries, event, publish
from worker.queue import dispatcher_for

SUNDAY_0210 = datetime(2026, 5, 10, 2, 10, tzinfo=UTC).timestamp()
SUNDAY_0400 = datetime(2026, 5, 10, 4, 0, tzinfo=UTC).timestamp()
INTERVALS = [
    NamedTimeInterval.model_validate({"name": "sunday-maintenance", "time_intervals": [
        {"weekdays": ["sunday"], "times": [{"start_time": "02:00", "end_time": "04:00"}]}]}),
    NamedTimeInterval.model_validate({"name": "office", "time_intervals": [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "17:00"}]}]}),
]


def route(**fields: Any) -> Route:
    return Route.model_validate(fields)


async def summaries(arq: ArqRedis) -> list[tuple[str, dict[str, Any]]]:
    return [(d, e) for d, e in await deliveries(arq) if e["type"] == WINDOW_SUMMARY_TYPE]


async def test_a_window_mutes_then_sends_one_summary_per_destination_at_its_end(arq: ArqRedis) -> None:
    routes = [route(name="ops", match={"provider": "artistree"}, to=["slack", "mail"],
                    mute_during=["sunday-maintenance"]),
              route(name="pager", match={"severity": "critical"}, to=["pager"])]
    clock = Clock(SUNDAY_0210)
    first = dispatcher_for(arq, routes, "w1", enabled_destinations={"slack", "mail", "pager"}, clock=clock,
                           time_intervals=INTERVALS)
    second = dispatcher_for(arq, routes, "w2", enabled_destinations={"slack", "mail", "pager"}, clock=clock,
                            time_intervals=INTERVALS)
    await first.ensure_group()
    failed = event("artistree.order.state_changed", "critical", to="Failed", rid="ord-1", seq=1)
    reviewed = event("artistree.order.state_changed", "info", to="Reviewed", rid="ord-2", seq=1)
    action = event("artistree.order.state_changed", "critical", to="Action Required", rid="ord-1", seq=2)
    await publish(arq, failed, reviewed)
    await first.step()
    clock.now += 600
    await publish(arq, action)
    await second.step()
    assert [(d, e["id"]) for d, e in await deliveries(arq)] == [("pager", failed.id), ("pager", action.id)]
    notes = [read_history_entry(raw, failed.rkey) for raw in await timeline(arq, failed.rkey)]
    assert [(n["type"], n["note"]) for n in notes] == [
        ("silenced", {"window": "sunday-maintenance", "destination": d}) for d in ("mail", "slack")] * 2
    assert int(await arq.hget(keys.STATS, "silenced:slack")) == 3  # type: ignore[misc]

    clock.now = SUNDAY_0400 - 1
    for d in (first, second):
        await d.step()
    assert await summaries(arq) == []  # not before the end
    clock.now = SUNDAY_0400 + 1
    await second.step()
    await first.step()
    got = await summaries(arq)
    assert [d for d, _ in got] == ["mail", "slack"]  # one each, once
    for destination, summary in got:
        assert summary["data"]["destination"] == destination and summary["severity"] == "critical"
        assert summary["data"]["windows"] == ["sunday-maintenance"] and summary["data"]["count"] == 3
        ord1, ord2 = summary["data"]["resources"]
        assert (ord1["rkey"], ord1["state"], ord1["count"]) == ("artistree:order:ord-1", "Action Required", 2)
        assert [e["id"] for e in ord1["events"]] == [action.id, failed.id]  # the latest state first
        assert (ord2["rkey"], ord2["state"]) == ("artistree:order:ord-2", "Reviewed")
        assert summary["detected_at"] == "2026-05-10T04:00:00Z"
    assert await WindowHold(arq).pending() == 0

    after = event("artistree.order.state_changed", "info", to="Human Certified", rid="ord-1", seq=3)
    await publish(arq, after)
    await first.step()
    assert {(d, e["id"]) for d, e in await deliveries(arq) if e["id"] == after.id} == {("slack", after.id),
                                                                                      ("mail", after.id)}


async def test_after_window_drop_sends_no_summary(arq: ArqRedis) -> None:
    routes = [route(name="ops", to=["slack"], mute_during=["sunday-maintenance"], after_window="drop")]
    clock = Clock(SUNDAY_0210)
    d = dispatcher_for(arq, routes, "w1", enabled_destinations={"slack"}, clock=clock, time_intervals=INTERVALS)
    await d.ensure_group()
    await publish(arq, event("artistree.order.state_changed", "critical", to="Failed"))
    await d.step()
    clock.now = SUNDAY_0400 + 1
    await d.step()
    assert await deliveries(arq) == []
    assert int(await arq.hget(keys.STATS, "silenced:slack")) == 1  # type: ignore[misc]
    assert await WindowHold(arq).pending() == 0


async def test_active_during_mutes_outside_and_summarises_when_it_begins(arq: ArqRedis) -> None:
    routes = [route(name="office mail", to=["mail"], active_during=["office"])]
    friday_evening = datetime(2026, 5, 8, 18, 0, tzinfo=UTC).timestamp()
    monday_nine = datetime(2026, 5, 11, 9, 0, tzinfo=UTC).timestamp()
    clock = Clock(friday_evening)
    d = dispatcher_for(arq, routes, "w1", enabled_destinations={"mail"}, clock=clock, time_intervals=INTERVALS)
    await d.ensure_group()
    await publish(arq, event("rev.order.state_changed", "warning", to="Finding Transcriptionist", rid="TC1"))
    await d.step()
    clock.now = monday_nine - 60
    await d.step()
    assert await deliveries(arq) == []
    clock.now = monday_nine + 1
    await d.step()
    (summary,) = [e for _, e in await summaries(arq)]
    assert summary["data"]["windows"] == ["office"] and summary["data"]["resources"][0]["rkey"] == "rev:order:TC1"
    during = event("rev.order.state_changed", "info", to="Complete", rid="TC1", seq=2)
    await publish(arq, during)
    await d.step()
    assert during.id in {e["id"] for _, e in await deliveries(arq)}


async def test_an_event_held_after_its_window_was_summarised_is_delivered(arq: ArqRedis) -> None:
    routes = [route(name="ops", to=["slack"], mute_during=["sunday-maintenance"])]
    on_time, late = Clock(SUNDAY_0210), Clock(SUNDAY_0210)
    a = dispatcher_for(arq, routes, "w1", enabled_destinations={"slack"}, clock=on_time, time_intervals=INTERVALS)
    b = dispatcher_for(arq, routes, "w2", enabled_destinations={"slack"}, clock=late, time_intervals=INTERVALS)
    await a.ensure_group()
    await publish(arq, event("artistree.order.reviewed", rid="ord-1"))
    await a.step()
    on_time.now = SUNDAY_0400 + 1
    await a.step()  # the summary
    late.now = SUNDAY_0400 - 5  # a worker whose clock is behind still sees the window
    straggler = event("artistree.order.reviewed", rid="ord-9")
    await publish(arq, straggler)
    await b.step()
    ids = [e["id"] for _, e in await deliveries(arq)]
    assert straggler.id in ids and len([e for _, e in await summaries(arq)]) == 1


def test_unknown_window_names_stop_start_up_naming_the_route(tmp_path: Path) -> None:
    import pytest

    from config import ConfigError, load_config

    config = tmp_path / "statehook.toml"
    config.write_text(
        '[[time_intervals]]\nname = "sunday-maintenance"\n'
        'time_intervals = [{ weekdays = ["sunday"], times = [{ start_time = "02:00", end_time = "04:00" }] }]\n\n'
        '[destinations.ops]\nkind = "console"\n\n'
        '[[routes]]\nname = "ops"\nto = ["ops"]\nmute_during = ["sunday-maintenance", "weekend"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.problems == [
        f"{config}:11: routes.0.mute_during.1: route 'ops': unknown time interval 'weekend' "
        "(known: sunday-maintenance)"]
    config.write_text(config.read_text().replace('"weekend"', '"sunday-maintenance"').replace(
        'end_time = "04:00"', 'end_time = "01:00"'))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    (problem,) = err.value.problems
    assert "time_intervals.0.time_intervals.0.times.0" in problem and "start_time must be before end_time" in problem


def test_a_summary_renders_its_resources_in_every_default_template() -> None:
    from core.window_summary import summary_event
    from notifiers.slack import build_message
    from notifiers.templates import TemplateBook

    failed = event("artistree.order.state_changed", "critical", to="Failed", rid="ord-1", title="Poster <v3>",
                   url="https://example.com/o/1")
    later = event("rev.order.state_changed", "info", to="Complete", rid="TC1", seq=2)
    summary = summary_event("n-ops", "ops", "mail", ["sunday-maintenance"], SUNDAY_0400,
                            [failed.as_dict(), later.as_dict()])
    assert summary is not None
    book = TemplateBook("mail")
    text = book.render("text", summary)
    assert text.index("[CRITICAL] Poster <v3> (artistree order ord-1): Failed") < text.index(
        "[INFO] TC1 (rev order TC1): Complete")
    assert "https://example.com/o/1" in text
    assert book.render("subject", summary) == "[CRITICAL] sunday-maintenance ended: 2 muted events of 2 resources"
    html = book.render("html", summary)
    assert "Poster &lt;v3&gt;" in html and '<a href="https://example.com/o/1">' in html
    section = build_message(summary, TemplateBook("slack"))["blocks"][0]["text"]["text"]
    assert "<https://example.com/o/1|Poster &lt;v3&gt;> · *Failed*" in section


async def test_a_reminder_muted_by_a_window_is_noted_but_left_out_of_the_summary(arq: ArqRedis) -> None:
    routes = [route(name="page", to=["pager"], mute_during=["sunday-maintenance"], repeat_every="1h")]
    clock = Clock(SUNDAY_0210)
    d = dispatcher_for(arq, routes, "w1", enabled_destinations={"pager"}, clock=clock, time_intervals=INTERVALS)
    await d.ensure_group()
    failed = event("artistree.order.state_changed", "critical", to="Failed", rid="ord-1")
    reminder = Event.from_dict({**failed.as_dict(), "id": failed.id + "_r1", "data": {**failed.data, "reminder": 1}})
    await publish(arq, failed, reminder)
    await d.step()
    notes = [read_history_entry(raw, failed.rkey) for raw in await timeline(arq, failed.rkey)]
    assert sorted(n["id"] for n in notes) == [failed.id, reminder.id]  # both muted, both noted
    clock.now = SUNDAY_0400 + 1
    await d.step()
    (summary,) = [e for _, e in await summaries(arq)]
    assert [e["id"] for e in summary["data"]["resources"][0]["events"]] == [failed.id]


async def test_a_worker_started_from_a_config_file_mutes_during_its_window(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    """The worker's dispatcher gets the file's time intervals: a route muted all day mutes a
    real worker's deliveries (timeline note with the window's name)."""
    oid = sim["artistree"].add_order(state="In Progress", title="muted")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    path = tmp_path / "statehook.toml"
    write_config(path, redis_url=redis_url, providers=provider_blocks(sim),
                 watches=[{"provider": "artistree", "ids": [oid], "interval": "0.2s"}],
                 destinations={"hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC}},
                 routes=[{"to": ["hook"], "after_window": "drop"}])
    text = path.read_text().replace('after_window = "drop"', 'after_window = "drop"\nmute_during = ["always"]')
    path.write_text(text + '\n[[time_intervals]]\nname = "always"\n'
                    'time_intervals = [{ times = [{ start_time = "00:00", end_time = "24:00" }] }]\n')
    config = load_config(path)
    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="the baseline poll")
        sim["artistree"].set_state(oid, "Failed")

        async def noted() -> bool:
            entries = [read_history_entry(raw, rkey) for raw in await timeline(redis, rkey)]
            return any(e["type"] == "silenced" and e["note"].get("window") == "always" for e in entries)

        await wait_for(noted, what="the window's silenced note")
    assert receiver.delivered == []
