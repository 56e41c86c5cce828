"""Retry delays. Pure."""

from __future__ import annotations

import random
from collections.abc import Sequence

from model.values import MAX_RETRY_DELAY

__all__ = ["delivery_delay", "poll_backoff"]


def delivery_delay(
    retry: int,
    schedule: Sequence[float],
    *,
    jitter: float = 0.2,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds before retry number `retry` (1-based), or None when the schedule is spent.

    A destination's own `Retry-After` wins when it asks for longer than the schedule, up
    to a day (MAX_RETRY_DELAY)."""
    if retry < 1 or retry > len(schedule):
        return None
    base = schedule[retry - 1]
    delay = base * (1 + (rng or random).uniform(-jitter, jitter)) if jitter else base
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(MAX_RETRY_DELAY, max(0.0, delay))


def poll_backoff(failures: int, *, base: float = 5.0, cap: float = 900.0) -> float:
    """Seconds before polling a resource again after `failures` consecutive errors."""
    return float(min(cap, base * 2 ** min(max(0, failures - 1), 62)))  # 2**1024 is no float
