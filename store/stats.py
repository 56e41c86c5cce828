"""The stats every worker counts in one Redis hash (`sh:stats`), and their names: the one
place that spells them. The API exposes them in Prometheus format (worker/metrics.py).

A histogram is one field per bucket plus a sum in microseconds (HINCRBY takes integers).
Field names:

    polls:{provider}:{outcome}         poll outcomes (unchanged, changed, baseline, …)
    events:{provider}, events_type:{type}
    deliveries_ok|_retried|_dead       all destinations
    deliveries:{destination}:{outcome} per destination: ok, retried, dead
    lat:{histogram}:{label}:{i}        observations in bucket i (i = len(buckets): +Inf)
    lat:{histogram}:{label}:sum_us     sum of the observations, microseconds

The recording side is cheap on purpose: a poll batch accumulates in memory
(`LatencyRecorder`) and its counts go out with the batch's single HINCRBY pipeline. Pure.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

__all__ = [
    "BATCH_BUCKETS",
    "DELIVERY_BUCKETS",
    "DELIVERY_OUTCOMES",
    "HISTOGRAMS",
    "POLL_BUCKETS",
    "LatencyRecorder",
    "delivery_counts",
    "latency_counts",
]

POLL_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DELIVERY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)

HISTOGRAMS: dict[str, tuple[str, str, tuple[float, ...], str]] = {
    # stats name: (metric name, label, buckets, help)
    "poll": ("statehook_poll_latency_seconds", "provider", POLL_BUCKETS,
             "Time of one resource fetch from the provider's API"),
    "batch": ("statehook_poll_batch_seconds", "provider", BATCH_BUCKETS,
              "Time of one poll job: a batch of resources, or a scan"),
    "deliver": ("statehook_delivery_latency_seconds", "destination", DELIVERY_BUCKETS,
                "Time of one delivery attempt"),
}

DELIVERY_OUTCOMES = ("ok", "retried", "dead")


def latency_counts(histogram: str, label: str, seconds: float) -> dict[str, int]:
    """The stats increments of one observation."""
    buckets = HISTOGRAMS[histogram][2]
    i = bisect.bisect_left(buckets, seconds)
    return {f"lat:{histogram}:{label}:{i}": 1, f"lat:{histogram}:{label}:sum_us": int(seconds * 1_000_000)}


def delivery_counts(destination: str, outcome: str, seconds: float | None = None) -> dict[str, int]:
    """The stats increments of one delivery attempt: `outcome` is ok, retried or dead."""
    counts = {f"deliveries_{outcome}": 1, f"deliveries:{destination}:{outcome}": 1}
    if seconds is not None:
        counts.update(latency_counts("deliver", destination, seconds))
    return counts


@dataclass
class LatencyRecorder:
    """Observations gathered in memory between two flushes (one poll batch)."""

    counts: Counter[str] = field(default_factory=Counter)

    def observe(self, histogram: str, label: str, seconds: float) -> None:
        self.counts.update(latency_counts(histogram, label, seconds))

    def drain(self) -> dict[str, int]:
        out = dict(self.counts)
        self.counts.clear()
        return out
