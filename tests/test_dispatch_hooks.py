"""The dispatcher's hooks for reminders (tasks/dispatch.py ReminderHooks): `seen` for every
event that tells a resource's state, `arm` for each critical delivery through a route with
`repeat_every`, and a reminder event only through such routes (real Redis, test clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

from arq.connections import ArqRedis

from core.route import route_key
from model.events import Event
from model.routes import Route
from tests.test_routes import Clock, deliveries, event, publish
from worker.queue import dispatcher_for


@dataclass
class Recorder:
    armed: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    seen_ids: list[str] = field(default_factory=list)

    async def arm(self, event: Event, route: str, destination: str, period: float, now: float) -> None:
        self.armed.append((event.id, route, destination, period, now))

    async def seen(self, event: Event) -> None:
        self.seen_ids.append(event.id)

    async def flush(self) -> None:
        pass


def reminder_of(ev: Event, n: int) -> Event:
    return Event.from_dict({**ev.as_dict(), "id": f"{ev.id}_r{n}", "data": {**ev.data, "reminder": n}})


async def test_reminder_hooks_arm_critical_deliveries_and_see_state_changes(arq: ArqRedis) -> None:
    paging = Route.model_validate({"name": "page", "match": {"severity": "critical"}, "to": ["pager"],
                                   "repeat_every": "1h"})
    mail = Route.model_validate({"name": "mail", "to": ["mail"]})
    hooks = Recorder()
    d = dispatcher_for(arq, [paging, mail], "t", enabled_destinations={"pager", "mail"}, clock=Clock(1000.0),
                       reminders=hooks)
    await d.ensure_group()
    failed = event("artistree.order.state_changed", "critical", to="Failed", seq=1)
    reviewed = event("artistree.order.reviewed", "info", seq=2)  # no state: not seen
    gone = event("artistree.order.gone", "warning", rid="ord-2", seq=3)
    await publish(arq, failed, reviewed, gone)
    await d.step()
    assert hooks.seen_ids == [failed.id, gone.id]
    assert hooks.armed == [(failed.id, route_key(paging), "pager", 3600.0, 1000.0)]  # not the mail route

    reminder = reminder_of(failed, 1)
    await publish(arq, reminder)
    await d.step()
    got = [(dest, e["id"]) for dest, e in await deliveries(arq) if e["id"] == reminder.id]
    assert got == [("pager", reminder.id)]  # not through the route without repeat_every
    assert len(hooks.armed) == 1  # a reminder does not arm another
    assert hooks.seen_ids[-1] == reminder.id  # it tells the state too (B may ignore it)


async def test_without_hooks_the_dispatcher_routes_as_before(arq: ArqRedis) -> None:
    d = dispatcher_for(arq, [Route.model_validate({"to": ["mail"], "repeat_every": "1h"})], "t",
                       enabled_destinations={"mail"})
    await d.ensure_group()
    await publish(arq, event("artistree.order.state_changed", "critical", to="Failed"))
    await d.step()
    assert [dest for dest, _ in await deliveries(arq)] == ["mail"]
