"""Metrics: counted in Redis by the workers, exposed in Prometheus format by the API.

Workers and the API are separate processes (and workers are many), so counters and
histograms live in one Redis hash (`sh:stats`) that every worker increments and the API
reads. A histogram is one field per bucket plus a sum in microseconds (HINCRBY takes
integers). Field names:

    polls:{provider}:{outcome}         poll outcomes (unchanged, changed, baseline, …)
    events:{provider}, events_type:{type}
    deliveries_ok|_retried|_dead       all destinations
    deliveries:{destination}:{outcome} per destination: ok, retried, dead
    lat:{histogram}:{label}:{i}        observations in bucket i (i = len(buckets): +Inf)
    lat:{histogram}:{label}:sum_us     sum of the observations, microseconds

The recording side is cheap on purpose: a poll batch accumulates in memory
(`LatencyRecorder`) and its counts go out with the batch's single HINCRBY pipeline.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from tasks import keys

log = logging.getLogger("statehook.metrics")

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DELIVERY_BUCKETS",
    "HISTOGRAMS",
    "POLL_BUCKETS",
    "Gauges",
    "LatencyRecorder",
    "delivery_counts",
    "families",
    "latency_counts",
    "read_gauges",
    "read_stats",
    "render",
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


# ---- recording (workers) -------------------------------------------------------------


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


# ---- exposition (API) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gauges:
    """Values read from Redis at scrape time."""

    due_backlog: int = 0
    watched: int = 0
    outbox_backlog: int = 0
    dead_letters: int = 0
    workers: int = 0
    destinations_disabled: int = 0


def _histogram(name: str, label: str, helptext: str, buckets: tuple[float, ...],
               per_label: dict[str, dict[str, int]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, helptext, labels=[label])
    for value, fields in sorted(per_label.items()):
        cumulative, rows = 0, []
        for i, bound in enumerate((*buckets, float("inf"))):
            cumulative += fields.get(str(i), 0)
            rows.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
        family.add_metric([value], rows, sum_value=fields.get("sum_us", 0) / 1_000_000)
    return family


def families(stats: Mapping[str, int], gauges: Gauges) -> list[Metric]:
    """The Prometheus metric families of a stats hash and the scrape-time gauges. Pure."""
    polls = CounterMetricFamily("statehook_polls", "Poll outcomes, per resource", labels=["provider", "outcome"])
    events = CounterMetricFamily("statehook_events", "Events committed to the outbox", labels=["provider", "type"])
    deliveries = CounterMetricFamily("statehook_deliveries", "Delivery attempts by destination and outcome",
                                     labels=["destination", "outcome"])
    hist: dict[str, dict[str, dict[str, int]]] = {h: {} for h in HISTOGRAMS}
    for name, n in sorted(stats.items()):
        kind, _, rest = name.partition(":")
        if kind == "polls":
            provider, _, outcome = rest.partition(":")
            polls.add_metric([provider, outcome], n)
        elif kind == "events_type":
            events.add_metric([rest.split(".", 1)[0], rest], n)
        elif kind == "deliveries":
            destination, _, outcome = rest.rpartition(":")
            deliveries.add_metric([destination, outcome], n)
        elif kind == "lat":
            histogram, _, tail = rest.partition(":")
            label, _, bucket = tail.rpartition(":")
            if histogram in hist:
                hist[histogram].setdefault(label, {})[bucket] = n
    corrupt = CounterMetricFamily("statehook_corrupt_records",
                                  "Stored records that could not be read (logged with their key and skipped)",
                                  value=stats.get("corrupt_records", 0))
    out: list[Metric] = [polls, events, deliveries, corrupt]
    for histogram, (metric, label, buckets, helptext) in HISTOGRAMS.items():
        out.append(_histogram(metric, label, helptext, buckets, hist[histogram]))
    for attr, metric, helptext in (
        ("due_backlog", "statehook_due_backlog", "Watched resources whose poll is due now or overdue"),
        ("watched", "statehook_watched_resources", "Resources watched (explicit ids and scans)"),
        ("outbox_backlog", "statehook_outbox_backlog", "Outbox events not yet dispatched or acknowledged"),
        ("dead_letters", "statehook_dead_letters", "Deliveries in the dead-letter stream"),
        ("workers", "statehook_workers", "Workers with a fresh heartbeat"),
        ("destinations_disabled", "statehook_destinations_disabled", "Destinations disabled (410 Gone)"),
    ):
        out.append(GaugeMetricFamily(metric, helptext, value=getattr(gauges, attr)))
    return out


async def fresh_workers(redis: aioredis.Redis, now: float | None = None) -> list[dict[str, Any]]:
    """The heartbeats of workers (`sh:health:{worker_id}`), with their age and whether
    each is fresher than its interval (plus 10 %, at least one second, for the write)."""
    now = time.time() if now is None else now
    found: list[str] = []
    # SCAN walks the whole keyspace (snapshots included): large steps keep it to a few calls
    async for key in redis.scan_iter(match=keys.HEALTH_PREFIX + "*", count=5000):
        found.append(key.decode() if isinstance(key, bytes) else key)
    if not found:
        return []
    values = await redis.mget(found)
    out = []
    for key, raw in zip(found, values, strict=True):
        if raw is None:
            continue
        beat = parse_heartbeat(raw)
        if beat is None:
            log.warning("unreadable record skipped: %s: not a heartbeat", key, extra={"key": key})
            continue
        age = max(0.0, now - beat["at"])
        allowance = max(1.0, beat["interval"] * 0.1)
        out.append({"worker": key.removeprefix(keys.HEALTH_PREFIX), "age": round(age, 3),
                    "interval": beat["interval"], "fresh": age <= beat["interval"] + allowance})
    return out


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def parse_heartbeat(raw: bytes | str) -> dict[str, float] | None:
    """`{"at": unix time, "interval": seconds}`; a bare timestamp (older workers) counts
    with the default interval of 30 s. None for a value that is neither."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict):
        at, interval = _seconds(data.get("at")), _seconds(data.get("interval", 30.0))
    else:
        at, interval = _seconds(data), 30.0
    if at is None or interval is None:
        return None
    return {"at": at, "interval": interval}


def read_stats(raw: Mapping[bytes, bytes]) -> dict[str, int]:
    """The stats hash as counters; a field that is not an integer is logged and left out."""
    stats = {}
    for k, v in raw.items():
        name = k.decode(errors="replace")
        try:
            stats[name] = int(v)
        except ValueError:
            log.warning("unreadable record skipped: %s[%s]: not a counter", keys.STATS, name,
                        extra={"key": f"{keys.STATS}[{name}]"})
    return stats


async def read_gauges(redis: aioredis.Redis, now: float | None = None) -> Gauges:
    from tasks.dispatch import outbox_backlog

    now = time.time() if now is None else now
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(keys.DUE, "-inf", now)
        pipe.hlen(keys.META)
        pipe.xlen(keys.DLQ)
        pipe.hlen(keys.DISABLED)
        due, watched, dead, disabled = await pipe.execute()
    workers = await fresh_workers(redis, now)
    return Gauges(
        due_backlog=int(due), watched=int(watched), outbox_backlog=await outbox_backlog(redis),
        dead_letters=int(dead), workers=sum(1 for w in workers if w["fresh"]), destinations_disabled=int(disabled),
    )


class _Fixed(Collector):
    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


async def render(redis: aioredis.Redis) -> bytes:
    """The Prometheus text exposition of the shared stats, read now."""
    stats = read_stats(await redis.hgetall(keys.STATS))  # type: ignore[misc]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families(stats, await read_gauges(redis))))
    return generate_latest(registry)
