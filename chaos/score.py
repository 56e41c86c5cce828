"""Scoring a chaos run: every ground-truth change against what the receivers got. Pure.

Definitions (what `make chaos` prints and docs/reliability.md quotes):

- A **change** is one state the harness set on one resource at `at`, kept until `until`
  (the next change of that resource; None: kept to the end).
- A **delivery** matches a change when it is a `*.state_changed` event for the same
  resource, to the same state, detected inside the change's lifetime: `detected_at` (a
  whole second, taken when the poll started, before its fetch) within
  [`at` - DETECT_BEFORE, `until` + DETECT_AFTER]. Consecutive changes of one resource to
  the same state are at least one hold (≥ 7 s) apart, so at most one change matches.
- A change is **observed** when a matching delivery reached every receiver its route
  names; `observed_at` is when the last of those receivers first got one.
- **missed**: changes never observed by the end of the run (after the settle time), but
  for those **lost with the data**, counted apart and named: made after a data-loss fault
  F (FLUSHALL), at most RECOVERY_TARGET_S after it, and before its resource was polled
  again (the new baseline absorbed it). A change whose resource the fleet never polled
  again is missed: a fleet that does not recover does not get to call its misses lost.
  The harness makes no change in the seconds before a FLUSHALL, so that what was made
  before it can be delivered before the data goes: a change made before F and not
  delivered by then is missed. A change that **undoes one lost with the data** (within
  RECOVERY_TARGET_S, back to the state before it) is lost with it: nothing is left to tell.
- **false**: distinct event ids delivered that match no change (an event for a baseline,
  an event of a type no route should send, a state never set).
- **reused_ids**: distinct event ids that one receiver got with two different bodies
  (the body is everything but delivery headers: the webhook's JSON, Slack's payload,
  the mail's headers but Date and its parts).
- **dup_same_id**: extra copies: receipts of an (id, body) a receiver already had.
- **stuck_over_60s**: observed changes whose latency exceeds STUCK_AFTER_S. The latency
  is `observed_at - at` less the time Redis was not answering in between (down, hung,
  failing over: no change can be committed then, so a change made during a 60 s outage,
  or just before it, would otherwise be "stuck" whatever statehook did).
- **recovery** (per Redis fault): from `redis_back` (Redis answering again; for a
  FLUSHALL the moment it returned) until both a poll request reached the simulator and
  a change made at or after `redis_back` was delivered to a receiver: the larger of the
  two. A fault after which either never happened (before its `horizon`: the end of the
  fleet it was made to, its stage) has recovery = inf.
  **recovery_p99_s** is the nearest-rank 99th percentile of the per-fault recoveries (with
  fewer than 100 faults: the largest).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DETECT_AFTER",
    "DETECT_BEFORE",
    "RECOVERY_TARGET_S",
    "STUCK_AFTER_S",
    "Change",
    "ChangeVerdict",
    "Delivery",
    "FaultRecord",
    "FaultScore",
    "PollRequest",
    "Score",
    "nearest_rank",
    "score",
]

DETECT_BEFORE = 5.0
"""A poll's `now` is taken before its fetch (and a slow provider answers seconds later)."""
DETECT_AFTER = 1.5
"""`detected_at` is a whole second; a fetch answered just before `until` is still in."""
STUCK_AFTER_S = 60.0
RECOVERY_TARGET_S = 10.0

FaultKind = Literal["worker", "redis"]
Status = Literal["observed", "missed", "lost_with_data"]


@dataclass(frozen=True, slots=True)
class Change:
    n: int
    rkey: str
    to_state: str
    at: float
    until: float | None
    receivers: tuple[str, ...]
    from_state: str = ""
    phase: str = ""
    """the fault (or stage step) in effect when it was made"""
    probe: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    receiver: str
    event_id: str
    event_type: str
    rkey: str
    to_state: str | None
    detected_at: float
    received_at: float
    body: str
    """canonical text of what the receiver got, delivery headers left out"""


