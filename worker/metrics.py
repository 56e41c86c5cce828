"""Metrics: counted in Redis by the workers (their names and recording: store/stats.py),
exposed in Prometheus format by the API.

Workers and the API are separate processes (and workers are many), so counters and
histograms live in one Redis hash (`sh:stats`) that every worker increments and the API
reads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from core.circuit import Status
from store.circuit import Circuits
from store.deliveries import Deliveries
from store.outbox import Outbox
from store.reads import Reads
from store.registry import WorkerRegistry
from store.stats import HISTOGRAMS, HistogramCounts, parse_stats

__all__ = [
    "CONTENT_TYPE_LATEST",
    "CircuitGauge",
    "Gauges",
    "circuit_gauges",
    "families",
    "read_gauges",
    "render",
]

# ---- exposition (API) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CircuitGauge:
    """A destination whose circuit is not closed, and the deliveries it holds."""

    destination: str
    status: Status
    held: int


@dataclass(frozen=True, slots=True)
class Gauges:
    """Values read from Redis at scrape time."""

    due_backlog: int = 0
    watched: int = 0
    outbox_backlog: int = 0
    dead_letters: int = 0
    workers: int = 0
    destinations_disabled: int = 0
    circuits: tuple[CircuitGauge, ...] = ()
    """the destinations whose circuit is open or flushing (a closed one is not listed)"""


def _histogram(name: str, label: str, helptext: str, buckets: tuple[float, ...],
               per_label: Mapping[str, HistogramCounts]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, helptext, labels=[label])
    for value, counts in sorted(per_label.items()):
        cumulative, rows = 0, []
        for i, bound in enumerate((*buckets, float("inf"))):
            cumulative += counts.buckets.get(i, 0)
            rows.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
        family.add_metric([value], rows, sum_value=counts.sum_seconds)
    return family


def families(counters: Mapping[str, int], gauges: Gauges) -> list[Metric]:
    """The Prometheus metric families of a stats hash and the scrape-time gauges. Pure."""
    stats = parse_stats(counters)
    polls = CounterMetricFamily("statehook_polls", "Poll outcomes, per resource", labels=["provider", "outcome"])
    for (provider, outcome), n in sorted(stats.polls.items()):
        polls.add_metric([provider, outcome], n)
    events = CounterMetricFamily("statehook_events", "Events committed to the outbox", labels=["provider", "type"])
    for event_type, n in sorted(stats.events_by_type.items()):
        events.add_metric([event_type.split(".", 1)[0], event_type], n)
    deliveries = CounterMetricFamily("statehook_deliveries", "Delivery attempts by destination and outcome",
                                     labels=["destination", "outcome"])
    for (destination, outcome), n in sorted(stats.deliveries_by_destination.items()):
        deliveries.add_metric([destination, outcome], n)
    corrupt = CounterMetricFamily("statehook_corrupt_records",
                                  "Stored records that could not be read (logged with their key and skipped)",
                                  value=stats.corrupt_records)
    silenced = CounterMetricFamily("statehook_silenced", "Events muted by a silence or a maintenance window",
                                   labels=["destination"])
    for destination, n in sorted(stats.silenced.items()):
        silenced.add_metric([destination], n)
    reminders = CounterMetricFamily("statehook_reminders", "Reminder events sent while a critical state lasts",
                                    labels=["destination"])
    for destination, n in sorted(stats.reminders.items()):
        reminders.add_metric([destination], n)
    held = CounterMetricFamily("statehook_deliveries_held",
                               "Deliveries held while their destination's circuit was open or flushing",
                               labels=["destination"])
    for destination, n in sorted(stats.held.items()):
        held.add_metric([destination], n)
    out: list[Metric] = [polls, events, deliveries, corrupt, silenced, reminders, held]
    for histogram, (metric, label, buckets, helptext) in HISTOGRAMS.items():
        out.append(_histogram(metric, label, helptext, buckets, stats.histograms[histogram]))
    for attr, metric, helptext in (
        ("due_backlog", "statehook_due_backlog", "Watched resources whose poll is due now or overdue"),
        ("watched", "statehook_watched_resources", "Resources watched (explicit ids and scans)"),
        ("outbox_backlog", "statehook_outbox_backlog", "Outbox events not yet dispatched or acknowledged"),
        ("dead_letters", "statehook_dead_letters", "Deliveries in the dead-letter stream"),
        ("workers", "statehook_workers", "Workers with a fresh heartbeat"),
        ("destinations_disabled", "statehook_destinations_disabled", "Destinations disabled (410 Gone)"),
    ):
        out.append(GaugeMetricFamily(metric, helptext, value=getattr(gauges, attr)))
    circuit = GaugeMetricFamily("statehook_circuit_open",
                                "1 for a destination whose circuit is open or flushing (state), absent when closed",
                                labels=["destination", "state"])
    held_now = GaugeMetricFamily("statehook_deliveries_held_now",
                                 "Deliveries held now by a destination's open or flushing circuit",
                                 labels=["destination"])
    for c in sorted(gauges.circuits, key=lambda c: c.destination):
        circuit.add_metric([c.destination, c.status.value], 1)
        held_now.add_metric([c.destination], c.held)
    return [*out, circuit, held_now]


async def read_gauges(redis: aioredis.Redis, now: float | None = None) -> Gauges:
    now = time.time() if now is None else now
    due, watched = await Reads(redis).watch_counts(now)
    workers = await WorkerRegistry(redis).beats(now)
    dead, disabled, backlog = await _delivery_gauges(redis)
    return Gauges(
        due_backlog=due, watched=watched, outbox_backlog=backlog, dead_letters=dead,
        workers=sum(1 for w in workers if w.fresh(now)), destinations_disabled=disabled,
        circuits=await circuit_gauges(Circuits(redis)),
    )


async def circuit_gauges(circuits: Circuits) -> tuple[CircuitGauge, ...]:
    """The circuits not closed: one read each of the (few) destinations on the watcher's list."""
    out = []
    for destination in await circuits.not_closed():
        circuit = await circuits.read(destination)
        if circuit.status is not Status.CLOSED:
            out.append(CircuitGauge(destination, circuit.status, await circuits.held_count(destination)))
    return tuple(out)


async def _delivery_gauges(redis: aioredis.Redis) -> tuple[int, int, int]:
    """(dead letters, destinations disabled, outbox backlog)."""
    dead, disabled = await Deliveries(redis).gauges()
    return dead, disabled, await Outbox(redis).backlog()


class _Fixed(Collector):
    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


async def render(redis: aioredis.Redis) -> bytes:
    """The Prometheus text exposition of the shared stats, read now."""
    stats = await Reads(redis).stats()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families(stats, await read_gauges(redis))))
    return generate_latest(registry)
