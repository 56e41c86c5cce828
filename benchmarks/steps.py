"""The steps of `make bench` (benchmarks/run.py): each runs one scenario and prints its
figures as it ends."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks import budget, growth, quota, scenarios
from benchmarks.deliveries import deliveries
from benchmarks.latency import latency
from benchmarks.naive import arq_jobs_per_s, naive_polls_per_s
from benchmarks.raw import raw_get_loop, raw_get_processes
from simulator.receivers import WebhookReceiver

__all__ = ["CONCURRENCY", "Sizes", "say"]

CONCURRENCY = 64


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each scenario does (the command line's options)."""

    poll: int = 20_000
    total: int = 100_000
    naive: int = 500
    deliver: int = 5_000
    quota: int = 10_000
    growth: tuple[int, ...] = growth.SIZES
    budget_artistree: int = 50_000
    budget_rev: int = 500


async def _footprint(b: scenarios.Bench, n_total: int) -> dict[str, Any]:
    say(f"5. footprint: {n_total:,} watched orders")
    fp = await scenarios.footprint(b, n_total)
    say(f"   {fp['bytes_per_order']:,.0f} B/order + {fp['history_bytes_one_event']:,.0f} B of history with "
        f"one event, RSS {fp['worker_rss_mb']:.0f} MB")
    return fp


async def _polling(
    b: scenarios.Bench, n_poll: int, *, rounds: int, baselined: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    say(f"1 and 6. polling throughput: {n_poll:,} watched orders, all due, "
        "passes alternating between one worker and two")
    # the raw loop runs eight times in the polling scenario (around each pass): half the
    # orders is enough for a rate (~2-3 s) and keeps make bench within its 5 minutes
    urls = [f"{b.base_url}/v1/orders/{i}" for i in b.orders.ids[: max(1, n_poll // 2)]]

    async def raw() -> float:
        return await raw_get_loop(urls, concurrency=CONCURRENCY)

    async def raw_two() -> float:
        return await raw_get_processes(urls, processes=2, concurrency=CONCURRENCY)

    one, two = await scenarios.polling(b, n_poll, raw, raw_processes=raw_two, rounds=rounds, baselined=baselined)
    say(f"   one worker {one['polls_per_s']:,.0f} polls/s, raw {one['raw_per_s']:,.0f} req/s; "
        f"two workers {two['polls_per_s']:,.0f} polls/s ({two['scale_out']:.2f}× the one-worker "
        f"passes beside), {two['duplicates']} duplicates; two raw client processes "
        f"{two['raw_processes_ratio']:.2f}× one")
    return one, two


async def _quota(b: scenarios.Bench, n: int) -> dict[str, Any]:
    say(f"7. scale-out under CPU quotas: {n:,} due orders, 1, 2 and 4 workers at {quota.CORES:g} core each")
    q = await quota.quota_scale(b, n)
    if "skipped" in q:
        say(f"   skipped: {q['skipped']}")
        return q
    each = "; ".join(f"{k} workers " + ", ".join(f"{r:.2f}" for r in q[f"scale_{k}_passes"]) for k in (2, 4))
    say(f"   passes over the one-worker passes beside: {each}")
    say(f"   one worker {q['one_worker_polls_per_s']:,.0f} polls/s; two {q['scale_2']:.2f}×, four {q['scale_4']:.2f}×; "
        f"Redis commands per poll {q['redis_commands_per_poll_1']:.2f} / {q['redis_commands_per_poll_2']:.2f} / "
        f"{q['redis_commands_per_poll_4']:.2f}; {q['duplicates']} duplicates")
    return q


async def _growth(b: scenarios.Bench, ns: tuple[int, ...]) -> dict[str, Any]:
    say(f"8. cost and what is watched: {', '.join(f'{n:,}' for n in ns)} watched orders, "
        f"{growth.DUE_PER_S:,} due a second")
    g = await growth.growth(b, ns)
    for n, f in g["by_size"].items():
        c = f["costs"]
        say(f"   {int(n):>9,}: tick {c['tick_us']:.1f} µs/poll, claim {c['claim_us']:.1f}, "
            f"commit {c['commit_us']:.1f}, "
            f"{f['bytes_per_order']:,.0f} B/order, worker {f['worker']['polls_per_s']:,.0f} polls/s "
            f"RSS {f['worker']['rss_mb']:.0f} MB; watch ls {f['reads']['watch_ls_ms']:,.0f} ms, "
            f"/v1/watches {f['reads']['watches_page_ms']:.1f} ms, /metrics {f['reads']['metrics_ms']:.1f} ms")
    say(f"   growth {ns[-1]:,} / {ns[0]:,}: tick {g['tick_growth']:.2f}, claim {g['claim_growth']:.2f}, "
        f"commit {g['commit_growth']:.2f}; RSS {g['rss_bytes_per_order']:.1f} B per watched order")
    return g


async def _budget(b: scenarios.Bench, sizes: Sizes) -> dict[str, Any]:
    say(f"9. rate budget at {budget.RATE:g} requests/s per provider: {sizes.budget_artistree:,} Artistree orders "
        f"by a preview scan, {sizes.budget_rev:,} Rev orders by id")
    r = await budget.budget(b, artistree=sizes.budget_artistree, rev=sizes.budget_rev)
    say(f"   sweep {r['sweep_median_s']:.2f} s over ideal {r['sweep_ideal_s']:.2f} s ({r['sweep_ratio']:.2f}×, "
        f"{r['sweeps']} sweeps); change p99 {r['change_p99_s']:.2f} s ({r['delivered']}/{r['changes']}); Rev "
        f"staleness p99 {r['rev_staleness_p99_s']:.1f} s over {r['rev_ideal_s']:.1f} s "
        f"({r['rev_staleness_ratio']:.2f}×); 429s {r['rate_limited_total']}")
    return r


async def _naive(b: scenarios.Bench, n_naive: int) -> dict[str, Any]:
    await b.reset()
    rkeys = b.rkeys(n_naive)
    await scenarios._watch(b.redis, rkeys, 3600)
    naive = {"n": n_naive, "polls_per_s": await naive_polls_per_s(b.redis_url, b.base_url, rkeys, CONCURRENCY)}
    say(f"   naive reference (scenario 1) {naive['polls_per_s']:,.0f} polls/s")
    return naive


async def _deliveries(b: scenarios.Bench, n_deliver: int) -> dict[str, Any]:
    say(f"3. deliveries: {n_deliver:,} events to a signature-verifying receiver")
    d = await deliveries(b, n_deliver)
    d["arq_trivial_jobs_per_s"] = await arq_jobs_per_s(b.redis_url, 3000)
    say(f"   {d['deliveries_per_s']:,.0f} deliveries/s "
        f"(ARQ's ceiling for trivial jobs here: {d['arq_trivial_jobs_per_s']:,.0f}/s)")
    return d


async def _latency(redis_url: str, receiver: WebhookReceiver, work: Path, log: Path) -> dict[str, Any]:
    say("4. latency: 10,000 orders every 10 s (simulator), random changes")
    async with aioredis.Redis.from_url(redis_url) as redis:
        lat = await latency(redis, redis_url, receiver, work, log)
    say(f"   p50 {lat['p50_s']:.2f} s, p99 {lat['p99_s']:.2f} s, max {lat['max_s']:.2f} s, "
        f"{lat['delivered']}/{lat['changes']} delivered")
    return lat


