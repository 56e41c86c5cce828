"""A run's raw record (`run-data.json` in its work directory), the per-fault table, the
JSON report's scored part, and scoring a saved run again:
`python -m chaos --rescore /tmp/statehook-chaos-XXXX` (after a change to chaos/score.py).
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos.score import (
    Change,
    ChangeVerdict,
    Delivery,
    FaultRecord,
    FaultScore,
    PollRequest,
    Score,
    score,
)

__all__ = ["RunData", "print_summary", "report_core", "rescore"]


@dataclass
class RunData:
    t0: float
    end: float
    changes: list[Change]
    deliveries: list[Delivery]
    faults: list[FaultRecord]
    polls: list[PollRequest]
    worker_exits: list[str]
    """the workers that exited by themselves, `name (code N)`"""
    healthz: list[tuple[float, int]] = field(default_factory=list)
    rkeys: dict[str, str] = field(default_factory=dict)
    """every changed resource -> its provider"""

    def score(self) -> Score:
        return score(self.changes, self.deliveries, self.faults, self.polls, len(self.worker_exits))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> RunData:
        raw = json.loads(path.read_text())
        return cls(
            t0=raw["t0"], end=raw["end"],
            changes=[Change(**{**c, "receivers": tuple(c["receivers"])}) for c in raw["changes"]],
            deliveries=[Delivery(**d) for d in raw["deliveries"]],
            faults=[FaultRecord(**f) for f in raw["faults"]],
            polls=[PollRequest(p["at"], p["provider"], None if p["rkeys"] is None else tuple(p["rkeys"]))
                   for p in raw["polls"]],
            worker_exits=list(raw["worker_exits"]),
            healthz=[(float(a), int(s)) for a, s in raw["healthz"]],
            rkeys=dict(raw["rkeys"]),
        )


def _healthz_ok_after(data: RunData, since: float) -> float | None:
    for at, status in data.healthz:
        if at >= since and status == 200:
            return at - since
    return None


def _s(value: float | None) -> str:
    return "-" if value is None else ("inf" if math.isinf(value) else f"{value:.1f}")


def _recovery(f: FaultScore) -> float | None:
    if f.kind != "redis":
        return None
    return math.inf if f.recovery_s is None else f.recovery_s


def fault_rows(data: RunData, result: Score) -> list[dict[str, Any]]:
    rows = []
    for f in result.faults:
        since = f.redis_back if f.redis_back is not None else f.started
        row = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(f).items()}
        row["at_s"] = round(f.started - data.t0, 1)
        row["redis_back_after_s"] = None if f.redis_back is None else round(f.redis_back - f.started, 2)
        ok = _healthz_ok_after(data, since)
        row["healthz_ok_after_s"] = None if ok is None else round(ok, 1)
        rows.append(row)
    return rows


def print_summary(data: RunData, result: Score, duration: float, report_path: Path | None) -> None:
    header = (f"{'fault':<24} {'at':>6} {'victim':>6} {'down':>5} {'poll':>5} {'deliv':>5} {'recov':>5} "
              f"{'health':>6} {'chg':>4} {'miss':>4} {'lost':>4} {'stuck':>5} {'p50':>5} {'max':>5}")
    print("", flush=True)
    print(header)
    for f, row in zip(result.faults, fault_rows(data, result), strict=True):
        print(f"{f.name:<24} {row['at_s']:>6.1f} {f.victim or '-':>6} {_s(row['redis_back_after_s']):>5} "
              f"{_s(f.poll_recovery_s):>5} {_s(f.delivery_recovery_s):>5} {_s(_recovery(f)):>5} "
              f"{_s(row['healthz_ok_after_s']):>6} {f.changes:>4} {f.missed:>4} {f.lost_with_data:>4} "
              f"{f.stuck:>5} {_s(f.latency_p50):>5} {_s(f.latency_max):>5}")
    print("(seconds; down: until Redis answered again; poll/deliv: from then to the first provider request / the "
          "first delivery of a change made after; recov: the larger; health: until /healthz said 200; "
          "chg/miss/lost/stuck: changes made from this fault to the next; p50/max: their latency)")
    lost = [v.change for v in result.verdicts if v.status == "lost_with_data"]
    if lost:
        print(f"lost with the data ({len(lost)}, not counted as missed): "
              + ", ".join(f"#{c.n} {c.rkey} → {c.to_state} at +{c.at - data.t0:.1f}s" for c in lost))
    missed = [v for v in result.verdicts if v.status == "missed"]
    if missed:
        print(f"missed ({len(missed)}): " + ", ".join(
            f"#{v.change.n} {v.change.rkey.split(':')[0]} → {v.change.to_state} ({v.change.phase})"
            for v in missed[:12]) + (" …" if len(missed) > 12 else ""))
    if data.worker_exits:
        print(f"workers that exited by themselves: {', '.join(data.worker_exits)}")
    failed = result.failed_targets()
    where = f"; report {report_path}" if report_path is not None else ""
    print(f"targets: {'all met' if not failed else 'not met: ' + ', '.join(failed)}; "
          f"{len(data.deliveries)} receipts; run took {duration:.0f}s{where}")


def _poll_times(data: RunData) -> dict[str, list[float]]:
    """rkey -> when the simulator was asked for it (a scan page counts for each of its provider's)."""
    by_provider: dict[str, list[str]] = {}
    for rkey, provider in data.rkeys.items():
        by_provider.setdefault(provider, []).append(rkey)
    out: dict[str, list[float]] = {rkey: [] for rkey in data.rkeys}
    for p in data.polls:
        for rkey in (by_provider.get(p.provider, []) if p.rkeys is None else p.rkeys):
            out.setdefault(rkey, []).append(p.at)
    return out


def report_core(data: RunData, result: Score) -> dict[str, Any]:
    """What the scoring found, with the changes that went wrong named one by one."""
    polls = _poll_times(data)

    def change_row(v: ChangeVerdict) -> dict[str, Any]:
        c = v.change
        times = polls.get(c.rkey, [])
        until = c.until if c.until is not None else data.end
        during = bisect.bisect_right(times, until) - bisect.bisect_left(times, c.at)
        return {"n": c.n, "rkey": c.rkey, "from": c.from_state, "to": c.to_state, "at_s": round(c.at - data.t0, 2),
                "kept_s": None if c.until is None else round(c.until - c.at, 2), "phase": c.phase,
                "receivers": list(c.receivers), "got": {r: round(t - data.t0, 2) for r, t in v.received.items()},
                "latency_s": None if v.latency is None else round(v.latency, 2),
                "polled_while_current": during}

    by_id = {d.event_id: d for d in data.deliveries}
    return {
        "line": result.line(),
        "failed_targets": result.failed_targets(),
        "score": {k: getattr(result, k) for k in ("changes", "missed", "false", "reused_ids", "dup_same_id",
                                                  "worker_exits", "stuck_over_60s", "lost_with_data")}
        | {"recovery_p99_s": None if math.isinf(result.recovery_p99_s) else round(result.recovery_p99_s, 2)},
        "faults": fault_rows(data, result),
        "missed": [change_row(v) for v in result.verdicts if v.status == "missed"],
        "lost_with_data": [change_row(v) for v in result.verdicts if v.status == "lost_with_data"],
        "stuck": [change_row(v) for v in result.verdicts if v.stuck],
        "false": [{"id": i, "receiver": by_id[i].receiver, "type": by_id[i].event_type, "rkey": by_id[i].rkey,
                   "to": by_id[i].to_state, "detected_s": round(by_id[i].detected_at - data.t0, 1)}
                  for i in result.false_ids if i in by_id],
        "reused_ids": result.reused,
        "worker_exits": data.worker_exits,
        "healthz_non_200_samples": sum(1 for _, s in data.healthz if s != 200),
    }


def rescore(workdir: Path, report_path: Path | None) -> Score:
    """Score a saved run again; print its table and line; write the scored report if asked."""
    data = RunData.load(workdir / "run-data.json")
    result = data.score()
    if report_path is not None:
        report_path.write_text(json.dumps(report_core(data, result), indent=2))
    print_summary(data, result, data.end - data.t0, report_path)
    print(result.line(), flush=True)
    return result