@dataclass(frozen=True, slots=True)
class PollRequest:
    """A provider API request that reached the simulator. `rkeys` None: it covered every
    resource of the provider (a scan page)."""

    at: float
    provider: str
    rkeys: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class FaultRecord:
    name: str
    kind: FaultKind
    started: float
    redis_back: float | None = None
    """Redis faults: when Redis answered again (a FLUSHALL: when it returned)"""
    data_loss: bool = False
    victim: str = ""
    note: str = ""
    horizon: float | None = None
    """the end of the fleet this fault was made to (its stage): polls and deliveries after it
    are another fleet's and do not count as this fault's recovery"""


@dataclass(frozen=True, slots=True)
class ChangeVerdict:
    change: Change
    status: Status
    observed_at: float | None
    latency: float | None
    stuck: bool
    received: dict[str, float]
    """receiver -> first matching receipt"""


@dataclass(slots=True)
class FaultScore:
    name: str
    kind: FaultKind
    started: float
    redis_back: float | None
    changes: int = 0
    observed: int = 0
    missed: int = 0
    lost_with_data: int = 0
    stuck: int = 0
    latency_max: float | None = None
    latency_p50: float | None = None
    poll_recovery_s: float | None = None
    delivery_recovery_s: float | None = None
    recovery_s: float | None = None
    victim: str = ""
    note: str = ""


@dataclass(slots=True)
class Score:
    changes: int
    missed: int
    false: int
    reused_ids: int
    dup_same_id: int
    worker_exits: int
    stuck_over_60s: int
    recovery_p99_s: float
    lost_with_data: int
    verdicts: list[ChangeVerdict]
    faults: list[FaultScore]
    false_ids: list[str] = field(default_factory=list)
    reused: dict[str, list[str]] = field(default_factory=dict)
    """reused event id -> the top-level fields in which its bodies differ (webhook JSON), or ['body']"""

    def line(self) -> str:
        return (f"chaos: changes={self.changes} missed={self.missed} false={self.false} "
                f"reused_ids={self.reused_ids} dup_same_id={self.dup_same_id} worker_exits={self.worker_exits} "
                f"stuck_over_60s={self.stuck_over_60s} recovery_p99_s={_fmt(self.recovery_p99_s)}")

    def failed_targets(self) -> list[str]:
        """The targets of issue 14 this run missed (empty: all met)."""
        failed = [name for name, value in (("missed", self.missed), ("false", self.false),
                                           ("reused_ids", self.reused_ids), ("worker_exits", self.worker_exits),
                                           ("stuck_over_60s", self.stuck_over_60s)) if value]
        if not self.recovery_p99_s <= RECOVERY_TARGET_S:
            failed.append("recovery_p99_s")
        return failed


def _fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q ≤ 1): the smallest value with at least q of them
    at or below it. 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _window(c: Change) -> tuple[float, float]:
    return c.at - DETECT_BEFORE, (math.inf if c.until is None else c.until + DETECT_AFTER)


def _match(d: Delivery, candidates: Sequence[Change]) -> Change | None:
    hits = [c for c in candidates if c.to_state == d.to_state and _window(c)[0] <= d.detected_at <= _window(c)[1]]
    if len(hits) <= 1:
        return hits[0] if hits else None
    made_by_then = [c for c in hits if c.at <= d.detected_at + 1]
    return max(made_by_then, key=lambda c: c.at) if made_by_then else min(hits, key=lambda c: c.at)


def _latency(c: Change, observed_at: float, outages: Sequence[FaultRecord]) -> float:
    """From `at` to `observed_at`, less the time Redis was not answering in between."""
    waited = observed_at - c.at
    for f in outages:
        if f.redis_back is not None:
            waited -= max(0.0, min(observed_at, f.redis_back) - max(c.at, f.started))
    return waited


def _first_poll_of(rkey: str, provider: str, after: float, before: float,
                   polls: Sequence[PollRequest]) -> float | None:
    for p in polls:
        if after <= p.at <= before and p.provider == provider and (p.rkeys is None or rkey in p.rkeys):
            return p.at
    return None


def _horizon(f: FaultRecord) -> float:
    return math.inf if f.horizon is None else f.horizon


