"""The stats every worker counts in one Redis hash (`sh:stats`): the one place that names
them, writes them (`StatsRecorder`'s typed methods) and reads them back (`parse_stats`).
The API exposes them in Prometheus format (worker/metrics.py).

Why a Redis hash and not prometheus_client's multiprocess mode: that mode shares counters
through files in one directory, so every process must run on one host with one disk.
statehook's workers are many processes on any number of hosts (or containers), and the API
that is scraped is yet another; Redis is the one thing they all share already.

A histogram is one field per bucket plus a sum in microseconds (HINCRBY takes integers).
Field names (`field_*` below spell them; `parse_stats` is their only reader):

    polls:{provider}:{outcome}         poll outcomes (unchanged, changed, baseline, …)
    events:{provider}, events_type:{type}
    deliveries_ok|_retried|_dead       all destinations
    deliveries:{destination}:{outcome} per destination: ok, retried, dead
    lat:{histogram}:{label}:{i}        observations in bucket i (i = len(buckets): +Inf)
    lat:{histogram}:{label}:sum_us     sum of the observations, microseconds
    corrupt_records                    stored records that could not be read
    silenced:{destination}             events muted by a silence or a window, per destination
    reminders:{destination}            reminder events sent, per destination
    held:{destination}                 deliveries held while the destination's circuit was not closed

Recording is cheap on purpose: a poll batch gathers its counts in memory and they go out
with the batch's single HINCRBY pipeline. Pure.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BATCH_BUCKETS",
    "DELIVERY_BUCKETS",
    "DELIVERY_OUTCOMES",
    "HISTOGRAMS",
    "POLL_BUCKETS",
    "DeliveryOutcome",
    "Histogram",
    "Stats",
    "StatsRecorder",
    "parse_stats",
]

POLL_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DELIVERY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)

Histogram = Literal["poll", "batch", "deliver"]

HISTOGRAMS: dict[str, tuple[str, str, tuple[float, ...], str]] = {
    # stats name: (metric name, label, buckets, help)
    "poll": ("statehook_poll_latency_seconds", "provider", POLL_BUCKETS,
             "Time of one resource fetch from the provider's API"),
    "batch": ("statehook_poll_batch_seconds", "provider", BATCH_BUCKETS,
              "Time of one poll job: a batch of resources, or a scan"),
    "deliver": ("statehook_delivery_latency_seconds", "destination", DELIVERY_BUCKETS,
                "Time of one delivery attempt"),
}

DeliveryOutcome = Literal["ok", "retried", "dead"]
DELIVERY_OUTCOMES: tuple[DeliveryOutcome, ...] = ("ok", "retried", "dead")
CORRUPT_RECORDS = "corrupt_records"


@dataclass
class StatsRecorder:
    """Increments gathered in memory between two flushes (`drain`), by typed methods only."""

    counts: Counter[str] = field(default_factory=Counter)

    def poll(self, provider: str, outcome: str, n: int = 1) -> None:
        self.counts[f"polls:{provider}:{outcome}"] += n

    def event(self, provider: str, event_type: str) -> None:
        self.counts[f"events:{provider}"] += 1
        self.counts[f"events_type:{event_type}"] += 1

    def delivery(self, destination: str, outcome: DeliveryOutcome, seconds: float | None = None) -> None:
        """One delivery attempt; `seconds` is its time when it was made (not for a skipped one)."""
        self.counts[f"deliveries_{outcome}"] += 1
        self.counts[f"deliveries:{destination}:{outcome}"] += 1
        if seconds is not None:
            self.observe("deliver", destination, seconds)

    def observe(self, histogram: Histogram, label: str, seconds: float) -> None:
        i = bisect.bisect_left(HISTOGRAMS[histogram][2], seconds)
        self.counts[f"lat:{histogram}:{label}:{i}"] += 1
        self.counts[f"lat:{histogram}:{label}:sum_us"] += int(seconds * 1_000_000)

    def corrupt(self, n: int = 1) -> None:
        self.counts[CORRUPT_RECORDS] += n

    def silenced(self, destination: str, n: int = 1) -> None:
        """Events muted for `destination` (a silence or a maintenance window), not delivered there."""
        self.counts[f"silenced:{destination}"] += n

    def reminder(self, destination: str, n: int = 1) -> None:
        self.counts[f"reminders:{destination}"] += n

    def held(self, destination: str, n: int = 1) -> None:
        """Deliveries held for `destination` while its circuit was open or flushing (core/circuit.py)."""
        self.counts[f"held:{destination}"] += n

    def merge(self, other: StatsRecorder) -> None:
        self.counts.update(other.counts)

    def drain(self) -> dict[str, int]:
        out = {k: v for k, v in self.counts.items() if v}
        self.counts.clear()
        return out


@dataclass(frozen=True)
class HistogramCounts:
    """One label's observations of one histogram: per bucket index (len(buckets) is +Inf) and the sum."""

    buckets: dict[int, int] = field(default_factory=dict)
    sum_seconds: float = 0.0


