"""The dispatcher's silences and maintenance windows: which deliveries of a read are muted,
what is written for them, and the summaries of the windows that have ended.

Per dispatcher read (`begin` … `finish`): the silences come from memory (store/silences.py's
cache: one GET of the version counter per read, the hash only when it moved), a route's
window state is computed once per read, and everything written goes out in a few round
trips for the whole read: the routing facts of every event (the preview's 24 h stream), the
held events of the windows, the `silenced` timeline notes and stats."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.route import RouteTable
from core.silences import ActiveSilences
from core.time_intervals import Muting
from core.window_summary import summary_event
from model.events import Event
from model.silences import RoutingFacts
from model.time_intervals import NamedTimeInterval
from store.muted import MutedDelivery, MutedLog
from store.recent import RecentEvents
from store.silences import SilenceCache
from store.window_hold import HeldItem, HeldWindow, WindowHold
from tasks.enqueue import DeliveryQueue

__all__ = ["MuteStep", "MuteStores", "Mutes"]

log = logging.getLogger("statehook.dispatch")


@dataclass(frozen=True)
class MuteStores:
    """Where silences, held window events, muted notes and recent events are kept."""

    silences: SilenceCache
    holds: WindowHold
    log: MutedLog
    recent: RecentEvents


@dataclass
class MuteStep:
    """What one dispatcher read muted and saw."""

    now: float
    silences: ActiveSilences
    facts: list[RoutingFacts] = field(default_factory=list)
    muted: list[MutedDelivery] = field(default_factory=list)
    held: list[tuple[HeldItem, MutedDelivery, bytes]] = field(default_factory=list)
    windows: dict[str, tuple[str, float] | None] = field(default_factory=dict)


class Mutes:
    def __init__(self, stores: MuteStores, routes: RouteTable, intervals: Sequence[NamedTimeInterval]) -> None:
        self.stores = stores
        self.routes = routes
        self.mutings = {key: Muting.of(intervals, r.mute_during, r.active_during)
                        for key, r in zip(routes.keys, routes.routes, strict=True)}
        self._ends: dict[str, tuple[float, float]] = {}
        """route key -> (computed at, end): the route is muted throughout [computed at, end)"""

    async def begin(self, now: float) -> MuteStep:
        return MuteStep(now, await self.stores.silences.current(now))

    def window(self, step: MuteStep, route: str) -> tuple[str, float] | None:
        """(name, end) of the window muting `route` now, or None."""
        if route in step.windows:
            return step.windows[route]
        muting = self.mutings.get(route)
        name = muting.muted_by(step.now) if muting else None
        found = None
        if muting is not None and name is not None:
            since, end = self._ends.get(route, (0.0, 0.0))
            if not since <= step.now < end:
                since, end = step.now, muting.until(step.now)
                self._ends[route] = (since, end)
            found = (name, end)
        step.windows[route] = found
        return found

    def mute(self, step: MuteStep, event: Event, raw: bytes, facts: RoutingFacts, route: str, destination: str,
             *, hold: bool) -> bool:
        """Whether the delivery of `event` to `destination` through `route` is muted (a silence,
        or a window: held for its summary when `hold`); noted in `step` if so."""
        silence = step.silences.muting(facts, destination, step.now)
        if silence is not None:
            step.muted.append(MutedDelivery(event.rkey, event.seq, event.id, destination,
                                            f"not sent to {destination}: silence {silence.id}",
                                            {"silence": silence.id, "destination": destination}))
            return True
        window = self.window(step, route)
        if window is None:
            return False
        name, end = window
        note = MutedDelivery(event.rkey, event.seq, event.id, destination,
                             f"not sent to {destination}: maintenance window {name}",
                             {"window": name, "destination": destination})
        if hold:
            doc = {**event.as_dict(), "snapshot": None}
            step.held.append((HeldItem(HeldWindow(route, end, destination), name, doc, step.now), note, raw))
        else:
            step.muted.append(note)
        return True

    async def finish(self, step: MuteStep) -> list[tuple[str, str, bytes]]:
        """Write what `step` gathered. Returns the held deliveries whose window had already
        been summarised (a worker whose clock is late): (destination, event id, event JSON)
        to deliver now."""
        accepted = await self.stores.holds.hold([item for item, _, _ in step.held])
        late = []
        for (item, note, raw), ok in zip(step.held, accepted, strict=True):
            if ok:
                step.muted.append(note)
            else:
                late.append((item.window.destination, note.event_id, raw))
        await self.stores.log.record(step.muted, step.now)
        await self.stores.recent.append(step.facts)
        return late

    async def flush_windows(self, queue: DeliveryQueue, now: float) -> int:
        """One summary per (route, destination) whose window has ended (`after_window =
        "summary"`); a window is claimed by one dispatcher. Returns how many were sent."""
        sent = 0
        for window in await self.stores.holds.claim(now):
            route = self.routes.get(window.route)
            items = await self.stores.holds.collect(window)
            if route is not None and route.after_window == "summary":
                event = summary_event(window.route, route.name, window.destination, [n for n, _ in items],
                                      window.end, [e for _, e in items])
                if event is not None:
                    await queue.deliver(event.id, event.to_json(), window.destination)
                    sent += 1
            await self.stores.holds.done(window)
        return sent
