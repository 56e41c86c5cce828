"""Seed-shaped Artistree payloads as static files for nginx: one file per order and the
project's order list, pre-rendered page by page.

The orders come from the simulator's renderer, so they have the seed's fields, sizes and
presigned URLs (fixed in a static file: a fresh fetch from nginx returns the same URL,
which only makes the statehook side's volatile-field dropping free of surprises).
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from simulator.artistree import DEFAULT_PROJECT_ID, STATES, ArtistreeSim

__all__ = ["Orders", "build_orders", "page_token", "rewrite_state"]


@dataclass(frozen=True, slots=True)
class Orders:
    ids: list[str]
    data: Path
    project_id: str
    mean_bytes: float
    pages: int


def page_token(i: int) -> str:
    return f"p{i:05d}"


def build_orders(data: Path, n: int, *, page_size: int = 1000, seed: int = 7, processes: int = 2) -> Orders:
    """Writes `data/orders/{id}` for `n` orders and `data/pages/*.json` listing them all.
    Rendering is pure Python (~10 s for 100,000 orders here): `processes` forked children
    each render and write a contiguous run of pages and their orders."""
    sim = ArtistreeSim(seed=seed)
    ids = sim.add_many(n, project_id=DEFAULT_PROJECT_ID)
    orders_dir, pages_dir = data / "orders", data / "pages"
    orders_dir.mkdir(parents=True, exist_ok=True)
    pages_dir.mkdir(parents=True, exist_ok=True)
    pages = (n + page_size - 1) // page_size
    stats = orjson.dumps({"total_in_progress": n, "total_orders": n, **{s: 0 for s in STATES[1:]}})
    job = _Render(sim, ids, orders_dir, pages_dir, page_size, pages, stats)
    runs = [range(pages * k // processes, pages * (k + 1) // processes) for k in range(processes)]
    if processes > 1 and pages > 1:
        global _job
        _job = job
        try:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                total = sum(pool.map(_render_run, runs))
        finally:
            _job = None
    else:
        total = job.write(range(pages))
    for d in (data, orders_dir, pages_dir):
        d.chmod(0o755)
    return Orders(ids, data, DEFAULT_PROJECT_ID, total / max(1, n), pages)


@dataclass(frozen=True, slots=True)
class _Render:
    sim: ArtistreeSim
    ids: list[str]
    orders_dir: Path
    pages_dir: Path
    page_size: int
    pages: int
    stats: bytes

    def write(self, run: range) -> int:
        """Renders and writes the pages of `run` and their orders; returns their bytes."""
        total = 0
        for i in run:
            bodies = []
            for oid in self.ids[i * self.page_size : (i + 1) * self.page_size]:
                body = orjson.dumps(self.sim.get(oid))
                total += len(body)
                bodies.append(body)
                fd = os.open(os.path.join(self.orders_dir, oid), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, body)
                finally:
                    os.close(fd)
            nxt = orjson.dumps(page_token(i + 1) if i + 1 < self.pages else None)
            page = (b'{"order_stats":' + self.stats + b',"project_names":[],"next_page_token":' + nxt
                    + b',"orders":[' + b",".join(bodies) + b'],"order_previews":null}')
            path = self.pages_dir / f"{'first' if i == 0 else page_token(i)}.json"
            path.write_bytes(page)
            path.chmod(0o644)
        return total


_job: _Render | None = None
"""What the forked children render (inherited by fork, not pickled)."""


def _render_run(run: range) -> int:
    assert _job is not None
    return _job.write(run)


def rewrite_state(data: Path, order_id: str, state: str) -> None:
    """A change at the 'provider': the order's file now says `state`."""
    path = data / "orders" / order_id
    order = orjson.loads(path.read_bytes())
    order["order_state"] = state
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(order))
    tmp.chmod(0o644)
    tmp.replace(path)
