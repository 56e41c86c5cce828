"""Artistree's orders in the stand-in: stored compactly (a slotted record plus the fields a
test or the progression changed) and rendered to the seed's full shape on each answer, so
that 100,000 orders fit in a few tens of megabytes. The heavy, never-changing parts
(analysis lines, annotations, layer names) come from a small pool of variants shared by
many orders (simulator/artistree_catalogue.py). The HTTP side is simulator/artistree.py.
"""

from __future__ import annotations

import random
import time
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from simulator.artistree_catalogue import (
    ADJECTIVES,
    DEFAULT_PROJECT_ID,
    FORMATS,
    NOUNS,
    PROJECTS,
    TAGS,
    VARIANTS,
    Presigner,
    iso,
    uuid_from,
)

__all__ = [
    "ALL_PROJECTS",
    "DEFAULT_PROJECT_ID",
    "OPEN_STATES",
    "ORDER_FIELDS",
    "PERSONAL",
    "STATES",
    "STAT_KEYS",
    "ArtistreeOrders",
    "Order",
    "Project",
    "Scope",
]

STATES = ("In Progress", "Human Certified", "Action Required", "Reviewed", "Failed", "Unsupported File")
OPEN_STATES = frozenset({"In Progress", "Action Required", "Reviewed"})
ALL_PROJECTS = "All Projects"
PERSONAL = "Personal Certificates"

ORDER_FIELDS = (
    "order_id",
    "username",
    "email",
    "order_state",
    "order_title",
    "asset_id",
    "asset_name",
    "asset_last_modified_timestamp",
    "ordered_by",
    "creation_time",
    "asset_preview_url",
    "analysis_list",
    "analysis_failed_items",
    "tags",
    "confidence",
    "remediation",
    "annotations",
    "project",
    "reviewed_by",
    "review_timestamp",
    "layers_info",
)
"""Every field of the seed's order, in the seed's order."""

STAT_KEYS = {
    "In Progress": "total_in_progress",
    "Human Certified": "total_certified",
    "Action Required": "total_action_required",
    "Reviewed": "total_reviewed",
    "Failed": "total_failed",
    "Unsupported File": "total_unsupported",
}
_UPDATABLE = frozenset(ORDER_FIELDS) - {"order_id", "project"}

@dataclass(slots=True)
class Order:
    order_id: str
    seq: int
    state: str
    title: str
    project_id: str | None
    variant: int
    created: int
    tags: tuple[str, ...] | list[str]
    extra: dict[str, Any] | None = None
    url_epoch: int = 0


@dataclass(slots=True)
class Scope:
    """The orders of one project (or of the personal certificates), by insertion sequence."""

    seqs: list[int] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Project:
    id: str
    name: str
    user_role: str
    scope: Scope = field(default_factory=Scope)



