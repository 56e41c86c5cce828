"""The rate schedule's arithmetic (store/rates.py), shared by provider limits and Slack's
pacing: what n slots start at given the stored time and now, when a wait is refused, what
a hold does, and how stored values read."""

from __future__ import annotations

import math

import pytest

from store.rates import Busy, Granted, expiry_ms, hold, parse_scheduled, take


def test_an_idle_schedule_starts_now_and_moves_on_by_n_intervals() -> None:
    assert take(0.0, 100.0, 10, 0.05) == Granted(start=100.0, wait=0.0, until=pytest.approx(100.5))


def test_a_busy_schedule_starts_where_it_ends() -> None:
    taken = take(100.5, 100.0, 10, 0.05)
    assert isinstance(taken, Granted)
    assert (taken.start, taken.wait) == (100.5, 0.5)
    assert taken.until == pytest.approx(101.0)


def test_a_schedule_that_fell_behind_lends_at_most_burst_slots_from_the_past() -> None:
    taken = take(50.0, 100.0, 4, 0.1, burst=10)
    assert isinstance(taken, Granted)
    assert taken.start == pytest.approx(99.0)  # 10 slots of 0.1 s before now
    assert taken.wait == pytest.approx(-1.0)
    assert taken.until == pytest.approx(99.4)
    # a schedule inside the burst allowance keeps its own end
    assert take(99.5, 100.0, 1, 0.1, burst=10) == Granted(99.5, -0.5, 99.6)


def test_a_wait_longer_than_max_wait_is_refused_and_says_how_long() -> None:
    assert take(103.0, 100.0, 1, 1.0, max_wait=2.5) == Busy(wait=3.0)
    assert take(102.5, 100.0, 1, 1.0, max_wait=2.5) == Granted(102.5, 2.5, 103.5)  # exactly max_wait: taken


def test_slack_pacing_spaces_sends_one_interval_apart() -> None:
    scheduled, now = 0.0, 10.0
    starts = []
    for _ in range(4):
        taken = take(scheduled, now, 1, 1.0, max_wait=5.0)
        assert isinstance(taken, Granted)
        starts.append(taken.start)
        scheduled = taken.until
    assert starts == [10.0, 11.0, 12.0, 13.0]


def test_a_hold_moves_the_schedule_only_forward() -> None:
    assert hold(0.0, 100.0, 30.0) == 130.0
    assert hold(200.0, 100.0, 30.0) is None  # already ends later
    assert hold(130.0, 100.0, 30.0) is None
    held = hold(105.0, 100.0, 30.0)
    assert held is not None
    assert take(held, 101.0, 1, 1.0, max_wait=5.0) == Busy(wait=29.0)


def test_the_stored_schedule_is_kept_until_it_ends_and_a_second_more() -> None:
    assert expiry_ms(100.5, 100.0) == 1500
    assert expiry_ms(100.0001, 100.0) == 1001  # rounded up: never expires before it ends
    assert expiry_ms(99.0, 100.0) == 1000  # a schedule in the past (burst) still gets its second


@pytest.mark.parametrize(("raw", "seconds"), [
    (None, 0.0),
    (b"", 0.0),
    (b"1000000.5", 1000000.5),
    ("1712345678.123456", 1712345678.123456),
    (b"1712345678123", 1712345678.123),  # milliseconds, as Slack's pacing stored them before
])
def test_stored_values_read_as_seconds(raw: bytes | str | None, seconds: float) -> None:
    assert math.isclose(parse_scheduled(raw), seconds)
