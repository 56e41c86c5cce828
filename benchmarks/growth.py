"""Cost grows with what is due, not with what is watched: 10,000, 100,000 and 1,000,000
watched orders, 1,000 of them due every second.

Each size lives in a Redis database of its own on the one server (SELECT 1, 2, 3), loaded
with the stored records (`benchmarks/loader.py`: meta, state, snapshot and due time per
order; the snapshots of 1,000 rendered orders, each under its own rkey `artistree:order:g…`)
and due times 1 ms apart in a shuffled order, so that every second of the schedule holds
1,000. nginx answers every `g…` order with one body, the one whose fingerprint the states
hold: a poll of any of them is the common case, unchanged.

Per size: Redis's bytes per watched order and where they go (`MEMORY USAGE` per key kind);
one worker polling the next seconds' due orders (polls/s, Redis commands and CPU per poll,
its RSS); then, with no worker running and the sizes taken in turn round after round, the
scheduler's claim of one second's orders (`Store.claim_due_times`), the tick (the claim
and its poll jobs enqueued, as `schedule_due` does), a poll batch's commit of 200 changed
orders (`Store.commit`) and the rescheduling of 200 unchanged ones. Last, what an operator
reads (`benchmarks/growth_reads.py`). Each cost is per poll; its growth is the million's
median over the ten thousand's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis

from benchmarks import growth_reads
from benchmarks.infra import GROWTH_BODY
from benchmarks.loader import Record, artistree_record, load_records
from benchmarks.redisstats import command_stats, redis_cpu_s
from benchmarks.scenarios import POLLS, Bench
from benchmarks.stack import stat, wait_until, workers, write_config
from core.due import DueAt
from model.resources import ResourceRef
from store import keys
from store.commit import Commit
from store.records import WatchMeta, decode_state
from store.snapshots import Store
from worker.jobs import plan_polls
from worker.queue import enqueue_polls

__all__ = ["SIZES", "Size", "growth"]

SIZES = (10_000, 100_000, 1_000_000)
DUE_PER_S = 1000
AHEAD = 1_000_000.0
"""The loaded schedule starts this far ahead: no worker claims it until a run moves some due."""
BATCH = 200
TEMPLATES = 1000


@dataclass
class Size:
    n: int
    db: int
    redis: aioredis.Redis
    t0: float
    figures: dict[str, Any] = field(default_factory=dict)
    costs: dict[str, list[float]] = field(default_factory=dict)
    claimed_until: float = 0.0
    committed: int = 0

    @property
    def interval(self) -> float:
        return self.n / DUE_PER_S

    def rkey(self, i: int) -> str:
        return f"artistree:order:g{i:07d}"

    def due(self, i: int) -> float:
        """Order i's place in the schedule: a stride through the orders, 1 ms apart."""
        return self.t0 + ((i * 7919) % self.n) / DUE_PER_S


def _templates(b: Bench) -> tuple[list[Record], list[str]]:
    """Records of `TEMPLATES` rendered orders, each state holding the fingerprint of the one
    body nginx answers (order 0's file, written as `GROWTH_BODY`)."""
    from providers.artistree import ArtistreeProvider, ArtistreeSettings

    provider = ArtistreeProvider(ArtistreeSettings(base_url=b.base_url, client_id="x", client_secret="x"), None)  # type: ignore[arg-type]
    served = (b.orders.data / "orders" / b.orders.ids[0]).read_bytes()
    (b.orders.data / GROWTH_BODY).write_bytes(served)
    (b.orders.data / GROWTH_BODY).chmod(0o644)
    served_state = artistree_record(provider, ResourceRef("artistree", "order", b.orders.ids[0]), served).state
    preview = served_state.split("|")[3]
    out = []
    for oid in b.orders.ids[:TEMPLATES]:
        rec = artistree_record(provider, ResourceRef("artistree", "order", oid),
                               (b.orders.data / "orders" / oid).read_bytes())
        fields = rec.state.split("|")
        fields[3] = preview  # the served body's fingerprint: an unchanged poll needs no parse
        out.append(Record("|".join(fields), rec.snapshot))
    return out, [r.state for r in out]


