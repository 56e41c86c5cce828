"""When to poll a resource next. Pure."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Pacing", "next_poll_at"]


class Pacing(Protocol):
    """The pacing a provider's settings give (providers.base.ProviderSettings has these)."""

    @property
    def interval_active(self) -> float | None: ...
    @property
    def interval_idle(self) -> float | None: ...
    @property
    def terminal_interval(self) -> float: ...
    @property
    def terminal_tail(self) -> float: ...
    @property
    def terminal_late_interval(self) -> float: ...
    @property
    def terminal_late_tail(self) -> float: ...

IDLE_AFTER_INTERVALS = 10
"""A resource with no change for this many active intervals counts as idle."""


def next_poll_at(
    now: float,
    *,
    interval: float,
    terminal: bool,
    changed_at: float,
    settings: Pacing,
) -> float | None:
    """The next due time, or None to stop polling.

    Active resources poll at the watch's interval (or the provider's `interval_active`);
    after `IDLE_AFTER_INTERVALS` intervals without change, at `interval_idle` if set. A
    terminal resource is not finished for good (an order can move back out of Failed, Rev's
    Complete can be re-opened): it keeps a slow poll, every `terminal_interval` for
    `terminal_tail` seconds after its last change, then every `terminal_late_interval`
    until `terminal_late_tail` seconds after it, then stops."""
    if terminal:
        age = now - changed_at
        if age < settings.terminal_tail:
            return now + settings.terminal_interval
        if age < settings.terminal_late_tail:
            return now + settings.terminal_late_interval
        return None
    active = settings.interval_active or interval
    if settings.interval_idle and now - changed_at > IDLE_AFTER_INTERVALS * active:
        return now + max(active, settings.interval_idle)
    return now + active