def _lost_with_data(c: Change, faults: Sequence[FaultRecord], polls: Sequence[PollRequest]) -> bool:
    """Made after a data loss, at most RECOVERY_TARGET_S after it, and before its resource
    was polled again by the same fleet (so its state is in the new baseline)."""
    provider = c.rkey.split(":", 1)[0]
    for f in faults:
        if f.data_loss and f.started <= c.at <= f.started + RECOVERY_TARGET_S:
            rebaseline = _first_poll_of(c.rkey, provider, f.started, _horizon(f), polls)
            if rebaseline is not None and c.at <= rebaseline:
                return True
    return False


def score(
    changes: Sequence[Change],
    deliveries: Iterable[Delivery],
    faults: Sequence[FaultRecord],
    polls: Sequence[PollRequest],
    worker_exits: int,
    *,
    state_type_suffix: str = ".state_changed",
) -> Score:
    """Score a run. `polls` sorted by time; `deliveries` in any order."""
    all_deliveries = sorted(deliveries, key=lambda d: d.received_at)
    polls = sorted(polls, key=lambda p: p.at)
    by_rkey: dict[str, list[Change]] = defaultdict(list)
    for c in changes:
        by_rkey[c.rkey].append(c)

    dup_same_id, reused = _duplicates(all_deliveries)
    first, false_ids = _first_deliveries(all_deliveries, by_rkey, state_type_suffix)
    verdicts = _verdicts(changes, first, faults, polls)
    fault_scores = _per_fault(verdicts, faults, polls, all_deliveries, by_rkey)
    recoveries = [f.recovery_s if f.recovery_s is not None else math.inf
                  for f in fault_scores if f.kind == "redis"]
    return Score(
        changes=len(changes),
        missed=sum(1 for v in verdicts if v.status == "missed"),
        false=len(false_ids),
        reused_ids=len(reused),
        dup_same_id=dup_same_id,
        worker_exits=worker_exits,
        stuck_over_60s=sum(1 for v in verdicts if v.stuck),
        recovery_p99_s=nearest_rank(recoveries, 0.99),
        lost_with_data=sum(1 for v in verdicts if v.status == "lost_with_data"),
        verdicts=verdicts,
        faults=fault_scores,
        false_ids=list(false_ids),
        reused=reused,
    )


def _duplicates(deliveries: Sequence[Delivery]) -> tuple[int, dict[str, list[str]]]:
    """Deliveries of an id a receiver already had with the same body (count), and ids
    whose bodies differed (with the fields that differed)."""
    bodies: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for d in deliveries:
        seen = bodies[(d.receiver, d.event_id)]
        seen[d.body] = seen.get(d.body, 0) + 1
    dup_same_id = sum(n - 1 for seen in bodies.values() for n in seen.values())
    reused: dict[str, list[str]] = {}
    for (_, event_id), seen in bodies.items():
        if len(seen) > 1 and event_id not in reused:
            reused[event_id] = _differing_fields(list(seen))
    return dup_same_id, reused


def _first_deliveries(
    deliveries: Sequence[Delivery], by_rkey: Mapping[str, list[Change]], state_type_suffix: str
) -> tuple[dict[int, dict[str, float]], dict[str, None]]:
    """Each delivery matched to the change it reports: when each receiver first had each
    change (by change number), and the ids of deliveries that report no change (in order)."""
    first: dict[int, dict[str, float]] = defaultdict(dict)
    false_ids: dict[str, None] = {}
    for d in deliveries:
        hit = _match(d, by_rkey.get(d.rkey, ())) if d.event_type.endswith(state_type_suffix) else None
        if hit is None:
            false_ids.setdefault(d.event_id)
            continue
        if d.receiver not in first[hit.n]:
            first[hit.n][d.receiver] = d.received_at
    return first, false_ids


