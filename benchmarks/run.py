"""`make bench`: every scenario of issue 6 in one run, against this machine's own limits.

Starts a private redis-server and nginx (free ports), renders 100,000 seed-shaped
Artistree orders as static files, runs the scenarios with real worker processes, prints
the table, writes benchmarks/results/latest.json and docs/latency.png, and ends with the
`bench:` line. `--only` runs a subset while working on one figure (the summary then holds
only what ran)."""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks import scenarios
from benchmarks.infra import nginx, redis_server
from benchmarks.latency import latency
from benchmarks.naive import arq_jobs_per_s, naive_polls_per_s
from benchmarks.payloads import build_orders
from benchmarks.raw import raw_get_loop, raw_get_processes
from benchmarks.report import bench_line, histogram, machine, table, write_json
from benchmarks.stack import write_config
from simulator.receivers import WebhookReceiver

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
PNG = ROOT / "docs" / "latency.png"
LOG = ROOT / "benchmarks" / "results" / "workers.log"
"""The worker processes' output of the last run (not committed)."""
CONCURRENCY = 64
ALL = ("footprint", "poll", "scale", "deliver", "scan", "latency")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def run(only: set[str], n_poll: int, n_total: int, n_naive: int, n_deliver: int, scratch: Path,
              event_loop: str = "asyncio", rounds: int = 3) -> dict[str, Any]:
    data, work = scratch / "data", scratch / "work"
    t = time.perf_counter()
    orders = build_orders(data, n_total, in_memory=n_poll)
    say(f"rendered {n_total:,} orders ({orders.mean_bytes:,.0f} B each) and {orders.pages} list pages "
        f"in {time.perf_counter() - t:.1f}s")
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "order_bytes": orders.mean_bytes, "concurrency": CONCURRENCY,
                               "event_loop": event_loop}
    log = LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    receiver = WebhookReceiver(secret=scenarios_whsec())
    await receiver.start()
    with redis_server(work) as rs, nginx(data, work) as web:
        redis = aioredis.Redis.from_url(rs.url)
        config = write_config(work / "statehook.toml", redis_url=rs.url, base_url=web.url,
                              token_url=f"{web.url}/oauth2/token", receiver_url=receiver.url,
                              concurrency=CONCURRENCY, worker={"event_loop": event_loop})
        b = scenarios.Bench(redis, rs.url, web.url, orders, config, log, receiver)
        try:
            if "footprint" in only:  # first: the polling scenario then runs among its baselined orders
                results["footprint"] = await _footprint(b, n_total)
            if only & {"poll", "scale"}:
                results["polling"], results["scale_out"] = await _polling(
                    b, n_poll, rounds=rounds, baselined="footprint" in only)
            if "poll" in only:
                results["naive"] = await _naive(b, n_naive)
            if "deliver" in only:
                results["deliveries"] = await _deliveries(b, n_deliver)
            if "scan" in only:
                say(f"2. scan: {n_total:,} orders, 1,000 per page")
                results["scan"] = await scenarios.scan(b)
                say(f"   {results['scan']['orders_per_s']:,.0f} orders/s")
        finally:
            await redis.aclose()
        if "latency" in only:
            results["latency"] = await _latency(rs.url, receiver, work, log)
    await receiver.stop()
    errors = [line for line in log.read_text(errors="replace").splitlines()
              if " ERROR " in line or "Traceback" in line]
    results["worker_log_errors"] = errors[:20]
    return results


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


async def _naive(b: scenarios.Bench, n_naive: int) -> dict[str, Any]:
    await b.reset()
    rkeys = b.rkeys(n_naive)
    await scenarios._watch(b.redis, rkeys, 3600)
    naive = {"n": n_naive, "polls_per_s": await naive_polls_per_s(b.redis_url, b.base_url, rkeys, CONCURRENCY)}
    say(f"   naive reference (scenario 1) {naive['polls_per_s']:,.0f} polls/s")
    return naive


async def _deliveries(b: scenarios.Bench, n_deliver: int) -> dict[str, Any]:
    say(f"3. deliveries: {n_deliver:,} events to a signature-verifying receiver")
    d = await scenarios.deliveries(b, n_deliver)
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


def scenarios_whsec() -> str:
    from benchmarks.stack import WHSEC

    return WHSEC


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    nan = float("nan")
    poll, scale = r.get("polling", {}), r.get("scale_out", {})
    fp, lat = r.get("footprint", {}), r.get("latency", {})
    # the footprint scenario measures its own history lists; scenario 6's are the fallback
    history = fp.get("history_bytes_one_event", scale.get("history_bytes_one_event", 0.0))
    s = {
        "polls_per_s": poll.get("polls_per_s", nan),
        "raw_per_s": poll.get("raw_per_s", nan),
        "scan_orders_per_s": r.get("scan", {}).get("orders_per_s", nan),
        "deliveries_per_s": r.get("deliveries", {}).get("deliveries_per_s", nan),
        "latency_p99_over_interval_s": lat.get("p99_over_interval_s", nan),
        # a watched order's snapshot, state, meta and due entry, plus one event in its history
        "redis_bytes_per_resource": fp.get("bytes_per_order", nan) + history,
        "worker_rss_mb": fp.get("worker_rss_mb", nan),
    }
    s["poll_ratio"] = poll.get("ratio", nan)
    # each two-worker pass over the one-worker passes on either side of it (median)
    s["scale_out"] = scale.get("scale_out", nan)
    # the same through the raw loops: two workers' ratio to them over one worker's
    s["scale_out_via_raw"] = scale.get("ratio", nan) / s["poll_ratio"] if s["poll_ratio"] else nan
    # what a second process gains on this machine at all: two raw client processes over one
    s["machine_scale_out"] = scale.get("raw_processes_ratio", nan)
    one = s["polls_per_s"]
    s["workers_per_million_at_60s"] = math.ceil(1_000_000 / 60 / one) if one == one and one else nan
    return s


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument("--orders", type=int, default=100_000, help="orders rendered (scan and footprint)")
    p.add_argument("--watched", type=int, default=20_000, help="orders polled in scenarios 1 and 6")
    p.add_argument("--naive", type=int, default=500, help="orders polled by the naive reference")
    p.add_argument("--events", type=int, default=5_000, help="events delivered in scenario 3")
    p.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="the event loop of the workers polling nginx (worker.event_loop)")
    p.add_argument("--rounds", type=int, default=3,
                   help="two-worker passes of the polling scenario (each between one-worker passes)")
    p.add_argument("--no-write", action="store_true", help="print only; leave latest.json and the PNG alone")
    args = p.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if unknown := only - set(ALL):
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="statehook-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    scratch.chmod(0o755)  # nginx's workers may run as `nobody`
    (scratch / "work").mkdir()
    try:
        results = asyncio.run(run(only, args.watched, args.orders, args.naive, args.events, scratch,
                                  args.event_loop, args.rounds))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["summary"] = summary = summarize(results)
    results["elapsed_s"] = time.perf_counter() - started
    samples = results.get("latency", {}).pop("samples", [])
    if only == set(ALL):
        print()
        print(table(results))
    if not args.no_write:
        write_json(RESULTS, results)
        if samples and histogram(samples, results["latency"]["interval_s"], PNG):
            say(f"wrote {PNG.relative_to(ROOT)}")
        say(f"wrote {RESULTS.relative_to(ROOT)} ({results['elapsed_s']:.0f}s)")
    for line in results["worker_log_errors"]:
        print(f"worker log: {line}", file=sys.stderr)
    print(bench_line(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
