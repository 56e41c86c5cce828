"""The benchmark's outputs: the summary and its verdicts, the table, results/latest.json, the
latency histogram, the plot of the tick's cost against the watched count, and the one
`bench:` line that ends the run.

Every verdict is a ratio of figures from the same run (or a bound on a figure that is
already one: a latency minus its interval, bytes per order), so that it does not follow
how fast this shared machine happens to be that minute."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import orjson

from benchmarks.report_table import table

__all__ = ["TARGETS", "bench_line", "growth_plot", "histogram", "machine", "summarize", "table", "write_json"]

NAN = float("nan")

TARGETS: dict[str, tuple[str, float]] = {
    "poll_ratio": (">=", 0.7),
    "latency_p99_over_interval_s": ("<=", 0.5),
    "deliveries_ratio": (">=", 0.5),
    "scan_ratio": (">=", 3.0),
    "redis_bytes_per_resource": ("<=", 1_000),
    "worker_rss_mb": ("<=", 200),
    "scale_2": (">=", 1.8),
    "scale_4": (">=", 3.4),
    "tick_growth": ("<=", 1.2),
    "claim_growth": ("<=", 1.2),
    "commit_growth": ("<=", 1.2),
    "rss_bytes_per_watched": ("<=", 16),
    "reads_growth": ("<=", 1.5),
    "sweep_ratio": ("<=", 1.1),
    "change_p99_over_sweep_s": ("<=", 1.0),
    "rev_staleness_ratio": ("<=", 1.1),
    "rate_limited": ("<=", 0),
    "duplicates": ("<=", 0),
}


def verdict(name: str, value: float) -> str:
    op, target = TARGETS[name]
    if value != value:  # NaN: the scenario did not run
        return "n/a"
    good = value >= target if op == ">=" else value <= target
    return f"{'ok' if good else 'BELOW'} ({op} {target:g})"


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    poll, scale, fp = r.get("polling", {}), r.get("scale_out", {}), r.get("footprint", {})
    quota, grow, bud = r.get("quota", {}), r.get("growth", {}), r.get("budget", {})
    deliv, scan = r.get("deliveries", {}), r.get("scan", {})
    # the footprint scenario measures its own history lists; scenario 6's are the fallback
    history = fp.get("history_bytes_one_event", scale.get("history_bytes_one_event", 0.0))
    s: dict[str, Any] = {
        "poll_ratio": poll.get("ratio", NAN),
        "polls_per_s": poll.get("polls_per_s", NAN),
        "raw_per_s": poll.get("raw_per_s", NAN),
        "scan_orders_per_s": scan.get("orders_per_s", NAN),
        "deliveries_per_s": deliv.get("deliveries_per_s", NAN),
        "latency_p99_over_interval_s": r.get("latency", {}).get("p99_over_interval_s", NAN),
        # a watched order's snapshot, state, meta and due entry, plus one event in its history
        "redis_bytes_per_resource": fp.get("bytes_per_order", NAN) + history,
        "worker_rss_mb": fp.get("worker_rss_mb", NAN),
        "scale_2": quota.get("scale_2", NAN),
        "scale_4": quota.get("scale_4", NAN),
        "deliveries_ratio": deliv.get("deliveries_ratio", NAN),
        "scan_ratio": scan.get("vs_fetch_and_parse", NAN),
        "tick_growth": grow.get("tick_growth", NAN),
        "claim_growth": grow.get("claim_growth", NAN),
        "commit_growth": grow.get("commit_growth", NAN),
        "rss_bytes_per_watched": grow.get("rss_bytes_per_order", NAN),
        "reads_growth": max(grow.get("reads", {}).values(), default=NAN),
        "sweep_ratio": bud.get("sweep_ratio", NAN),
        "change_p99_over_sweep_s": bud.get("change_p99_over_ideal_sweep_s", NAN),
        "rev_staleness_ratio": bud.get("rev_staleness_ratio", NAN),
        "rate_limited": bud.get("rate_limited_total", NAN),
        "duplicates": _duplicates(r),
        # the old estimators of scale-out, without quotas: they measure the machine (docs/performance.md)
        "scale_out": scale.get("scale_out", NAN),
        "machine_scale_out": scale.get("raw_processes_ratio", NAN),
    }
    one, quarter = s["polls_per_s"], quota.get("one_worker_polls_per_s", NAN)
    s["workers_per_million_at_60s"] = math.ceil(1_000_000 / 60 / one) if one == one and one else NAN
    # the same from the quota scenario: cores at its one-worker rate per quarter core
    s["cores_per_million_at_60s"] = 1_000_000 / 60 / (quarter / quota.get("cores_per_worker", 0.25)) if quarter else NAN
    return s


def _duplicates(r: dict[str, Any]) -> float:
    found = [r[k]["duplicates"] for k in ("deliveries", "scale_out", "quota") if "duplicates" in r.get(k, {})]
    return sum(found) if found else NAN


def bench_line(s: dict[str, Any]) -> str:
    return (
        f"bench: poll_ratio={s['poll_ratio']:.2f} polls_per_s={s['polls_per_s']:.0f} raw_per_s={s['raw_per_s']:.0f} "
        f"scan_orders_per_s={s['scan_orders_per_s']:.0f} deliveries_per_s={s['deliveries_per_s']:.0f} "
        f"latency_p99_over_interval_s={s['latency_p99_over_interval_s']:.2f} "
        f"redis_bytes_per_resource={s['redis_bytes_per_resource']:.0f} worker_rss_mb={s['worker_rss_mb']:.0f} "
        f"scale_2={s['scale_2']:.2f} scale_4={s['scale_4']:.2f} deliveries_ratio={s['deliveries_ratio']:.2f} "
        f"scan_ratio={s['scan_ratio']:.2f} tick_growth={s['tick_growth']:.2f} sweep_ratio={s['sweep_ratio']:.2f}"
    )


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


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def histogram(samples: list[float], interval: float, path: Path) -> bool:
    """The latency histogram as a PNG; False when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None or not samples:
        return False
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    top = max(samples)
    bins = max(10, min(60, math.ceil(top / 0.25)))
    ax.hist(samples, bins=bins, color="#4a7ab5", edgecolor="white")
    p99 = sorted(samples)[max(0, math.ceil(0.99 * len(samples)) - 1)]
    ax.axvline(interval, color="#888", linestyle="--", label=f"interval {interval:g} s")
    ax.axvline(interval + 0.5, color="#c44", linestyle=":", label="target p99 (interval + 0.5 s)")
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


def growth_plot(g: dict[str, Any], path: Path) -> bool:
    """Per-poll costs (µs, median of the rounds) against the watched count, log x; False
    without matplotlib or the growth scenario."""
    plt = _pyplot()
    if plt is None or not g.get("by_size"):
        return False
    sizes = [int(n) for n in g["by_size"]]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for name, label in (("tick_us", "scheduler tick (claim + enqueue)"), ("claim_us", "claim (lease)"),
                        ("commit_us", "commit of a changed order"), ("tick_us_redis", "tick, Redis CPU")):
        ax.plot(sizes, [g["by_size"][str(n)]["costs"][name] for n in sizes], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("watched orders (1,000 due every second)")
    ax.set_ylabel("µs per poll")
    ax.set_title("cost per poll against what is watched")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True
