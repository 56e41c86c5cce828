"""A destination's circuit: when it is down, its deliveries wait together instead of each
spending its own retry schedule; when it answers again, they all go at once. Pure.

    closed ── N consecutive outage failures, or a failure rate over a window ──▶ open
    open ── a probe (the oldest held delivery) on a backoff, failing ──▶ open, next probe later
    open ── a probe answered (or any delivery in flight answered) ──▶ flushing
    flushing ── every held delivery handed over ──▶ closed
    flushing ── the same rule as when closed ──▶ open

While the circuit is not closed, new deliveries are *held* (store/circuit.py keeps them in
arrival order) without spending their tries. An *outage failure* is a transient failure
that says the destination is not answering: a 5xx, 408, 425, a timeout, a refused
connection. A 429 (the destination is up and pacing us) and a send that never left because
our own pacing said "not yet" are not. A destination that answers at all, even with a
permanent refusal, is up.

The state is one small record every worker shares (store/circuit.py writes it back only if
no other worker wrote in between); the rules are here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

import orjson

__all__ = [
    "PROBE_ROTATE",
    "Circuit",
    "CircuitPolicy",
    "Status",
    "answered",
    "decode",
    "drained",
    "due_work",
    "encode",
    "is_outage",
    "probe_candidate",
    "probe_delay",
    "probe_failed",
    "record",
    "release_lease",
    "take_lease",
]

PROBE_ROTATE = 3
"""Failed probes with one resource's delivery before the probe moves to the next resource's:
a delivery that only the receiver refuses (its payload makes it fail) must not keep the
circuit open while everything else would go through."""


class Status(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    FLUSHING = "flushing"


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    """When a circuit opens, how it probes, and how long a delivery may be held."""

    enabled: bool = True
    failures: int = 5
    """consecutive outage failures that open it"""
    failure_rate: float = 0.5
    """or this share of failures among the attempts of one window..."""
    window: float = 60.0
    """...of this many seconds (from its first failure)..."""
    min_requests: int = 20
    """...once the window holds at least this many attempts"""
    probe_after: float = 1.0
    """the first probe this long after opening; each failed probe doubles it..."""
    probe_max: float = 3.0
    """...up to this (a recovered destination waits at most this long for its flush)"""
    max_hold: float = 3 * 86400.0
    """a delivery held longer than this is dead-lettered"""


@dataclass(frozen=True, slots=True)
class Circuit:
    status: Status = Status.CLOSED
    consecutive: int = 0
    window_start: float = 0.0
    """0: no window (no failure since the last clean state)"""
    requests: int = 0
    failed: int = 0
    opened_at: float = 0.0
    probes: int = 0
    """failed probes since it opened"""
    next_probe: float = 0.0
    lease_until: float = 0.0
    """a probe (open) or the flush (flushing) is in flight until then"""
    reason: str = ""
    """the failure that opened it"""

    @property
    def clean(self) -> bool:
        """Closed with no failure to remember: a success changes nothing (and is not written)."""
        return self.status is Status.CLOSED and self.consecutive == 0 and self.window_start == 0

    @property
    def holds(self) -> bool:
        """New deliveries wait: open, or flushing what waited (they go behind it)."""
        return self.status is not Status.CLOSED


def is_outage(status: int | None, retry_after: float | None) -> bool:
    """Whether a transient failure counts against the circuit. A 429 is the destination
    pacing us; no status with a `retry_after` is our own pacing (nothing was sent)."""
    if status == 429:
        return False
    return not (status is None and retry_after is not None)


def _opened(now: float, policy: CircuitPolicy, reason: str) -> Circuit:
    return Circuit(Status.OPEN, opened_at=now, next_probe=now + policy.probe_after, reason=reason)


def record(c: Circuit, now: float, policy: CircuitPolicy, *, ok: bool, reason: str = "") -> Circuit:
    """An attempt outside a probe: `ok` if the destination answered (a 2xx, or a permanent
    refusal), else an outage failure."""
    if c.status is Status.OPEN:
        # a delivery in flight when it opened: its answer is as good as a probe's
        return answered(c, now, probe_in_flight=True) if ok else c
    window_live = c.window_start > 0 and now - c.window_start <= policy.window
    if ok:
        if c.clean:
            return c
        if not window_live:
            return replace(c, consecutive=0, window_start=0.0, requests=0, failed=0)
        return replace(c, consecutive=0, requests=c.requests + 1)
    start, requests, failed = (c.window_start, c.requests, c.failed) if window_live else (now, 0, 0)
    requests, failed, consecutive = requests + 1, failed + 1, c.consecutive + 1
    if consecutive >= policy.failures or (requests >= policy.min_requests and failed / requests >= policy.failure_rate):
        return _opened(now, policy, reason)
    return replace(c, consecutive=consecutive, window_start=start, requests=requests, failed=failed)


def answered(c: Circuit, now: float, *, probe_in_flight: bool = False) -> Circuit:
    """The destination answered while open: flush what waited. The lease is left at `now`,
    so that the flush job just enqueued is not doubled by `due_work` in the meantime; or,
    when the answer is not the probe's (`probe_in_flight`), at the probe's lease: the flush
    waits for the probe, which holds a delivery the flush would send too."""
    if c.status is not Status.OPEN:
        return c
    return Circuit(Status.FLUSHING, opened_at=c.opened_at,
                   lease_until=max(now, c.lease_until) if probe_in_flight else now)


def drained(c: Circuit) -> Circuit:
    """Every held delivery handed over: closed and clean."""
    return Circuit() if c.status is Status.FLUSHING else c


def probe_delay(probes: int, policy: CircuitPolicy) -> float:
    """Seconds from a failed probe (the `probes`-th) to the next: doubling, capped."""
    return float(min(policy.probe_max, policy.probe_after * 2 ** max(0, probes)))


def probe_failed(c: Circuit, now: float, policy: CircuitPolicy, *, at_least: float = 0.0,
                 reason: str = "") -> Circuit:
    """The probe in flight failed: the next one after the backoff (or `at_least`, a Retry-After)."""
    if c.status is not Status.OPEN:
        return c
    probes = c.probes + 1
    return replace(c, probes=probes, next_probe=now + max(at_least, probe_delay(probes, policy)), lease_until=0.0,
                   reason=reason or c.reason)


def take_lease(c: Circuit, now: float, seconds: float) -> Circuit | None:
    """The lease for a probe (open, and the probe is due) or for the flush (flushing); None
    when another holds it or there is nothing to do."""
    if c.lease_until > now or c.status is Status.CLOSED:
        return None
    if c.status is Status.OPEN and now < c.next_probe:
        return None
    return replace(c, lease_until=now + seconds)


def release_lease(c: Circuit, now: float) -> Circuit:
    return replace(c, lease_until=min(c.lease_until, now))


def due_work(c: Circuit, now: float, grace: float) -> Literal["probe", "flush"] | None:
    """What a watcher must start because nobody did: a probe overdue by `grace`, or a flush
    whose lease ran out `grace` ago (the job that held it died)."""
    if c.status is Status.OPEN and c.lease_until <= now and c.next_probe + grace <= now:
        return "probe"
    if c.status is Status.FLUSHING and c.lease_until + grace <= now:
        return "flush"
    return None


def probe_candidate(held: Sequence[tuple[str, int]], probes: int) -> int | None:
    """Which held delivery to probe with: `held` is (rkey, seq) in arrival order. The first
    delivery of the oldest resource, moving to the next resource's first every PROBE_ROTATE
    failed probes; never a later event of a resource before its earlier ones."""
    heads: dict[str, int] = {}
    for i, (rkey, seq) in enumerate(held):
        if rkey not in heads or seq < held[heads[rkey]][1]:
            heads[rkey] = i
    if not heads:
        return None
    order = list(heads.values())
    return order[(probes // PROBE_ROTATE) % len(order)]


_FIELDS = ("consecutive", "window_start", "requests", "failed", "opened_at", "probes", "next_probe",
           "lease_until", "reason")


def encode(c: Circuit) -> bytes:
    """The stored record (JSON; `status` is read by store/lua/circuit_hold.lua too)."""
    return orjson.dumps({"status": c.status.value, **{f: getattr(c, f) for f in _FIELDS}})


def decode(raw: bytes | str | None) -> Circuit:
    """The stored record; none, or one that does not read, is a closed circuit."""
    if not raw:
        return Circuit()
    try:
        d = orjson.loads(raw)
        return Circuit(Status(d["status"]), int(d["consecutive"]), float(d["window_start"]), int(d["requests"]),
                       int(d["failed"]), float(d["opened_at"]), int(d["probes"]), float(d["next_probe"]),
                       float(d["lease_until"]), str(d["reason"]))
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
        return Circuit()
