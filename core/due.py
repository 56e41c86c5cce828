"""When a resource is polled next, as a poll's outcome says it: a value, never a flag. Pure."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KEEP_DUE", "STOP_POLLING", "Due", "DueAt", "DueSoon", "KeepDue", "StopPolling", "due_or_stop"]


@dataclass(frozen=True, slots=True)
class DueAt:
    """Poll again at `at` (unix seconds)."""

    at: float


@dataclass(frozen=True, slots=True)
class StopPolling:
    """Leave the due set: the resource is finished (terminal past its tail) or gone."""


@dataclass(frozen=True, slots=True)
class KeepDue:
    """Leave the due time as it is: an item of a scan, whose watch is the scan's."""


@dataclass(frozen=True, slots=True)
class DueSoon:
    """An item of a scan that changed: if it is also watched by id, that watch is due by `at`
    (sooner only), so that its own poll sets its schedule again (an order the scan saw
    reopen leaves the terminal tail its id watch was on). A scan item alone is left as it is."""

    at: float


STOP_POLLING = StopPolling()
KEEP_DUE = KeepDue()

Due = DueAt | StopPolling | KeepDue | DueSoon


def due_or_stop(at: float | None) -> DueAt | StopPolling:
    """`core.schedule.next_poll_at`'s answer as a due value (None: stop)."""
    return STOP_POLLING if at is None else DueAt(at)
