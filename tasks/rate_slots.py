"""Which of a poll batch's resources are fetched now and which later, by their rate slots.

A batch takes a slot of its provider's shared schedule (store/rates.py) for each resource
that has none; a resource whose slot starts beyond the batch's horizon is not waited for
(the batch's job would hold one of the worker's job slots for that long, or run into its
timeout): it keeps the slot, booked (`sh:booked`), and is due again at it. When it comes
back, its booking is its slot, and it takes no new one: resources are fetched in the order
their slots were taken, so that when more is due than the provider's rate allows each one
waits its turn, none passes another (a resource just polled takes its next slot behind the
ones booked), and no slot is reserved twice. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from store.rates import Reservation

__all__ = ["Placement", "place", "usable"]


def usable(booked: float | None, now: float, horizon: float) -> float | None:
    """A booked slot still to keep: None for none, or one more than `horizon` seconds past
    (the poll that booked it came back that late: its place in the schedule is gone)."""
    return booked if booked is not None and booked >= now - horizon else None


@dataclass(slots=True)
class Placement:
    now: list[tuple[int, float]] = field(default_factory=list)
    """(index, slot) of the resources fetched now"""
    later: list[tuple[int, float]] = field(default_factory=list)
    """(index, slot) of those booked for later"""


def place(held: Sequence[float | None], fresh: Reservation | None, now: float, horizon: float) -> Placement:
    """Each resource's slot (the one it `held`, else the next of `fresh`, reserved for those
    without one, in order) and whether it starts within `horizon` seconds of `now`."""
    out, j = Placement(), 0
    for i, slot in enumerate(held):
        if slot is None:
            assert fresh is not None, "a resource without a slot, and none reserved"
            slot, j = fresh.slot(j), j + 1
        (out.now if slot <= now + horizon else out.later).append((i, slot))
    return out
