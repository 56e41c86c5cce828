"""The benchmark's outputs: the table, results/latest.json, the latency histogram and the
one `bench:` line that ends the run."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import orjson

__all__ = ["bench_line", "histogram", "machine", "table", "write_json"]

TARGETS = {
    "poll_ratio": (">=", 0.6),
    "scan_orders_per_s": (">=", 50_000),
    "deliveries_per_s": (">=", 1_000),
    "latency_p99_over_interval_s": ("<=", 1.0),
    "redis_bytes_per_resource": ("<=", 1_500),
    "worker_rss_mb": ("<=", 200),
    "scale_out": (">=", 1.5),
}


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass

    def version(*cmd: str) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            return "?"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": version("redis-server", "--version"),
        "nginx": version("nginx", "-v"),
    }


def _ok(name: str, value: float) -> str:
    op, target = TARGETS[name]
    if value != value:  # NaN
        return "n/a"
    good = value >= target if op == ">=" else value <= target
    return f"{'ok' if good else 'BELOW'} ({op} {target:g})"


def table(r: dict[str, Any]) -> str:
    s = r["summary"]
    rows = [
        ("1 poll throughput", "raw aiohttp GET loop, req/s", f"{s['raw_per_s']:,.0f}", ""),
        ("", "statehook worker, polls/s", f"{s['polls_per_s']:,.0f}", ""),
        ("", f"poll_ratio (median of {len(r['polling']['ratios'])} passes, each over the raw loops beside it)",
         f"{s['poll_ratio']:.2f}",
         _ok("poll_ratio", s["poll_ratio"])),
        ("", f"naive design (httpx, job per resource), polls/s, {r['naive']['n']} orders",
         f"{r['naive']['polls_per_s']:,.0f}", f"ratio {r['naive']['polls_per_s'] / s['raw_per_s']:.2f}"),
        ("2 scan", "orders compared/s (100k orders, 1k/page)", f"{s['scan_orders_per_s']:,.0f}",
         _ok("scan_orders_per_s", s["scan_orders_per_s"])),
        ("", "bare fetch + orjson.loads of the same pages, orders/s (floor of a naive scan)",
         f"{max(r['scan'].get('fetch_and_parse_per_s') or [float('nan')]):,.0f}",
         f"statehook {r['scan'].get('vs_fetch_and_parse', float('nan')):.2f}×"),
        ("3 deliveries", "signed webhooks verified/s", f"{s['deliveries_per_s']:,.0f}",
         _ok("deliveries_per_s", s["deliveries_per_s"])),
        ("", "ARQ trivial jobs/s, same worker settings (ceiling)",
         f"{r['deliveries'].get('arq_trivial_jobs_per_s', float('nan')):,.0f}", ""),
        ("", "lost / duplicated", f"{r['deliveries']['lost']} / {r['deliveries']['duplicates']}", ""),
        ("4 latency", f"change → 2xx p50 / p99 (interval {r['latency']['interval_s']:g} s)",
         f"{r['latency']['p50_s']:.2f} / {r['latency']['p99_s']:.2f} s", ""),
        ("", "p99 − interval", f"{s['latency_p99_over_interval_s']:.2f} s",
         _ok("latency_p99_over_interval_s", s["latency_p99_over_interval_s"])),
        ("5 footprint", "Redis bytes per watched order", f"{s['redis_bytes_per_resource']:,.0f}",
         _ok("redis_bytes_per_resource", s["redis_bytes_per_resource"])),
        ("", f"worker RSS, {r['footprint']['watched']:,} watched (MB)", f"{s['worker_rss_mb']:.0f}",
         _ok("worker_rss_mb", s["worker_rss_mb"])),
        ("6 scale-out", "two workers, polls/s", f"{r['scale_out']['polls_per_s']:,.0f}", ""),
        ("", f"two / one (median of {len(r['scale_out']['vs_one'])} two-worker passes, "
             "each over the one-worker passes beside it)",
         f"{s['scale_out']:.2f}", _ok("scale_out", s["scale_out"])),
        ("", "two / one through the raw loops (each pass over the raw loops beside it)",
         f"{s['scale_out_via_raw']:.2f}", ""),
        ("", "two raw client processes / one (what a second process gains here)",
         f"{s['machine_scale_out']:.2f}", ""),
        ("", "duplicate deliveries", f"{r['scale_out']['duplicates']}", ""),
    ]
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def bench_line(s: dict[str, Any]) -> str:
    return (
        f"bench: poll_ratio={s['poll_ratio']:.2f} polls_per_s={s['polls_per_s']:.0f} raw_per_s={s['raw_per_s']:.0f} "
        f"scan_orders_per_s={s['scan_orders_per_s']:.0f} deliveries_per_s={s['deliveries_per_s']:.0f} "
        f"latency_p99_over_interval_s={s['latency_p99_over_interval_s']:.2f} "
        f"redis_bytes_per_resource={s['redis_bytes_per_resource']:.0f} worker_rss_mb={s['worker_rss_mb']:.0f}"
    )


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def histogram(samples: list[float], interval: float, path: Path) -> bool:
    """The latency histogram as a PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not samples:
        return False
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    top = max(samples)
    bins = max(10, min(60, math.ceil(top / 0.25)))
    ax.hist(samples, bins=bins, color="#4a7ab5", edgecolor="white")
    p99 = sorted(samples)[max(0, math.ceil(0.99 * len(samples)) - 1)]
    ax.axvline(interval, color="#888", linestyle="--", label=f"interval {interval:g} s")
    ax.axvline(interval + 1, color="#c44", linestyle=":", label="target p99 (interval + 1 s)")
    ax.axvline(p99, color="#222", label=f"measured p99 {p99:.2f} s")
    ax.set_xlabel("change at the provider → receiver's 2xx (s)")
    ax.set_ylabel("changes")
    ax.set_title(f"statehook latency, {len(samples)} changes")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True
