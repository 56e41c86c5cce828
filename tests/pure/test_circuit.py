"""The circuit's rules (core/circuit.py) with plain values and a clock the test moves."""

from __future__ import annotations

import pytest

from core.circuit import (
    PROBE_ROTATE,
    Circuit,
    CircuitPolicy,
    Status,
    answered,
    decode,
    drained,
    due_work,
    encode,
    is_outage,
    probe_candidate,
    probe_delay,
    probe_failed,
    record,
    take_lease,
)

POLICY = CircuitPolicy()


def failures(n: int, *, at: float = 100.0, policy: CircuitPolicy = POLICY, c: Circuit | None = None) -> Circuit:
    c = c or Circuit()
    for i in range(n):
        c = record(c, at + i * 0.01, policy, ok=False, reason="HTTP 500")
    return c


def test_consecutive_outage_failures_open_it() -> None:
    almost = failures(POLICY.failures - 1)
    assert almost.status is Status.CLOSED and almost.consecutive == POLICY.failures - 1
    opened = record(almost, 101.0, POLICY, ok=False, reason="HTTP 503")
    assert opened.status is Status.OPEN and opened.holds
    assert (opened.opened_at, opened.next_probe, opened.reason) == (101.0, 101.0 + POLICY.probe_after, "HTTP 503")


def test_a_success_ends_the_run_and_a_clean_circuit_does_not_change() -> None:
    c = record(failures(4), 101.0, POLICY, ok=True)
    assert c.status is Status.CLOSED and c.consecutive == 0 and not c.clean  # the window still counts
    assert record(failures(4, c=c, at=102.0), 103.0, POLICY, ok=False).status is Status.OPEN  # 4 + 1 in a row
    assert record(Circuit(), 1.0, POLICY, ok=True) is not None
    assert record(Circuit(), 1.0, POLICY, ok=True) == Circuit()


def test_a_failure_rate_over_the_window_opens_it() -> None:
    c, n = Circuit(), 0
    while c.status is Status.CLOSED:  # failure, success, failure, success ...: never 2 in a row
        c = record(c, 100 + n, POLICY, ok=n % 2 == 1)
        n += 1
    assert n == POLICY.min_requests + 1  # on the failure that makes 11 of 21 (the window began with one)
    assert c.status is Status.OPEN


def test_the_window_runs_out() -> None:
    c = Circuit()
    for i in range(POLICY.min_requests - 2):
        c = record(c, 100 + i, POLICY, ok=i % 2 == 1)
    late = record(c, 100 + POLICY.window + 30, POLICY, ok=True)
    assert late == Circuit()  # the window ended: a success leaves it clean


def test_outage_failures_are_the_ones_that_count() -> None:
    assert is_outage(500, None) and is_outage(503, 10.0) and is_outage(None, None) and is_outage(408, None)
    assert not is_outage(429, 5.0)  # the destination is up and pacing us
    assert not is_outage(None, 2.0)  # our own pacing: nothing was sent