def _verdicts(
    changes: Sequence[Change], first: Mapping[int, dict[str, float]], faults: Sequence[FaultRecord],
    polls: Sequence[PollRequest],
) -> list[ChangeVerdict]:
    outages = [f for f in faults if f.kind == "redis"]
    verdicts: list[ChangeVerdict] = []
    previous: dict[str, ChangeVerdict] = {}
    for c in sorted(changes, key=lambda c: (c.at, c.n)):
        got = first.get(c.n, {})
        observed_at = max(got[r] for r in c.receivers) if all(r in got for r in c.receivers) else None
        if observed_at is not None:
            latency = _latency(c, observed_at, outages)
            verdict = ChangeVerdict(c, "observed", observed_at, latency, latency > STUCK_AFTER_S, dict(got))
        else:
            lost = _lost_with_data(c, faults, polls) or _undoes_a_loss(c, previous.get(c.rkey), faults)
            verdict = ChangeVerdict(c, "lost_with_data" if lost else "missed", None, None, False, dict(got))
        verdicts.append(verdict)
        previous[c.rkey] = verdict
    order = {c.n: i for i, c in enumerate(changes)}
    return sorted(verdicts, key=lambda v: order[v.change.n])


def _undoes_a_loss(c: Change, before: ChangeVerdict | None, faults: Sequence[FaultRecord]) -> bool:
    """`c` puts its resource back as it was before `before`, lost with a fault's data."""
    if before is None or before.status != "lost_with_data" or not before.change.from_state:
        return False
    return c.to_state == before.change.from_state and any(
        f.data_loss and f.started <= before.change.at and c.at <= f.started + RECOVERY_TARGET_S for f in faults)


def _differing_fields(texts: list[str]) -> list[str]:
    try:
        parsed = [json.loads(t) for t in texts]
    except ValueError:
        return ["body"]
    if not all(isinstance(p, dict) for p in parsed):
        return ["body"]
    keys = set().union(*(p.keys() for p in parsed))
    return sorted(k for k in keys if len({json.dumps(p.get(k), sort_keys=True) for p in parsed}) > 1) or ["body"]


def _per_fault(verdicts: Sequence[ChangeVerdict], faults: Sequence[FaultRecord], polls: Sequence[PollRequest],
               deliveries: Sequence[Delivery], by_rkey: dict[str, list[Change]]) -> list[FaultScore]:
    """Per fault: the changes made from its start to the next fault's start, and for a
    Redis fault its recovery."""
    ordered = sorted(faults, key=lambda f: f.started)
    out: list[FaultScore] = []
    for i, f in enumerate(ordered):
        end = ordered[i + 1].started if i + 1 < len(ordered) else math.inf
        mine = [v for v in verdicts if f.started <= v.change.at < end]
        latencies = sorted(v.latency for v in mine if v.latency is not None)
        fs = FaultScore(
            f.name, f.kind, f.started, f.redis_back,
            changes=len(mine),
            observed=sum(1 for v in mine if v.status == "observed"),
            missed=sum(1 for v in mine if v.status == "missed"),
            lost_with_data=sum(1 for v in mine if v.status == "lost_with_data"),
            stuck=sum(1 for v in mine if v.stuck),
            latency_max=latencies[-1] if latencies else None,
            latency_p50=nearest_rank(latencies, 0.5) if latencies else None,
            victim=f.victim, note=f.note,
        )
        if f.kind == "redis" and f.redis_back is not None:
            back, horizon = f.redis_back, _horizon(f)
            poll_at = next((p.at for p in polls if back <= p.at <= horizon), None)
            delivered_at = None
            for d in deliveries:  # sorted by receipt
                if d.received_at < back or d.received_at > horizon or not d.event_type.endswith(".state_changed"):
                    continue
                hit = _match(d, by_rkey.get(d.rkey, ()))
                if hit is not None and hit.at >= back:
                    delivered_at = d.received_at
                    break
            fs.poll_recovery_s = None if poll_at is None else poll_at - back
            fs.delivery_recovery_s = None if delivered_at is None else delivered_at - back
            if fs.poll_recovery_s is not None and fs.delivery_recovery_s is not None:
                fs.recovery_s = max(fs.poll_recovery_s, fs.delivery_recovery_s)
        out.append(fs)
    return out
