"""The table `make bench` prints: one section per scenario that ran, each figure with its
verdict where it has one (benchmarks/report.py's TARGETS)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

__all__ = ["table"]

Row = tuple[str, str, str, str]
NAN = float("nan")


def _ok(name: str, value: float) -> str:
    from benchmarks.report import verdict

    return verdict(name, value)


def _poll(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    rows = [("1 poll throughput", "raw aiohttp GET loop, req/s", f"{s['raw_per_s']:,.0f}", ""),
            ("", "statehook worker, polls/s", f"{s['polls_per_s']:,.0f}", ""),
            ("", f"poll_ratio (median of {len(r['polling']['ratios'])} passes, each over the raw loops beside it)",
             f"{s['poll_ratio']:.2f}", _ok("poll_ratio", s["poll_ratio"]))]
    if "naive" in r:
        rows.append(("", f"naive design (httpx, job per resource), polls/s, {r['naive']['n']} orders",
                     f"{r['naive']['polls_per_s']:,.0f}", f"ratio {r['naive']['polls_per_s'] / s['raw_per_s']:.2f}"))
    return rows


def _scan(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    return [("2 scan", "orders compared/s (100k orders, 1k/page)", f"{s['scan_orders_per_s']:,.0f}", ""),
            ("", "bare fetch + orjson.loads of the same pages, orders/s (beside it)",
             f"{statistics.median(r['scan']['fetch_and_parse_per_s']):,.0f}", ""),
            ("", "scan_ratio (median of 3 passes, each over the bare loop before it)", f"{s['scan_ratio']:.2f}",
             _ok("scan_ratio", s["scan_ratio"]))]


def _deliveries(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    d = r["deliveries"]
    return [("3 deliveries", "signed webhooks verified/s (median pass)", f"{s['deliveries_per_s']:,.0f}", ""),
            ("", "statehook's passes, /s", " / ".join(f"{x:,.0f}" for x in d.get("passes_per_s", ())), ""),
            ("", "bare sign + POST loop, same bodies, receiver, concurrency (around each pass), /s",
             " / ".join(f"{x:,.0f}" for x in d["bare_posts_per_s"]), ""),
            ("", "each pass over the mean of the loops beside it", " / ".join(f"{x:.2f}" for x in d.get("ratios", ())),
             ""),
            ("", "deliveries_ratio: their median", f"{s['deliveries_ratio']:.2f}",
             _ok("deliveries_ratio", s["deliveries_ratio"])),
            ("", "lost / duplicated", f"{d['lost']} / {d['duplicates']}", "")]


def _latency(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    lat = r["latency"]
    return [("4 latency", f"change → 2xx p50 / p99 (interval {lat['interval_s']:g} s)",
             f"{lat['p50_s']:.2f} / {lat['p99_s']:.2f} s", ""),
            ("", "p99 − interval", f"{s['latency_p99_over_interval_s']:.2f} s",
             _ok("latency_p99_over_interval_s", s["latency_p99_over_interval_s"]))]


def _footprint(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    return [("5 footprint", "Redis bytes per watched order (one event in its history)",
             f"{s['redis_bytes_per_resource']:,.0f}", _ok("redis_bytes_per_resource", s["redis_bytes_per_resource"])),
            ("", f"worker RSS, {r['footprint']['watched']:,} watched (MB)", f"{s['worker_rss_mb']:.0f}",
             _ok("worker_rss_mb", s["worker_rss_mb"]))]


def _scale(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    return [("6 two workers", "two / one without quotas (median of the passes; measures the machine)",
             f"{s['scale_out']:.2f}", ""),
            ("", "two raw client processes / one (what a second process gains here)",
             f"{s['machine_scale_out']:.2f}", "")]


def _quota(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    q = r["quota"]
    if "skipped" in q:
        return [("7 CPU quotas", f"skipped: {q['skipped']}", "", "")]
    return [("7 CPU quotas", f"one worker at {q['cores_per_worker']:g} core, polls/s",
             f"{q['one_worker_polls_per_s']:,.0f}", ""),
            *[("", f"scale_{k}: {name} workers over the one-worker passes beside (median of "
                   f"{len(q[f'scale_{k}_passes'])})", f"{s[f'scale_{k}']:.2f}", _ok(f"scale_{k}", s[f"scale_{k}"]))
              for k, name in ((2, "two"), (4, "four"))],
            ("", "Redis commands per poll, 1 / 2 / 4 workers",
             " / ".join(f"{q[f'redis_commands_per_poll_{k}']:.2f}" for k in (1, 2, 4)), ""),
            ("", "duplicate deliveries (1,000 changes, four workers)", f"{q['duplicates']}",
             _ok("duplicates", q["duplicates"]))]


def _growth(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    g = r["growth"]
    small, big = g["sizes"][0], g["sizes"][-1]
    rows: list[Row] = [("8 growth", f"µs per poll at {', '.join(f'{n:,}' for n in g['sizes'])} watched: tick",
                        " / ".join(f"{g['by_size'][str(n)]['costs']['tick_us']:.1f}" for n in g["sizes"]), "")]
    for name in ("tick", "claim", "commit"):
        rows.append(("", f"{name}_growth: {big:,} over {small:,}", f"{s[name + '_growth']:.2f}",
                     _ok(name + "_growth", s[name + "_growth"])))
    rows += [("", "worker RSS growth, bytes per watched order", f"{s['rss_bytes_per_watched']:.1f}",
              _ok("rss_bytes_per_watched", s["rss_bytes_per_watched"])),
             ("", "watch ls, /v1/watches page, /metrics at the largest over the smallest",
              " / ".join(f"{g['reads'][k]:.2f}" for k in ("watch_ls_ms", "watches_page_ms", "metrics_ms")),
              _ok("reads_growth", s["reads_growth"])),
             ("", f"Redis bytes per watched order (loaded, no history) at {big:,}",
              f"{g['by_size'][str(big)]['bytes_per_order']:,.0f}", "")]
    return rows


def _budget(r: dict[str, Any], s: dict[str, Any]) -> list[Row]:
    b = r["budget"]
    return [("9 rate budget", f"{b['artistree_orders']:,} Artistree by preview scan at {b['rate']:g}/s: sweep, s",
             f"{b['sweep_median_s']:.2f}", f"ideal {b['sweep_ideal_s']:.2f}"),
            ("", "sweep_ratio: sweep over pages ÷ rate", f"{s['sweep_ratio']:.2f}",
             _ok("sweep_ratio", s["sweep_ratio"])),
            ("", "change → 2xx p99 minus one ideal sweep, s", f"{s['change_p99_over_sweep_s']:.2f}",
             _ok("change_p99_over_sweep_s", s["change_p99_over_sweep_s"])),
            ("", f"{b['rev_orders']:,} Rev by id: p99 between two polls over orders ÷ rate",
             f"{s['rev_staleness_ratio']:.2f}", _ok("rev_staleness_ratio", s["rev_staleness_ratio"])),
            ("", "429s the simulator sent", f"{b['rate_limited_total']}", _ok("rate_limited", b["rate_limited_total"]))]


SECTIONS: list[tuple[str, Callable[[dict[str, Any], dict[str, Any]], list[Row]]]] = [
    ("polling", _poll), ("scan", _scan), ("deliveries", _deliveries), ("latency", _latency),
    ("footprint", _footprint), ("scale_out", _scale), ("quota", _quota), ("growth", _growth), ("budget", _budget),
]


def table(r: dict[str, Any]) -> str:
    s = r["summary"]
    rows = [row for key, section in SECTIONS if key in r for row in section(r, s)]
    if not rows:
        return ""
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}  {d}".rstrip() for a, b, c, d in rows)
