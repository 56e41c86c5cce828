"""statehook watching itself: its providers' health and watches that are not polled.

- `ProviderWatch`, after each poll batch's round trip (tasks/poll.py): a provider that
  refused the credentials (401/403 after a token refresh), whose polls failed
  `failed_polls` times in a row across workers, or that has answered only 429 for
  `rate_limited_for` (counting the pause it asked for), is unhealthy: one
  `statehook.provider.unhealthy` when that begins, one `statehook.provider.recovered` at
  its next answered poll, however many workers see either (OperationalEvents.enter/leave).
- `OverdueCheck`, from the scheduler's tick (one winner per second across workers): a watch
  claimed and not polled since for more than `overdue_factor` of its intervals (its due time
  `overdue_factor - 1` intervals behind, and at least `overdue_min`) is overdue: the poller
  is stuck or starved. One `statehook.watch.overdue` per watch, and `.recovered` once it
  has been polled. At most `overdue_limit` watches are reported at once, the oldest first;
  the rest are logged, so that a poller that stops for everything reports it without a
  flood.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from config.schema import WatchdogSettings
from core.events import utc_iso
from core.stall import human_duration
from model.events import Severity
from model.operational import PROVIDER_RECOVERED, PROVIDER_UNHEALTHY, WATCH_OVERDUE, WATCH_RECOVERED, Subject
from store.commit import BatchHealth, HealthReplies
from store.operational import OperationalEvents
from store.snapshots import Store
from store.watchdog import LateWatches

__all__ = ["OVERDUE", "UNHEALTHY", "OverdueCheck", "OverdueRun", "ProviderWatch", "is_overdue"]

log = logging.getLogger("statehook.watchdog")

UNHEALTHY = "provider_unhealthy"
"""The condition of an unhealthy provider (OperationalEvents)."""
OVERDUE = "watch_overdue"


class ProviderWatch:
    def __init__(self, store: Store, events: OperationalEvents, settings: WatchdogSettings) -> None:
        self.store = store
        self.events = events
        self.settings = settings

    async def after(self, health: BatchHealth, replies: HealthReplies, now: float) -> None:
        """The transitions one batch's health and the shared counters' replies make."""
        for provider in sorted(replies.recovered):
            await self.events.leave(UNHEALTHY, Subject("provider", provider), PROVIDER_RECOVERED,
                                    summary=f"Provider {provider} answers again", data={"provider": provider})
        for provider, reason in sorted(health.unauthorized.items()):
            await self._unhealthy(provider, "unauthorized", f"credentials refused: {reason}", {})
        for provider, n in sorted(replies.failed_polls.items()):
            if n >= self.settings.failed_polls:
                last = health.last_error.get(provider, "")
                await self._unhealthy(provider, "failed_polls", f"{n} polls failed in a row (last: {last})",
                                      {"failed_polls": n})
        for provider, since in sorted(replies.limited_since.items()):
            limited_for = now + health.limited.get(provider, 0.0) - since
            if limited_for >= self.settings.rate_limited_for:
                await self._unhealthy(provider, "rate_limited", f"rate-limited (429) for {human_duration(limited_for)}",
                                      {"rate_limited_for": int(limited_for)})

    async def _unhealthy(self, provider: str, cause: str, reason: str, data: dict[str, object]) -> None:
        await self.events.enter(UNHEALTHY, Subject("provider", provider), PROVIDER_UNHEALTHY,
                                severity=Severity.CRITICAL, summary=f"Provider {provider} is unhealthy: {reason}",
                                data={"provider": provider, "cause": cause, "reason": reason, **data})
        if cause != "unauthorized":  # a refusal is marked in the batch's round trip already
            await self.store.mark_unhealthy(provider, reason)


def is_overdue(now: float, due: float, interval: float, settings: WatchdogSettings) -> bool:
    """A watch late from `due` is overdue: not polled for more than `overdue_factor` intervals
    (its due time comes one interval after its last poll), and never before `overdue_min`."""
    return now - due > max((settings.overdue_factor - 1) * interval, settings.overdue_min)


@dataclass(frozen=True, slots=True)
class OverdueRun:
    overdue: int
    """watches reported overdue now"""
    recovered: int
    more: int
    """overdue watches seen and not reported (over `overdue_limit`; a check looks at one more)"""


class OverdueCheck:
    def __init__(self, late: LateWatches, events: OperationalEvents, settings: WatchdogSettings) -> None:
        self.late = late
        self.events = events
        self.settings = settings

    async def run(self, now: float) -> OverdueRun:
        s = self.settings
        # one more than the limit: to know that there are more
        late, marked = await self.late.read(now - s.overdue_min, s.overdue_limit + 1)
        fresh = [(k, due) for k, due in late if k not in marked]
        intervals = await self.late.intervals([k for k, _ in fresh] + sorted(marked))
        found = [(k, due) for k, due in fresh if k in intervals and is_overdue(now, due, intervals[k], s)]
        room = max(0, s.overdue_limit - len(marked))
        report, more = found[:room], len(found) - room if len(found) > room else 0
        for rkey, due in report:
            await self.events.enter(OVERDUE, Subject("watch", rkey), WATCH_OVERDUE, severity=Severity.WARNING,
                                    summary=f"Watch {rkey} has not been polled for {human_duration(now - due)} "
                                            f"past its due time", data={
                                        "rkey": rkey, "interval": intervals[rkey], "due_at": utc_iso(due),
                                        "late_for": int(now - due)})
        await self.late.mark([k for k, _ in report])
        if more:
            log.warning("more watches are overdue than the %d reported (watchdog.overdue_limit)", s.overdue_limit)
        recovered = await self._recovered(sorted(marked), intervals, now)
        return OverdueRun(len(report), recovered, more)

    async def _recovered(self, marked: list[str], intervals: dict[str, float], now: float) -> int:
        """Marked watches polled since (or no longer watched): `.recovered`, and unmarked."""
        since = await self.late.late_since(marked)
        back = [k for k, due in zip(marked, since, strict=True)
                if k not in intervals or due is None or not is_overdue(now, due, intervals[k], self.settings)]
        for rkey in back:
            watched = rkey in intervals
            await self.events.leave(OVERDUE, Subject("watch", rkey), WATCH_RECOVERED,
                                    summary=f"Watch {rkey} is polled again" if watched else
                                    f"Watch {rkey} is no longer watched", data={"rkey": rkey, "watched": watched})
        await self.late.unmark(back)
        return len(back)
