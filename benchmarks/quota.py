"""Scale-out with the machine taken out of the figure: every worker process held to a
quarter of a core (cgroup v1 cpu quota), 1, 2 and 4 of them against one Redis and one
nginx. Four such workers use one core of the two, beside nginx and Redis, so the figure
measures what statehook's work shares (the scheduler, the queue, Redis) rather than how
two busy vCPUs slow each other down.

The orders are watched and baselined by writing their records (`benchmarks/loader.py`);
the passes alternate with one-worker passes (1, 2, 1, 4 three times, then 1: `PASSES`), each
many-worker pass is compared with the mean of the one-worker passes on either side, as in
the polling scenario, and scale_k is the median of those ratios, since a single pair
follows the machine's drift as much as the workers (docs/performance.md).
Then changes at nginx are polled by the four workers and each must arrive once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from benchmarks import scenarios
from benchmarks.cgroups import QuotaGroups, available, cpu_seconds
from benchmarks.loader import artistree_record, load_records
from benchmarks.redisstats import CountingRedis, command_stats
from benchmarks.stack import HEALTH_INTERVAL, Workers, workers
from model.resources import ResourceRef
from store.records import WatchMeta

__all__ = ["CORES", "PASSES", "quota_scale"]

CORES = 0.25
ROUNDS = 3
PASSES = (1, *(2, 1, 4, 1) * ROUNDS)


def _provider(base_url: str) -> Any:
    from providers.artistree import ArtistreeProvider, ArtistreeSettings

    return ArtistreeProvider(ArtistreeSettings(base_url=base_url, client_id="x", client_secret="x"), None)  # type: ignore[arg-type]


async def watch_baselined(b: scenarios.Bench, rkeys: Sequence[str], *, interval: float = 3600) -> float:
    """`rkeys` (orders nginx serves) watched and baselined by writing their records: what a
    worker's baseline poll of each would leave. Returns the seconds the writes took."""
    provider = _provider(b.base_url)
    records = [artistree_record(provider, ResourceRef.parse(k), (b.orders.data / "orders" / ResourceRef.parse(k).id)
                                .read_bytes()) for k in rkeys]
    due = time.time() + interval
    return await load_records(b.redis, rkeys, lambda i: records[i], WatchMeta(interval=interval), lambda i: due)


async def quota_scale(b: scenarios.Bench, n: int, *, changes: int = 1000) -> dict[str, Any]:
    """Passes over `n` due orders with 1, 2 and 4 workers at `CORES` each (see the module)."""
    why = available()
    if why is not None:
        return {"skipped": why}
    await b.reset()
    rkeys, changed = b.rkeys(n), b.rkeys(changes, start=len(b.orders.in_memory))
    await watch_baselined(b, [*rkeys, *changed])
    counting = CountingRedis.from_url(b.redis_url)
    groups = QuotaGroups(CORES)
    passes: list[dict[str, Any]] = []
    try:
        with groups.scope():
            async with workers(b.config, 1, b.log, b.redis, on_start=groups.hold) as first:
                for count in PASSES:
                    async with _extra_workers(b, count - 1, groups) as extra:
                        passes.append(await _pass(counting, rkeys, [first, *extra], count))
                async with _extra_workers(b, 3, groups):
                    delivered = await scenarios._changes_delivered_once(b, changed)
            throttled = groups.throttled()
    finally:
        await counting.aclose()
    return _figures(n, passes, delivered, throttled)


@contextlib.asynccontextmanager
async def _extra_workers(b: scenarios.Bench, n: int, groups: QuotaGroups) -> AsyncIterator[list[Workers]]:
    """`n` more workers, each in a quota group of its own, for one pass; the workers take
    their share of the provider's concurrency at their next beats (before and after)."""
    if n <= 0:
        yield []
        return
    async with workers(b.config, n, b.log, b.redis, on_start=groups.hold) as w:
        await asyncio.sleep(2 * HEALTH_INTERVAL)
        yield [w]
    await asyncio.sleep(2 * HEALTH_INTERVAL)


async def _pass(redis: CountingRedis, rkeys: Sequence[str], running: Sequence[Workers], count: int) -> dict[str, Any]:
    pids = [p.pid for w in running for p in w.procs]
    cpu0 = [cpu_seconds(pid) for pid in pids]
    stats0 = await command_stats(redis)
    sent0 = dict(redis.sent)
    timed = await scenarios.timed_pass(redis, rkeys, "unchanged")
    # the pass's own MULTI of ZADDs (scenarios._make_due), sent through a pipeline
    redis.count("multi")
    redis.count("zadd", math.ceil(len(rkeys) / 5000))
    redis.count("exec")
    stats = await command_stats(redis) - stats0
    bench = {k: v - sent0.get(k, 0) for k, v in redis.sent.items() if v - sent0.get(k, 0)}
    own = stats.without(bench)
    seconds = len(rkeys) / timed["per_s"]
    cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
    return {
        "workers": count,
        "polls_per_s": timed["per_s"],
        "redis_commands_per_poll": own.total_calls / len(rkeys),
        "redis_usec_per_poll": own.total_usec / len(rkeys),
        "redis_commands": {k: v for k, v in sorted(own.calls.items(), key=lambda kv: -kv[1]) if v > 0},
        "worker_cores": [c / seconds for c in cpu],
    }


def _figures(n: int, passes: list[dict[str, Any]], delivered: dict[str, Any],
             throttled: list[tuple[int, float]]) -> dict[str, Any]:
    """Each many-worker pass over the mean of the one-worker passes on either side of it;
    scale_k is the median of the k-worker passes' ratios (`scale_k_passes`)."""
    rate = [p["polls_per_s"] for p in passes]
    out: dict[str, Any] = {"n": n, "cores_per_worker": CORES, "passes": passes, **delivered,
                           "throttled_periods": [t for t, _ in throttled]}
    ratios: dict[int, list[float]] = {}
    for i, p in enumerate(passes):
        if p["workers"] > 1:
            ratios.setdefault(p["workers"], []).append(rate[i] / statistics.mean((rate[i - 1], rate[i + 1])))
    for k, of_k in ratios.items():
        out[f"scale_{k}"] = statistics.median(of_k)
        out[f"scale_{k}_passes"] = of_k
    ones = [p for p in passes if p["workers"] == 1]
    out["one_worker_polls_per_s"] = statistics.median(p["polls_per_s"] for p in ones)
    for k in (1, 2, 4):
        of_k = [p for p in passes if p["workers"] == k]
        out[f"redis_commands_per_poll_{k}"] = statistics.median(p["redis_commands_per_poll"] for p in of_k)
    return out
