"""`make bench`: every scenario of issues 6 and 20 in one run, each verdict a ratio of
figures of that run (docs/performance.md).

Starts a private redis-server and nginx (free ports), renders 100,000 seed-shaped
Artistree orders as static files, runs the scenarios with real worker processes, prints
the table, writes benchmarks/results/latest.json, docs/latency.png and docs/growth.png, and
ends with the `bench:` line. `--only` runs a subset (the summary then holds only what ran),
`--only recovery` and `--only console` the scenarios that run their own servers."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks import growth, scenarios
from benchmarks.infra import nginx, redis_server
from benchmarks.payloads import build_orders
from benchmarks.report import bench_line, growth_plot, histogram, machine, summarize, table, write_json
from benchmarks.stack import write_config
from benchmarks.steps import (
    CONCURRENCY,
    Sizes,
    _budget,
    _deliveries,
    _footprint,
    _growth,
    _latency,
    _naive,
    _polling,
    _quota,
    say,
)
from simulator.receivers import WebhookReceiver

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
PNG = ROOT / "docs" / "latency.png"
GROWTH_PNG = ROOT / "docs" / "growth.png"
LOG = ROOT / "benchmarks" / "results" / "workers.log"
"""The worker processes' output of the last run (not committed)."""
ALL = ("footprint", "poll", "scale", "quota", "growth", "budget", "deliver", "scan", "latency", "recovery",
       "console")
DEFAULT = ALL[:-2]
"""What `make bench` runs; recovery and console (their own servers, a minute and more) by `--only`."""


async def run(only: set[str], sizes: Sizes, scratch: Path,
              event_loop: str = "asyncio", rounds: int = scenarios.POLL_ROUNDS) -> dict[str, Any]:
    data, work = scratch / "data", scratch / "work"
    n_poll, n_total = sizes.poll, sizes.total
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
                results["naive"] = await _naive(b, sizes.naive)
            if "quota" in only:  # after the polling scenario: it writes its own baselined orders
                results["quota"] = await _quota(b, sizes.quota)
            if "growth" in only:
                results["growth"] = await _growth(b, sizes.growth)
            if "budget" in only:
                results["budget"] = await _budget(b, sizes)
            if "deliver" in only:
                results["deliveries"] = await _deliveries(b, sizes.deliver)
            if "scan" in only:
                say(f"2. scan: {n_total:,} orders, 1,000 per page")
                results["scan"] = await scenarios.scan(b)
                say(f"   {results['scan']['orders_per_s']:,.0f} orders/s")
        finally:
            await redis.aclose()
        if "latency" in only:
            results["latency"] = await _latency(rs.url, receiver, work, log)
    await _others(only, results, work)
    await receiver.stop()
    errors = [line for line in log.read_text(errors="replace").splitlines()
              if " ERROR " in line or "Traceback" in line]
    results["worker_log_errors"] = errors[:20]
    return results


async def _others(only: set[str], results: dict[str, Any], work: Path) -> None:
    """The scenarios with servers of their own (helpers C and E wrote them): a receiver's
    outage and recovery, and the console's pages at 100,000 watches."""
    if "recovery" in only:
        from benchmarks import recovery

        say("10. recovery: a webhook receiver down for 60 s while orders change")
        (work / "recovery").mkdir(exist_ok=True)
        r = await recovery.recovery(work / "recovery")
        results["recovery"] = {**r, "line": recovery.line(r)}
    if "console" in only:
        import statistics

        from benchmarks import console_pages

        say(f"11. console pages at {console_pages.WATCHES:,} watches")
        pages = await console_pages.measure()
        medians = {name: statistics.median(ms) for name, ms in pages.items()}
        results["console"] = {"server_ms": pages, "median_ms": medians, "line": "console: " + " ".join(
            f"{name.replace(' ', '_')}_ms={ms:.1f}" for name, ms in medians.items())}


def scenarios_whsec() -> str:
    from benchmarks.stack import WHSEC

    return WHSEC


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", default=",".join(DEFAULT), help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument("--orders", type=int, default=100_000, help="orders rendered (scan and footprint)")
    p.add_argument("--watched", type=int, default=20_000, help="orders polled in scenarios 1 and 6")
    p.add_argument("--naive", type=int, default=500, help="orders polled by the naive reference")
    p.add_argument("--events", type=int, default=5_000, help="events delivered in scenario 3")
    p.add_argument("--quota-orders", type=int, default=Sizes().quota, help="orders polled per pass under CPU quotas")
    p.add_argument("--growth", default=",".join(str(n) for n in growth.SIZES),
                   help="watched orders of the growth scenario, smallest first")
    p.add_argument("--budget-orders", type=int, default=Sizes().budget_artistree,
                   help="Artistree orders of the rate-budget scenario's scan")
    p.add_argument("--rev-orders", type=int, default=Sizes().budget_rev,
                   help="Rev orders of the rate-budget scenario (the issue's size: 5000)")
    p.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="the event loop of the workers polling nginx (worker.event_loop)")
    p.add_argument("--rounds", type=int, default=scenarios.POLL_ROUNDS,
                   help="two-worker passes of the polling scenario (each between one-worker passes)")
    p.add_argument("--no-write", action="store_true", help="print only; leave latest.json and the PNGs alone")
    p.add_argument("--json", type=Path, default=None, help="also write the results here (with --no-write too)")
    args = p.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if unknown := only - set(ALL):
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="statehook-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    scratch.chmod(0o755)  # nginx's workers may run as `nobody`
    (scratch / "work").mkdir()
    try:
        sizes = Sizes(poll=args.watched, total=args.orders, naive=args.naive, deliver=args.events,
                      quota=args.quota_orders, growth=tuple(int(x) for x in args.growth.split(",")),
                      budget_artistree=args.budget_orders, budget_rev=args.rev_orders)
        results = asyncio.run(run(only, sizes, scratch, args.event_loop, args.rounds))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["summary"] = summary = summarize(results)
    results["elapsed_s"] = time.perf_counter() - started
    samples = results.get("latency", {}).pop("samples", [])
    if text := table(results):
        print()
        print(text)
    if not args.no_write:
        write_json(RESULTS, results)
        if samples and histogram(samples, results["latency"]["interval_s"], PNG):
            say(f"wrote {PNG.relative_to(ROOT)}")
        if "growth" in results and growth_plot(results["growth"], GROWTH_PNG):
            say(f"wrote {GROWTH_PNG.relative_to(ROOT)}")
        say(f"wrote {RESULTS.relative_to(ROOT)} ({results['elapsed_s']:.0f}s)")
    if args.json is not None:
        write_json(args.json, results)
    for line in results["worker_log_errors"]:
        print(f"worker log: {line}", file=sys.stderr)
    for extra in ("recovery", "console"):
        if extra in results:
            print(results[extra]["line"])
    print(bench_line(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