def test_probes_back_off_and_cap() -> None:
    delays = [probe_delay(n, POLICY) for n in range(1, 7)]
    assert delays == [2.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    slow = CircuitPolicy(probe_after=1.0, probe_max=30.0)
    assert [probe_delay(n, slow) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_one_probe_at_a_time_and_only_when_due() -> None:
    c = failures(5)
    assert take_lease(c, c.next_probe - 0.1, 20) is None  # not due
    leased = take_lease(c, c.next_probe, 20)
    assert leased is not None and take_lease(leased, c.next_probe + 1, 20) is None  # one in flight
    again = probe_failed(leased, c.next_probe + 0.5, POLICY, at_least=10.0)
    assert again.lease_until == 0 and again.probes == 1 and again.next_probe == c.next_probe + 10.5  # Retry-After
    assert take_lease(Circuit(), 1.0, 20) is None  # closed: nothing to probe


def test_an_answer_flushes_and_drained_closes() -> None:
    c = failures(5)
    flushing = answered(c, 120.0)
    assert flushing.status is Status.FLUSHING and flushing.holds and flushing.opened_at == c.opened_at
    assert record(c, 120.0, POLICY, ok=True).status is Status.FLUSHING  # a delivery in flight answered
    assert record(c, 120.0, POLICY, ok=False) == c  # open: failures change nothing
    assert drained(flushing) == Circuit() and drained(c) == c  # only a flush drains
    reopened = failures(5, c=flushing, at=121.0)
    assert reopened.status is Status.OPEN and reopened.opened_at == pytest.approx(121.04)


def test_an_answer_while_a_probe_is_in_flight_waits_for_it() -> None:
    """The probe holds a delivery the flush would send too: the flush's lease starts when the
    probe's ends (the probe gives it back)."""
    leased = take_lease(failures(5), 101.5, 20.0)
    assert leased is not None
    flushing = record(leased, 102.0, POLICY, ok=True)  # a delivery that was in flight answered
    assert flushing.status is Status.FLUSHING and flushing.lease_until == 121.5
    assert take_lease(flushing, 110.0, 60.0) is None and due_work(flushing, 110.0, grace=1.0) is None
    assert answered(leased, 102.0).lease_until == 102.0  # the probe's own answer: the flush goes at once


def test_the_watcher_starts_what_nobody_did() -> None:
    c = failures(5)
    assert due_work(c, c.next_probe + 0.5, grace=1.0) is None  # the probe job has a second
    assert due_work(c, c.next_probe + 1.0, grace=1.0) == "probe"
    leased = take_lease(c, c.next_probe, 20)
    assert leased is not None and due_work(leased, c.next_probe + 5, grace=1.0) is None
    flushing = answered(c, 130.0)
    assert due_work(flushing, 130.5, grace=1.0) is None  # the flush job was just enqueued
    assert due_work(flushing, 131.0, grace=1.0) == "flush"
    assert due_work(Circuit(), 1e9, grace=1.0) is None


def test_the_probe_is_the_oldest_then_moves_on_by_resource() -> None:
    held = [("a", 2), ("b", 1), ("a", 1), ("c", 5)]  # a's seq 1 came back late (a retry)
    assert probe_candidate(held, 0) == 2  # a's first event, never a's seq 2 before it
    assert probe_candidate(held, PROBE_ROTATE) == 1  # b
    assert probe_candidate(held, 2 * PROBE_ROTATE) == 3  # c
    assert probe_candidate(held, 3 * PROBE_ROTATE) == 2  # a again
    assert probe_candidate([], 0) is None


def test_the_record_round_trips_and_a_bad_one_reads_closed() -> None:
    c = probe_failed(failures(5), 200.0, POLICY, reason="timeout after 15s")
    assert decode(encode(c)) == c
    assert decode(None) == Circuit() and decode(b"") == Circuit()
    assert decode(b"{not json") == Circuit() and decode(b'{"status": "ajar"}') == Circuit()


@pytest.mark.parametrize("recovers_at", [60.0, 60.4, 61.3, 62.9, 75.0, 90.05])
def test_after_a_60s_outage_the_flush_starts_within_the_probe_cap(recovers_at: float) -> None:
    """A receiver down from t=0: deliveries fail, the circuit opens, probes fail on their
    backoff until it recovers; the first probe after that starts the flush."""
    c, t = Circuit(), 0.0
    while c.status is Status.CLOSED:  # one delivery a second during the outage
        c = record(c, t, POLICY, ok=False, reason="HTTP 500")
        t += 1.0
    probes = 0
    while True:
        t = c.next_probe
        leased = take_lease(c, t, 20.0)
        assert leased is not None
        probes += 1
        if t >= recovers_at:
            c = answered(leased, t)
            break
        c = probe_failed(leased, t + 0.01, POLICY)  # a refused connection answers at once
    assert c.status is Status.FLUSHING
    assert t - recovers_at <= POLICY.probe_max + 0.01
    assert probes <= 2 + recovers_at / POLICY.probe_max  # one request per probe: a few dozen a minute at most
