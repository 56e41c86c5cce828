"""The periodic step of the reminders: claim those that are due (atomically across workers),
and send each as a reminder event into the outbox, where the dispatcher routes it to its one
destination like any other event (silences and windows apply). The step's clock is
injectable: the tests drive it through periods without sleeping.

Each claimed reminder is checked against the config (its route still exists, still has
`repeat_every`, still sends to its destination: else it is dropped) and, inside the send's
script, against the resource (still in the arming state, not acknowledged, still watched,
its state record still there: else it is disarmed). A changed `repeat_every` applies from
the next reminder on."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from core.reminders import ArmedReminder, next_due, reminder_event
from core.route import RouteTable
from model.events import Event
from model.routes import Route
from store.reminders import Fired, Reminders

__all__ = ["REMINDER_TICK", "ReminderStep"]

log = logging.getLogger("statehook.reminders")

REMINDER_TICK = 5.0
"""Seconds between steps (worker/settings.py's cron): a reminder is sent within this of its time."""


class ReminderStep:
    def __init__(self, reminders: Reminders, routes: Sequence[Route], *, clock: Callable[[], float] = time.time,
                 limit: int = 500) -> None:
        self.reminders = reminders
        self.routes = RouteTable.of(routes)
        self.clock = clock
        self.limit = limit

    async def step(self) -> Counter[Fired]:
        """Claim what is due now and send or disarm each; returns what became of them. A
        page of `limit` at a time, until none is due."""
        outcomes: Counter[Fired] = Counter()
        while True:
            now = self.clock()
            claimed = await self.reminders.claim(now, self.limit)
            for armed in claimed:
                outcomes[await self._one(armed, now)] += 1
            if len(claimed) < self.limit:
                break
        if outcomes:
            log.info("reminders: %s", " ".join(f"{k.value}={v}" for k, v in sorted(outcomes.items())))
        return outcomes

    def period(self, armed: ArmedReminder) -> float | None:
        """The route's `repeat_every` now; None when the route is gone, no longer reminds,
        or no longer sends to the reminder's destination."""
        route = self.routes.get(armed.route)
        if route is None or route.repeat_every is None or armed.destination not in route.to:
            return None
        return float(route.repeat_every)

    async def _one(self, armed: ArmedReminder | str, now: float) -> Fired:
        if isinstance(armed, str):
            log.warning("reminder %s cannot be read: disarmed", armed)
            await self.reminders.drop(armed)
            return Fired.DROPPED
        period = self.period(armed)
        try:
            arming = Event.from_json(armed.event)
        except Exception as exc:  # written by something else, or damaged: never stops the step
            log.warning("reminder %s of %s holds no readable event (%s): disarmed", armed.member, armed.rkey,
                        type(exc).__name__)
            period = None
        if period is None or period <= 0:
            await self.reminders.drop(armed)
            return Fired.DROPPED
        reminder = reminder_event(arming, n=armed.sent + 1, route=armed.route, destination=armed.destination,
                                  now=now)
        return await self.reminders.fire(armed, reminder, next_due=next_due(armed.due, period, now), now=now)
