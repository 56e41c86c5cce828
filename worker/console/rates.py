"""Polls and events per minute for the overview, from the shared counters sampled when the
overview is read.

The stats hash holds totals since the dataset began, not rates. This API process keeps the
totals it read over the last minutes and reports the change against the sample nearest a
minute old (at least MIN_SPAN old, so the first figure comes seconds after the overview is
first opened, which refreshes itself). Counters shared by all workers, sampled by whichever
API process serves the page: every process gives the same rates. Pure: the time is given.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["MIN_SPAN", "RateWindow", "Rates"]

MIN_SPAN = 8.0
"""seconds between two samples before a rate is given"""
TARGET_SPAN = 60.0
KEEP = 300.0
EVERY = 2.0
"""a sample is kept at most this often"""


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    counters: dict[str, int]


@dataclass(frozen=True, slots=True)
class Rates:
    """Per minute, over the last `span` seconds."""

    span: float
    per_minute: dict[str, float]

    def get(self, name: str) -> float:
        return self.per_minute.get(name, 0.0)


@dataclass
class RateWindow:
    samples: deque[_Sample] = field(default_factory=deque)

    def observe(self, now: float, counters: Mapping[str, int]) -> Rates | None:
        """Record the totals read at `now`; the rates per minute since the sample nearest a
        minute before, or None while there is none old enough (or a counter went down: the
        dataset was flushed, the samples start again)."""
        while self.samples and (now - self.samples[0].at > KEEP or self.samples[0].at > now):
            self.samples.popleft()
        if self.samples and any(counters.get(k, 0) < v for k, v in self.samples[-1].counters.items()):
            self.samples.clear()
        base = self._base(now)
        if not self.samples or now - self.samples[-1].at >= EVERY:
            self.samples.append(_Sample(now, dict(counters)))
        if base is None:
            return None
        span = now - base.at
        return Rates(span, {k: (v - base.counters.get(k, 0)) * 60.0 / span for k, v in counters.items()})

    def _base(self, now: float) -> _Sample | None:
        old_enough = [s for s in self.samples if now - s.at >= MIN_SPAN]
        if not old_enough:
            return None
        return min(old_enough, key=lambda s: abs((now - s.at) - TARGET_SPAN))
