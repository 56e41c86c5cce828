"""tasks/rate_slots.py: which of a batch's resources are fetched now, in which slot, and
which wait for a booked one. Pure."""

from __future__ import annotations

import pytest

from store.rates import Reservation
from tasks.rate_slots import place, usable


def test_resources_without_a_slot_take_the_fresh_ones_in_order_and_those_past_the_horizon_wait() -> None:
    fresh = Reservation(start=100.0, interval=1.0)
    placed = place([None, 103.5, None, None], fresh, now=100.0, horizon=1.5)
    assert placed.now == [(0, 100.0), (2, 101.0)]
    assert placed.later == [(1, 103.5), (3, 102.0)]


def test_a_booked_slot_is_kept_unless_it_is_more_than_the_horizon_past() -> None:
    assert usable(99.0, now=100.0, horizon=2.0) == 99.0
    assert usable(97.0, now=100.0, horizon=2.0) is None
    assert usable(None, now=100.0, horizon=2.0) is None


def test_a_batch_of_booked_resources_takes_no_fresh_slot() -> None:
    assert place([100.2, 100.4], None, now=100.0, horizon=1.0).now == [(0, 100.2), (1, 100.4)]
    with pytest.raises(AssertionError):
        place([None], None, now=100.0, horizon=1.0)