class ArtistreeOrders:
    """The orders, their projects and their counts, with the Python API that tests,
    benchmarks and the demo use."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self._presigner = Presigner()
        self._orders: dict[str, Order] = {}
        self._slots: list[Order | None] = []
        self._stats: Counter[str] = Counter()
        self._personal = Scope()
        self._projects: dict[str, Project] = {pid: Project(pid, name, role) for pid, name, role in PROJECTS}
        self._unlisted: dict[str, int] = {}

    # ---- Python API for tests, benchmarks and the demo --------------------------------

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    @property
    def order_ids(self) -> list[str]:
        return list(self._orders)

    def add_order(
        self,
        order_id: str | None = None,
        *,
        state: str = "In Progress",
        project_id: str | None = DEFAULT_PROJECT_ID,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Add an order (project_id None: a personal certificate); returns it as the API would."""
        if order_id is not None and order_id in self._orders:
            raise ValueError(f"order {order_id} already exists")
        _check_fields(fields)
        order = self._insert(order_id, state, project_id, title, tags)
        if fields:
            return self.update(order.order_id, **fields)
        return self.get(order.order_id)

    def add_many(self, n: int, *, project_id: str | None = DEFAULT_PROJECT_ID, state: str = "In Progress") -> list[str]:
        """Add `n` orders quickly (about 3 µs each); returns their ids."""
        return [self._insert(None, state, project_id, None, None).order_id for _ in range(n)]

    def get(self, order_id: str) -> dict[str, Any]:
        """The order as the API answers it now (a private copy)."""
        copy: dict[str, Any] = orjson.loads(orjson.dumps(self._render(self._orders[order_id])))
        return copy

    def state_of(self, order_id: str) -> str:
        return self._orders[order_id].state

    def set_state(self, order_id: str, state: str) -> dict[str, Any]:
        """Change only `order_state` (use `update` for the fields that go with it)."""
        self._set_state(self._orders[order_id], state)
        return self.get(order_id)

    def reopen(self, order_id: str, state: str = "In Progress") -> dict[str, Any]:
        """Move a terminal order back to an open state, as a resubmission does (the seed
        does not say that Failed, Human Certified or Unsupported File are final)."""
        order = self._orders[order_id]
        if order.state in OPEN_STATES or state not in OPEN_STATES:
            raise ValueError(f"reopen moves a terminal order to an open state, not {order.state} → {state}")
        self._set_state(order, state)
        return self.get(order_id)

    def update(self, order_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of an order, e.g. reviewed_by, analysis_failed_items, annotations."""
        order = self._orders[order_id]
        _check_fields(fields)
        if "order_state" in fields:
            self._set_state(order, fields.pop("order_state"))
        if "order_title" in fields:
            order.title = str(fields.pop("order_title"))
        if "tags" in fields:
            order.tags = [str(t) for t in fields.pop("tags")]
        if fields:
            order.extra = {**(order.extra or {}), **orjson.loads(orjson.dumps(fields))}
        return self.get(order_id)

    def move_between_pages(self, order_id: str, sweeps: int = 1) -> None:
        """Leave the order out of the next `sweeps` listings that would hold it, as when a
        listing's page boundaries move while it is read (an order sorted onto a page already
        served); a GET of it still answers."""
        if order_id not in self._orders:
            raise KeyError(order_id)
        self._unlisted[order_id] = sweeps

    def rotate_presigned_urls(self, order_id: str) -> None:
        """Move the order's assets to a new key and credential (URLs change anyway per answer)."""
        self._orders[order_id].url_epoch += 1

    def remove(self, order_id: str) -> None:
        order = self._orders.pop(order_id)
        self._slots[order.seq] = None
        self._stats[order.state] -= 1
        self._scope(order.project_id).stats[order.state] -= 1

    # ---- storage ---------------------------------------------------------------------

    def _scope(self, project_id: str | None) -> Scope:
        if project_id is None:
            return self._personal
        project = self._projects.get(project_id)
        if project is None:
            project = self._projects[project_id] = Project(project_id, f"Project {project_id[:8]}", "member")
        return project.scope

    def _insert(
        self, order_id: str | None, state: str, project_id: str | None, title: str | None, tags: Sequence[str] | None
    ) -> Order:
        if state not in STAT_KEYS:
            raise ValueError(f"unknown order_state {state!r}")
        rng = self.rng
        bits = rng.getrandbits(32)
        if title is None:
            title = (
                f"{ADJECTIVES[bits & 15]} {NOUNS[(bits >> 4) & 15]} "
                f"{FORMATS[(bits >> 8) & 7]} v{(bits >> 11) % 5 + 1}"
            )
        order = Order(
            order_id=order_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            seq=len(self._slots),
            state=state,
            title=title,
            project_id=project_id,
            variant=(bits >> 14) % len(VARIANTS),
            created=int(time.time()) - (bits >> 19) % (30 * 86400),
            tags=list(tags) if tags is not None else TAGS[(bits >> 24) % len(TAGS)],
        )
        scope = self._scope(project_id)
        self._orders[order.order_id] = order
        self._slots.append(order)
        scope.seqs.append(order.seq)
        scope.stats[state] += 1
        self._stats[state] += 1
        return order

    def _set_state(self, order: Order, state: str) -> None:
        if state not in STAT_KEYS:
            raise ValueError(f"unknown order_state {state!r}")
        scope = self._scope(order.project_id)
        for stats in (self._stats, scope.stats):
            stats[order.state] -= 1
            stats[state] += 1
        order.state = state

    def _field(self, order: Order, name: str, default: Any) -> Any:
        return order.extra[name] if order.extra and name in order.extra else default

    def _render(self, order: Order) -> dict[str, Any]:
        v = VARIANTS[order.variant]
        username, email, ordered_by = v.user
        oid, epoch = order.order_id, order.url_epoch
        stem = order.title.lower().replace(" ", "_")
        keys = [f"orders/{oid}/v{epoch}/layers/{i:02d}.png" for i in range(len(v.layer_names))]
        keys.append(f"orders/{oid}/v{epoch}/preview.webp")
        urls = self._presigner.urls(keys, epoch)
        project = self._projects[order.project_id] if order.project_id is not None else None
        rendered: dict[str, Any] = {
            "order_id": oid,
            "username": username,
            "email": email,
            "order_state": order.state,
            "order_title": order.title,
            "asset_id": uuid_from(oid),
            "asset_name": stem + v.extension,
            "asset_last_modified_timestamp": str(order.created - 5400),
            "ordered_by": ordered_by,
            "creation_time": iso(order.created),
            "asset_preview_url": None if order.state == "Unsupported File" else urls[-1],
            "analysis_list": v.analysis_list,
            "analysis_failed_items": [],
            "tags": list(order.tags),
            "confidence": v.confidence,
            "remediation": v.remediation,
            "annotations": v.annotations,
            "project": {"id": project.id, "name": project.name, "userRole": project.user_role} if project else None,
            "reviewed_by": None,
            "review_timestamp": None,
            "layers_info": [
                {"layer_name": name, "layer_url": url} for name, url in zip(v.layer_names, urls, strict=False)
            ],
        }
        if order.extra:
            rendered.update(order.extra)
        return rendered

    def _preview(self, order: Order) -> dict[str, Any]:
        project = self._projects[order.project_id] if order.project_id is not None else None
        return {
            "order_id": order.order_id,
            "order_title": order.title,
            "creation_time": iso(order.created),
            "order_state": order.state,
            "asset_preview_url": None
            if order.state == "Unsupported File"
            else self._presigner.urls([f"orders/{order.order_id}/v{order.url_epoch}/preview.webp"], order.url_epoch)[0],
            "project_name": project.name if project else PERSONAL,
            "analysis_list": self._field(order, "analysis_list", VARIANTS[order.variant].analysis_list),
            "tags": list(order.tags),
        }

    def _page(self, seqs: Sequence[int] | None, start: int, limit: int) -> tuple[list[Order], int | None]:
        """Up to `limit` live orders from sequence `start`, and where the next page starts."""
        slots = self._slots
        if seqs is None:
            seqs = range(len(slots))
        out: list[Order] = []
        for i in range(bisect_left(seqs, start), len(seqs)):
            order = slots[seqs[i]]
            if order is None:
                continue
            if len(out) == limit:
                return out, order.seq
            if self._unlisted and self._skipped(order.order_id):
                continue
            out.append(order)
        return out, None

    def _skipped(self, order_id: str) -> bool:
        left = self._unlisted.get(order_id, 0)
        if left <= 0:
            return False
        if left == 1:
            del self._unlisted[order_id]
        else:
            self._unlisted[order_id] = left - 1
        return True


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot set {sorted(unknown)} on an order")

