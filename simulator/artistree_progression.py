"""The stand-in's scripted progression of Artistree orders (for the demo and `simulate`):
open orders move along plausible paths, and new ones arrive so that a long demo never
runs dry."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from simulator.artistree_catalogue import REVIEWERS, VARIANTS, annotation, iso
from simulator.artistree_orders import OPEN_STATES, ArtistreeOrders, Order

__all__ = ["ArtistreeProgression"]


class ArtistreeProgression(ArtistreeOrders):
    """The orders, and `step`: what the demo calls to make things happen."""

    def __init__(self, *, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.held: set[str] = set()
        """orders the progression leaves where they are (the demo's stalled order)"""

    def hold(self, order_id: str) -> None:
        if order_id not in self:
            raise KeyError(order_id)
        self.held.add(order_id)

    def step(self, rng: random.Random) -> list[str]:
        """Move one to three open orders along a plausible path; sometimes (and always when
        nothing is open) a new order arrives, so that a long demo never runs dry."""
        lines: list[str] = []
        moved: set[str] = set()
        for _ in range(rng.randint(1, 3)):
            order = self._pick_open(rng, moved | self.held)
            if order is None:
                break
            moved.add(order.order_id)
            lines.append(self._advance(order, rng))
        if not moved or rng.random() < 0.25:
            new = self._insert(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "In Progress",
                rng.choice([*list(self._projects), None]),
                None,
                None,
            )
            lines.append(f"artistree: new order “{new.title}” ({new.order_id[:8]}) In Progress")
        return lines

    def _pick_open(self, rng: random.Random, exclude: set[str]) -> Order | None:
        for _ in range(32 if self._slots else 0):
            order = self._slots[rng.randrange(len(self._slots))]
            if order is not None and order.state in OPEN_STATES and order.order_id not in exclude:
                return order
        candidates = [o for o in self._orders.values() if o.state in OPEN_STATES and o.order_id not in exclude]
        return rng.choice(candidates) if candidates else None

    def _advance(self, order: Order, rng: random.Random) -> str:
        was = order.state
        states, weights = zip(*_NEXT[was], strict=True)
        now = rng.choices(states, weights)[0]
        v = VARIANTS[order.variant]
        fields: dict[str, Any] = {}
        extra = ""
        if now == "Human Certified":
            analyses = self._field(order, "analysis_list", v.analysis_list)
            fields = {
                "confidence": round(rng.uniform(0.9, 0.99), 2),
                "remediation": 0.0,
                "analysis_list": [{**a, "analysis_passed": True} for a in analyses],
            }
        elif now == "Failed":
            failed = [*self._field(order, "analysis_failed_items", []), rng.choice(v.layer_names)]
            analyses = self._field(order, "analysis_list", v.analysis_list)
            fields = {
                "analysis_failed_items": failed,
                "confidence": round(rng.uniform(0.1, 0.5), 2),
                "analysis_list": [{**a, "analysis_passed": i != 0} for i, a in enumerate(analyses)],
            }
            extra = f" (analysis failed: {failed[-1]})"
        elif now == "Action Required":
            notes = [*self._field(order, "annotations", v.annotations), annotation(rng, needs_remediation=True)]
            fields = {"annotations": notes, "remediation": 1.0}
            extra = " (an annotation needs remediation)"
        elif now == "Reviewed":
            reviewer = rng.choice(REVIEWERS)
            fields = {"reviewed_by": reviewer, "review_timestamp": iso(time.time())}
            extra = f" (reviewed by {reviewer})"
        elif now == "In Progress":
            fields = {"remediation": 0.5}
            extra = " (resubmitted)"
        self._set_state(order, now)
        if fields:
            self.update(order.order_id, **fields)
        return f"artistree: “{order.title}” ({order.order_id[:8]}) {was} → {now}{extra}"



_NEXT: dict[str, list[tuple[str, float]]] = {
    "In Progress": [
        ("Human Certified", 40),
        ("Action Required", 20),
        ("Failed", 15),
        ("Reviewed", 15),
        ("Unsupported File", 5),
    ],
    "Action Required": [("In Progress", 60), ("Reviewed", 25), ("Failed", 15)],
    "Reviewed": [("Human Certified", 60), ("Failed", 20), ("Action Required", 20)],
}
"""Where an open order can go next, with weights."""

