"""The scenarios of issue 6 against nginx: polling throughput (one and two workers),
scans, deliveries and footprint. Each returns plain figures for the report."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks.payloads import Orders
from benchmarks.raw import raw_list_parse
from benchmarks.stack import HEALTH_INTERVAL, stat, wait_until, workers
from model.resources import ResourceRef
from simulator.receivers import WebhookReceiver
from store import keys
from store.snapshots import Store, WatchMeta

__all__ = ["POLL_ROUNDS", "Bench", "count_delivered", "footprint", "polling", "scan"]

POLLS = "polls:artistree:"
POLL_ROUNDS = 4
"""Two-worker passes of the polling scenario, each between one-worker passes (poll_ratio: the median of one more)."""


@dataclass
class Bench:
    """What every scenario shares: Redis, the payloads, the config and where logs go."""

    redis: aioredis.Redis
    redis_url: str
    base_url: str
    orders: Orders
    config: Path
    log: Path
    receiver: WebhookReceiver

    def rkeys(self, n: int, start: int = 0) -> list[str]:
        return [ResourceRef("artistree", "order", i).key for i in self.orders.ids[start : start + n]]

    async def reset(self) -> None:
        await self.redis.flushall()
        self.receiver.received.clear()
        self.receiver.attempts.clear()


async def _watch(redis: aioredis.Redis, rkeys: Sequence[str], interval: float) -> None:
    store = Store(redis)
    meta = WatchMeta(interval=interval)
    for i in range(0, len(rkeys), 10_000):
        await store.add_watches([(k, meta) for k in rkeys[i : i + 10_000]])


async def _make_due(redis: aioredis.Redis, rkeys: Sequence[str], when: float) -> None:
    """All at once (MULTI): a scheduler tick between two of the ZADDs would claim only part,
    the rest a tick (1 s) later, and the pass, timed from the claim of the last entry,
    would look up to a second shorter than it was."""
    async with redis.pipeline(transaction=True) as pipe:
        for i in range(0, len(rkeys), 5000):
            pipe.zadd(keys.DUE, {k: when for k in rkeys[i : i + 5000]}, xx=True)
        await pipe.execute()


async def timed_pass(
    redis: aioredis.Redis, rkeys: Sequence[str], outcome: str, timeout: float = 120
) -> dict[str, float]:
    """Makes `rkeys` due now and times the workers' pass over them: from the scheduler's
    claim (the due entries leave `now`) to the last batch's outcome in the stats."""
    before = await stat(redis, POLLS + outcome)
    now = time.time()
    set_at = time.perf_counter()
    await _make_due(redis, rkeys, now)

    async def claimed() -> bool:
        return int(await redis.zcount(keys.DUE, "-inf", now)) == 0

    claim_at = await wait_until(claimed, timeout, "the scheduler's claim", every=0.005)
    done_at = await counted(redis, POLLS + outcome, before + len(rkeys), timeout)
    return {"per_s": len(rkeys) / (done_at - claim_at), "wait_for_tick_s": claim_at - set_at}


async def counted(redis: aioredis.Redis, name: str, target: int, timeout: float) -> float:
    """Waits until the stat `name` reaches `target`; returns when it was seen (perf_counter).
    Reads sparsely while much is left and every 5 ms near the end: at a fixed 10 ms the
    bench's own reads took ~0.05 of a core from the two that the workers share."""
    deadline = time.perf_counter() + timeout
    start, first = time.perf_counter(), await stat(redis, name)
    while True:
        now, count = time.perf_counter(), await stat(redis, name)
        if count >= target:
            return now
        if now > deadline:
            raise TimeoutError(f"gave up waiting for {target - count} more {name} after {timeout:.0f}s")
        rate = (count - first) / (now - start) if count > first else 0.0
        left_s = (target - count) / rate if rate else 0.05
        await asyncio.sleep(min(0.2, max(0.005, left_s / 3)))


