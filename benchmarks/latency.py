"""Scenario 4: from a change at the provider to the receiver's 2xx.

The simulator serves the orders here, because orders must change while statehook polls
them. Its load stays modest (10,000 orders every 10 s is ~1,000 requests/s); its request
rate over the run is reported beside the figure so that one can see it kept up.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks.stack import stat, wait_until, workers, write_config
from model.resources import ResourceRef
from simulator.artistree import ArtistreeSim
from simulator.core import Simulator
from simulator.receivers import Received, WebhookReceiver
from store import keys
from store.snapshots import Store, WatchMeta

__all__ = ["latency"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


async def latency(
    redis: aioredis.Redis,
    redis_url: str,
    receiver: WebhookReceiver,
    workdir: Path,
    log: Path,
    *,
    n: int = 10_000,
    interval: float = 10.0,
    change_for: float = 10.0,
    changes_per_s: float = 45.0,
) -> dict[str, Any]:
    t = time.perf_counter()
    await redis.flushall()
    receiver.received.clear()
    sim = Simulator([ArtistreeSim(seed=11)], seed=11)
    base = await sim.start()
    art: ArtistreeSim = sim["artistree"]
    ids = art.add_many(n)
    config = write_config(
        workdir / "latency.toml", redis_url=redis_url, base_url=f"{base}/artistree",
        token_url=f"{base}/artistree/oauth2/token", receiver_url=receiver.url, concurrency=64,
    )
    changed_at: dict[str, float] = {}
    seen: dict[str, float] = {}
    receiver.on_receive = _first_seen(changed_at, seen)
    phases = {"setup_s": time.perf_counter() - t}
    try:
        async with workers(config, 1, log, redis):
            phases["start_s"] = time.perf_counter() - t - phases["setup_s"]
            rng = random.Random(5)
            await _spread_first_polls(redis, ids, interval, rng)

            async def baselined() -> bool:
                return await stat(redis, "polls:artistree:baseline") >= n

            await wait_until(baselined, interval * 3 + 30, "baseline polls")
            phases["baseline_s"] = time.perf_counter() - t - phases["setup_s"] - phases["start_s"]
            requests_before, t_before = sim.requests["artistree"], time.perf_counter()
            await _change_orders(art, ids, rng, change_for, changes_per_s, changed_at)
            sim_rate = (sim.requests["artistree"] - requests_before) / (time.perf_counter() - t_before)
            phases["drain_s"] = await _drain(changed_at, seen, interval * 3)
            failures = await stat(redis, "polls:artistree:unavailable", "polls:artistree:error")
            t_stop = time.perf_counter()
        phases["worker_stop_s"] = time.perf_counter() - t_stop
    finally:
        receiver.on_receive = None
        t_sim = time.perf_counter()
        await sim.stop()
        phases["simulator_stop_s"] = time.perf_counter() - t_sim
    phases["total_s"] = time.perf_counter() - t
    return _figures(n, interval, changed_at, seen, sim_rate, failures, phases)


def _first_seen(changed_at: dict[str, float], seen: dict[str, float]) -> Callable[[Received], None]:
    """The receiver's hook: when each changed order's first delivery arrived."""

    def on_receive(item: Received) -> None:
        oid = item.event["resource"]["id"]
        if oid in changed_at and oid not in seen:
            seen[oid] = item.at

    return on_receive


async def _spread_first_polls(redis: aioredis.Redis, ids: list[str], interval: float, rng: random.Random) -> None:
    """The first polls spread over one interval, as a running system's due times are:
    written before the watches (which keep a due time that exists), from a second ahead,
    so that no scheduler tick claims a watch at its default due time (now) between the two
    writes; after such a claim the 10,000 polled together and stayed bunched, and p99 rose
    from ~+0.0 to +0.67 s."""
    rkeys = [ResourceRef("artistree", "order", i).key for i in ids]
    now = time.time() + 1.0
    await redis.zadd(keys.DUE, {k: now + rng.uniform(0, interval) for k in rkeys})
    await Store(redis).add_watches([(k, WatchMeta(interval=interval)) for k in rkeys])


async def _change_orders(
    art: ArtistreeSim, ids: list[str], rng: random.Random, change_for: float, changes_per_s: float,
    changed_at: dict[str, float],
) -> None:
    """Orders (each at most once) change state at `changes_per_s` for `change_for` seconds."""
    pool = list(ids)
    rng.shuffle(pool)
    step = 1.0 / changes_per_s
    end = time.perf_counter() + change_for
    while time.perf_counter() < end and pool:
        oid = pool.pop()
        art.set_state(oid, "Action Required")
        changed_at[oid] = time.time()
        await asyncio.sleep(step)


async def _drain(changed_at: dict[str, float], seen: dict[str, float], timeout: float) -> float:
    """Seconds spent waiting for every change's delivery (at most `timeout`)."""

    async def all_seen() -> bool:
        return len(seen) >= len(changed_at)

    t_drain = time.perf_counter()
    try:
        await wait_until(all_seen, timeout, "deliveries of the changes", every=0.1)
    except TimeoutError:
        pass
    return time.perf_counter() - t_drain


def _figures(
    n: int, interval: float, changed_at: dict[str, float], seen: dict[str, float], sim_rate: float,
    failures: int, phases: dict[str, float],
) -> dict[str, Any]:
    lat = [seen[oid] - changed_at[oid] for oid in changed_at if oid in seen]
    return {
        "watched": n,
        "interval_s": interval,
        "changes": len(changed_at),
        "delivered": len(lat),
        "missing": len(changed_at) - len(lat),
        "p50_s": percentile(lat, 50),
        "p99_s": percentile(lat, 99),
        "max_s": max(lat) if lat else float("nan"),
        "mean_s": statistics.mean(lat) if lat else float("nan"),
        "p99_over_interval_s": percentile(lat, 99) - interval,
        "sim_requests_per_s": sim_rate,
        "phases": phases,
        "poll_failures": failures,
        "samples": lat,
    }