async def _load(b: Bench, size: Size, templates: list[Record]) -> None:
    """`size.n` watched orders into the size's database; its bytes per order and by key kind."""
    base = int((await size.redis.info("memory"))["used_memory"])
    rkeys = [size.rkey(i) for i in range(size.n)]
    seconds = await load_records(size.redis, rkeys, lambda i: templates[i % TEMPLATES],
                                 WatchMeta(interval=size.interval), size.due)
    # a dataset of this statehook: the config file's watches are named (none here), so a
    # worker's start reads no watch (store/config_watches.py)
    await size.redis.sadd(keys.CONFIG_WATCHES, "")
    used = int((await size.redis.info("memory"))["used_memory"])
    size.figures.update({"load_s": seconds, "bytes_per_order": (used - base) / size.n,
                         "bytes_by_kind": await growth_reads.bytes_by_kind(size.redis, rkeys[:: max(1, size.n // 500)],
                                                                           size.n)})


async def growth(b: Bench, sizes: tuple[int, ...] = SIZES, *, window: float = 6.0, rounds: int = 7) -> dict[str, Any]:
    await b.reset()
    templates, _ = _templates(b)
    base_url = b.redis_url.rsplit("/", 1)[0]
    t0 = time.time() + AHEAD
    runs = [Size(n, i + 1, aioredis.Redis.from_url(f"{base_url}/{i + 1}"), t0) for i, n in enumerate(sizes)]
    try:
        for size in runs:
            await _load(b, size, templates)
        for size in runs:
            await _worker_run(b, size, f"{base_url}/{size.db}", window)
        for _ in range(rounds):  # the sizes in turn: each round's figures are seconds apart
            for size in runs:
                await _costs(size, f"{base_url}/{size.db}", templates)
        for size in runs:
            size.figures["reads"] = await growth_reads.reads(b, size.redis, f"{base_url}/{size.db}", size.n)
    finally:
        for size in runs:
            await size.redis.aclose()
    return _figures(runs)


async def _worker_run(b: Bench, size: Size, url: str, window: float) -> None:
    """One worker on the size's database while the next `window` seconds of its schedule
    fall due (moved to start a second after the worker is up): polls/s, Redis commands and
    CPU per poll, the worker's RSS."""
    r = size.redis
    moved = await r.zrange(keys.DUE, 0, int(window * DUE_PER_S) - 1, withscores=True)
    config = write_config(b.config.with_name(f"growth-{size.db}.toml"), redis_url=url, base_url=b.base_url,
                          token_url=f"{b.base_url}/oauth2/token", concurrency=64)
    try:
        async with workers(config, 1, b.log, r) as w:
            start = time.time() + 1.0
            await r.zadd(keys.DUE, {m: start + (s - size.t0) for m, s in moved})
            await wait_until(lambda: _after(start + 1.0), 30, "the window's start")
            before, stats0 = await stat(r, POLLS + "unchanged"), await command_stats(r)
            t_before = time.perf_counter()
            await wait_until(lambda: _after(start + window), window + 30, "the window's end")
            polls = await stat(r, POLLS + "unchanged") - before
            stats = await command_stats(r) - stats0
            elapsed = time.perf_counter() - t_before
            (rss, peak), = w.rss_mb()
    finally:
        await r.zadd(keys.DUE, dict(moved))  # back where they were, for the claims below
    size.figures["worker"] = {
        "polls_per_s": polls / elapsed, "rss_mb": rss, "peak_rss_mb": peak,
        "redis_commands_per_poll": stats.total_calls / max(1, polls),
        "redis_usec_per_poll": stats.total_usec / max(1, polls),
    }


async def _after(t: float) -> bool:
    return time.time() >= t


async def _timed(size: Size, name: str, step: Callable[[], Any], polls: Callable[[Any], int]) -> Any:
    """Runs `step`, records its wall time and Redis's CPU (main thread) per poll under `name`."""
    cpu0 = await redis_cpu_s(size.redis)
    t = time.perf_counter()
    out = await step()
    elapsed = time.perf_counter() - t
    cpu = await redis_cpu_s(size.redis) - cpu0
    n = max(1, polls(out))
    size.costs.setdefault(name, []).append(elapsed / n * 1e6)
    size.costs.setdefault(name + "_redis", []).append(cpu / n * 1e6)
    return out


async def _costs(size: Size, url: str, templates: list[Record]) -> None:
    """One round of the four costs on the size's database (no worker running)."""
    store = Store(size.redis)
    if not size.claimed_until:  # what falls due before the first timed second, untimed
        size.claimed_until = size.t0 + 10.0
        await _polled(size, await store.claim_due_times(size.claimed_until, 60.0, 10**9))
    until = size.claimed_until = size.claimed_until + 1.0  # the next second
    await _polled(size, await _timed(size, "claim_us", lambda: store.claim_due_times(until, 60.0, 20_000), len))
    until = size.claimed_until = until + 1.0
    arq = ArqRedis.from_url(url)
    try:
        async def tick() -> list[tuple[str, float]]:
            now = time.time()
            claimed = await store.claim_due_times(until, 60.0, 20_000)
            await enqueue_polls(arq, plan_polls(claimed, now, BATCH), now)
            return claimed

        await _polled(size, await _timed(size, "tick_us", tick, len))
        await arq.delete("arq:queue", *[b"arq:job:" + j for j in await arq.zrange("arq:queue", 0, -1)])
    finally:
        await arq.aclose()
    commits = _commits(size, templates)
    await _timed(size, "commit_us", lambda: store.commit(commits), len)
    later = {c.ref.key: size.t0 + size.interval for c in commits}
    await _timed(size, "reschedule_us", lambda: store.commit([], reschedule=later), lambda _: len(later))


async def _polled(size: Size, claimed: list[tuple[str, float]]) -> None:
    """The claimed orders due again one interval later, as their polls would leave them
    (untimed): the schedule keeps 1,000 due every second whatever the size."""
    for i in range(0, len(claimed), 5000):
        await size.redis.zadd(keys.DUE, {k: due + size.interval for k, due in claimed[i : i + 5000]}, xx=True)


def _commits(size: Size, templates: list[Record]) -> list[Commit]:
    """A batch's commits of `BATCH` orders (not committed before) that changed: new state,
    snapshot and due time each, guarded by the state loaded."""
    out = []
    for i in range(size.committed, size.committed + BATCH):
        rec = templates[i % TEMPLATES]
        old = decode_state(rec.state)
        assert old is not None
        new = replace(old, digest=old.digest[::-1], seq=old.seq, changed_at=float(int(time.time())))
        out.append(Commit(ResourceRef.parse(size.rkey(i)), old, new, rec.snapshot,
                          DueAt(size.t0 + size.interval), []))
    size.committed += BATCH
    return out


def _figures(runs: list[Size]) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": [s.n for s in runs], "due_per_s": DUE_PER_S, "batch": BATCH, "by_size": {}}
    for s in runs:
        s.figures["costs"] = {k: statistics.median(v) for k, v in s.costs.items()}
        s.figures["cost_samples"] = s.costs
        out["by_size"][str(s.n)] = s.figures
    small, big = runs[0].figures, runs[-1].figures
    for name in ("tick_us", "claim_us", "commit_us", "reschedule_us", "tick_us_redis", "claim_us_redis",
                 "commit_us_redis", "reschedule_us_redis"):
        out[name.replace("_us", "_growth")] = big["costs"][name] / small["costs"][name]
    out["rss_bytes_per_order"] = ((big["worker"]["rss_mb"] - small["worker"]["rss_mb"]) * 2**20
                                  / (runs[-1].n - runs[0].n))
    out["reads"] = {name: big["reads"][name] / small["reads"][name] for name in small["reads"] if name.endswith("_ms")}
    return out