async def polling(
    b: Bench,
    n: int,
    raw: Callable[[], Awaitable[float]],
    *,
    rounds: int = POLL_ROUNDS,
    raw_processes: Callable[[], Awaitable[float]] | None = None,
    changes: int = 2000,
    baselined: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scenarios 1 and 6 together: `n` watched orders, all due, polled in `2 * rounds + 1`
    passes that alternate between one worker and two (1, 2, 1, ..., 2, 1): the first worker
    runs throughout and a second starts before each two-worker pass and stops after it.

    A raw client loop runs before the first pass and after each. Scenario 1's figure is the
    median, over the one-worker passes, of each pass over the mean of the raw loops on
    either side; scenario 6's is the median, over the two-worker passes, of each pass over
    the mean of the one-worker passes on either side. This VM's speed drifts by ±20% within
    seconds, so each figure compares work done at most seconds apart, the same work for
    scale-out. With `raw_processes`, the raw loop also runs in two processes before each
    two-worker pass: what a second process gains on this machine at all, beside the raw
    loop just before it. Last, `changes` orders that are not among the `n` change at nginx
    and two workers poll them: each change must be delivered exactly once.
    `baselined`: every order is already watched and baselined (by the footprint scenario,
    just before), so the passes run among all of them."""
    rkeys, changed = b.rkeys(n), b.rkeys(changes, start=n)
    one: dict[str, Any] = {"n": n, "processes": 1, "watched": len(b.orders.ids) if baselined else n + changes}
    two: dict[str, Any] = {"n": n, "processes": 2}
    if not baselined:
        await b.reset()
    async with workers(b.config, 1, b.log, b.redis) as first:
        if not baselined:
            t0 = time.perf_counter()
            await _watch(b.redis, rkeys + changed, 3600)
            await wait_until(lambda: _reached(b.redis, POLLS + "baseline", n + len(changed)), 120, "baseline polls")
            one["baseline_per_s"] = (n + len(changed)) / (time.perf_counter() - t0)
        raws, passes, machine = await _alternating_passes(b, rkeys, raw, raw_processes, rounds)
        one["rss_mb"] = [r for r, _ in first.rss_mb()]
        async with _second_worker(b):
            two.update(await _changes_delivered_once(b, changed))
    _pass_figures(one, two, raws, passes, machine)
    return one, two


async def _alternating_passes(
    b: Bench, rkeys: list[str], raw: Callable[[], Awaitable[float]],
    raw_processes: Callable[[], Awaitable[float]] | None, rounds: int,
) -> tuple[list[float], list[float], list[float]]:
    """`2 * rounds + 1` passes, one worker then two alternately, with a raw loop before the
    first and after each: (raw loops' rates, passes' rates, two raw processes over one)."""
    raws = [await raw()]
    passes: list[float] = []
    machine: list[float] = []
    for i in range(2 * rounds + 1):
        if i % 2 == 0:
            passes.append((await timed_pass(b.redis, rkeys, "unchanged"))["per_s"])
        else:
            if raw_processes is not None:
                machine.append(await raw_processes() / raws[-1])
            async with _second_worker(b):
                passes.append((await timed_pass(b.redis, rkeys, "unchanged"))["per_s"])
        raws.append(await raw())
    return raws, passes, machine


def _pass_figures(
    one: dict[str, Any], two: dict[str, Any], raws: list[float], passes: list[float], machine: list[float]
) -> None:
    """Scenario 1's and 6's figures from the passes (see `polling`), into `one` and `two`."""
    # pass i sits between raw loops i and i + 1, and a two-worker pass between one-worker ones
    vs_raw = [p / ((raws[i] + raws[i + 1]) / 2) for i, p in enumerate(passes)]
    singles, doubles = passes[0::2], passes[1::2]
    one.update({
        "raw_passes_per_s": raws, "passes_per_s": singles, "ratios": vs_raw[0::2],
        "raw_per_s": statistics.median(raws), "polls_per_s": statistics.median(singles),
        "ratio": statistics.median(vs_raw[0::2]),
    })
    two.update({
        "passes_per_s": doubles, "polls_per_s": statistics.median(doubles),
        "ratios": vs_raw[1::2], "ratio": statistics.median(vs_raw[1::2]),
        "vs_one": [d / ((a + z) / 2) for d, a, z in zip(doubles, singles, singles[1:], strict=False)],
    })
    two["scale_out"] = statistics.median(two["vs_one"])
    if machine:
        two["raw_processes_ratios"] = machine
        two["raw_processes_ratio"] = statistics.median(machine)


@contextlib.asynccontextmanager
async def _second_worker(b: Bench) -> AsyncIterator[None]:
    """A second worker beside the running one, each holding its half of the concurrency
    (they take their share at each heartbeat); stopped afterwards, the first holding its
    whole share again."""
    async with workers(b.config, 1, b.log, b.redis):
        await asyncio.sleep(2 * HEALTH_INTERVAL)
        yield
    await asyncio.sleep(2 * HEALTH_INTERVAL)


async def _reached(redis: aioredis.Redis, name: str, n: int) -> bool:
    return await stat(redis, name) >= n


async def _changes_delivered_once(b: Bench, rkeys: Sequence[str]) -> dict[str, Any]:
    """Every order of `rkeys` (watched and baselined) changes state at the provider; every
    worker may poll it; the receiver must see each change exactly once."""
    before = await _record_bytes(b.redis, rkeys[:200])
    for rkey in rkeys:
        b.orders.rewrite_state(ResourceRef.parse(rkey).id, "Action Required")
    await timed_pass(b.redis, rkeys, "changed")
    await wait_until(lambda: count_delivered(b.receiver, len(rkeys)), 60, "deliveries of the changes")
    counts = b.receiver.unique_ids()
    history = [a - b for a, b in zip(await _record_bytes(b.redis, rkeys[:200]), before, strict=True)]
    for rkey in rkeys:  # the files go back to what the other scenarios expect
        b.orders.rewrite_state(ResourceRef.parse(rkey).id, "In Progress")
    return {
        "changes": len(rkeys),
        "delivered_unique": len(counts),
        "duplicates": sum(v - 1 for v in counts.values()),
        "history_bytes_one_event": statistics.mean(history),
    }


async def count_delivered(receiver: WebhookReceiver, n: int) -> bool:
    return len(receiver.delivered) >= n


async def scan(b: Bench, *, passes: int = 3) -> dict[str, Any]:
    """Scenario 2: one scan watch over the project's 100,000 orders, 1,000 per page. Each
    pass is a bare fetch + parse of the same pages and then a sweep, back to back; the
    figures are the median pass's (the machine's speed drifts between passes)."""
    await b.reset()
    n = len(b.orders.ids)
    rkey = ResourceRef("artistree", "scan", f"project_id={b.orders.project_id}").key
    meta = WatchMeta(interval=3600, scan={"project_id": b.orders.project_id})
    async with workers(b.config, 1, b.log, b.redis):
        t0 = time.perf_counter()
        await Store(b.redis).add_watches([(rkey, meta)])
        await wait_until(lambda: _reached(b.redis, POLLS + "baseline", n), 180, "the baseline scan")
        baseline = n / (time.perf_counter() - t0)
        runs, parse_only = [], []
        for _ in range(passes):  # each pass beside the naive floor, back to back
            parse_only.append(await raw_list_parse(f"{b.base_url}/v1/orders", n))
            before = await stat(b.redis, POLLS + "unchanged")
            runs.append(await _timed_scan(b.redis, rkey, n, before))
    ratios = [r / p for r, p in zip(runs, parse_only, strict=True)]
    return {"orders": n, "pages": b.orders.pages, "baseline_per_s": baseline, "passes_per_s": runs,
            "orders_per_s": statistics.median(runs), "fetch_and_parse_per_s": parse_only,
            "pass_ratios": ratios, "vs_fetch_and_parse": statistics.median(ratios)}


async def _timed_scan(redis: aioredis.Redis, rkey: str, n: int, before: int) -> float:
    now = time.time()
    await redis.zadd(keys.DUE, {rkey: now}, xx=True)

    async def claimed() -> bool:
        score = await redis.zscore(keys.DUE, rkey)
        return score is not None and score > now

    claim_at = await wait_until(claimed, 30, "the scan's claim", every=0.005)
    done_at = await counted(redis, POLLS + "unchanged", before + n, 120)
    return n / (done_at - claim_at)


async def footprint(b: Bench, n: int, *, history_sample: int = 200) -> dict[str, Any]:
    """Scenario 5: `n` watched orders polled once (baseline): Redis bytes per order and
    the worker's RSS; then `history_sample` of them change state once, for the bytes of a
    history list holding one event (measured after the baseline's figure is taken)."""
    await b.reset()
    base = int((await b.redis.info("memory"))["used_memory"])
    rkeys = b.rkeys(n)
    async with workers(b.config, 1, b.log, b.redis) as w:
        t0 = time.perf_counter()
        await _watch(b.redis, rkeys, 3600)
        await wait_until(lambda: _reached(b.redis, POLLS + "baseline", n), 240, "baseline polls")
        rate = n / (time.perf_counter() - t0)
        (rss, peak), = w.rss_mb()
        used = int((await b.redis.info("memory"))["used_memory"])
        arq = 0
        async for key in b.redis.scan_iter(match="arq:*", count=1000):
            arq += int(await b.redis.memory_usage(key) or 0)
        history = await _history_bytes(b, rkeys[-history_sample:])  # not served from memory
    return {
        "watched": n,
        "history_bytes_one_event": history,
        "baseline_per_s": rate,
        "used_memory_delta": used - base,
        "arq_bytes": arq,
        "bytes_per_order": (used - base - arq) / n,
        "bytes_per_order_with_arq": (used - base) / n,
        "worker_rss_mb": rss,
        "worker_peak_rss_mb": peak,
    }


async def _record_bytes(redis: aioredis.Redis, rkeys: Sequence[str]) -> list[int]:
    """MEMORY USAGE of each resource's record and old timeline list together (the list is
    gone once the record holds the timeline: store/record_frame.py)."""
    return [sum([int(await redis.memory_usage(key) or 0) for key in (keys.snapshot(k), keys.old_timeline(k))])
            for k in rkeys]


async def _history_bytes(b: Bench, rkeys: Sequence[str]) -> float:
    """What one event's timeline entry adds to the bytes of each of `rkeys` (their records'
    MEMORY USAGE after each order changed state once, less before; as `_changes_delivered_once`
    measures it in scenario 6); the files go back after."""
    before = await _record_bytes(b.redis, rkeys)
    for rkey in rkeys:
        b.orders.rewrite_state(ResourceRef.parse(rkey).id, "Action Required")
    try:
        await timed_pass(b.redis, rkeys, "changed")
        await wait_until(lambda: count_delivered(b.receiver, len(rkeys)), 60, "deliveries of the changes")
        after = await _record_bytes(b.redis, rkeys)
        return statistics.mean(a - b for a, b in zip(after, before, strict=True))
    finally:
        for rkey in rkeys:
            b.orders.rewrite_state(ResourceRef.parse(rkey).id, "In Progress")