@dataclass(frozen=True)
class Stats:
    """The stats hash, read back into what each field means."""

    polls: dict[tuple[str, str], int] = field(default_factory=dict)            # (provider, outcome)
    events_by_provider: dict[str, int] = field(default_factory=dict)
    events_by_type: dict[str, int] = field(default_factory=dict)
    deliveries: dict[DeliveryOutcome, int] = field(default_factory=dict)        # all destinations
    deliveries_by_destination: dict[tuple[str, str], int] = field(default_factory=dict)  # (destination, outcome)
    histograms: dict[str, dict[str, HistogramCounts]] = field(default_factory=dict)      # histogram -> label -> counts
    corrupt_records: int = 0
    silenced: dict[str, int] = field(default_factory=dict)    # destination
    reminders: dict[str, int] = field(default_factory=dict)   # destination
    held: dict[str, int] = field(default_factory=dict)        # destination
    unknown: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(self.events_by_provider.values())


def parse_stats(counters: Mapping[str, int]) -> Stats:
    """`Stats` of the hash's counters; a field of no known form goes to `unknown`. Pure."""
    stats = Stats(histograms={h: {} for h in HISTOGRAMS})
    sums: dict[tuple[str, str], int] = {}
    for name, n in counters.items():
        kind, _, rest = name.partition(":")
        if kind == "polls" and rest.count(":") >= 1:
            provider, _, outcome = rest.partition(":")
            stats.polls[(provider, outcome)] = n
        elif kind == "events" and rest:
            stats.events_by_provider[rest] = n
        elif kind == "events_type" and rest:
            stats.events_by_type[rest] = n
        elif kind == "deliveries" and ":" in rest:
            destination, _, outcome = rest.rpartition(":")
            stats.deliveries_by_destination[(destination, outcome)] = n
        elif name.removeprefix("deliveries_") in DELIVERY_OUTCOMES and name.startswith("deliveries_"):
            stats.deliveries[name.removeprefix("deliveries_")] = n  # type: ignore[index]
        elif kind == "lat" and _histogram_field(rest, n, stats, sums):
            pass
        elif kind == "silenced" and rest:
            stats.silenced[rest] = n
        elif kind == "reminders" and rest:
            stats.reminders[rest] = n
        elif kind == "held" and rest:
            stats.held[rest] = n
        elif name == CORRUPT_RECORDS:
            object.__setattr__(stats, "corrupt_records", n)
        else:
            stats.unknown[name] = n
    for (histogram, label), total in sums.items():
        counts = stats.histograms[histogram].get(label, HistogramCounts())
        stats.histograms[histogram][label] = HistogramCounts(counts.buckets, total / 1_000_000)
    return stats


def _histogram_field(rest: str, n: int, stats: Stats, sums: dict[tuple[str, str], int]) -> bool:
    histogram, _, tail = rest.partition(":")
    label, _, bucket = tail.rpartition(":")
    if histogram not in HISTOGRAMS or not label:
        return False
    if bucket == "sum_us":
        sums[(histogram, label)] = n
        return True
    if not bucket.isdigit() or int(bucket) > len(HISTOGRAMS[histogram][2]):
        return False
    stats.histograms[histogram].setdefault(label, HistogramCounts()).buckets[int(bucket)] = n
    return True

