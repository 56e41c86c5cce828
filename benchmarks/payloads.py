"""Seed-shaped Artistree payloads as static files for nginx: one file per order and the
project's order list, pre-rendered page by page.

The orders come from the simulator's renderer, so they have the seed's fields, sizes and
presigned URLs (fixed in a static file: a fresh fetch from nginx returns the same URL,
which only makes the statehook side's volatile-field dropping free of surprises).

The first `in_memory` orders (the ones the polling scenarios fetch over and over) are also
written as an nginx `map` from URI to body, which nginx answers from memory: the same
bytes as the file, for ~39 µs of nginx's CPU a request instead of ~53 (open, fstat,
sendfile and close of a file per request). The payload server shares the two cores with
the workers, so what it spends is taken from them. An order served from memory cannot
change (`rewrite_state` refuses it): the scenarios that change orders use the others.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from simulator.artistree import DEFAULT_PROJECT_ID, STATES, ArtistreeSim

__all__ = ["MEMORY_DIR", "Orders", "build_orders", "map_entry", "page_token"]


@dataclass(frozen=True, slots=True)
class Orders:
    ids: list[str]
    data: Path
    project_id: str
    mean_bytes: float
    pages: int
    in_memory: frozenset[str] = frozenset()
    """The ids answered from nginx's memory (`MEMORY_DIR`): the first `in_memory` rendered."""

    def rewrite_state(self, order_id: str, state: str) -> None:
        """A change at the 'provider': the order's file now says `state`."""
        if order_id in self.in_memory:
            raise ValueError(f"order {order_id} is served from nginx's memory: its file change would not show")
        _rewrite_file(self.data, order_id, state)


MEMORY_DIR = "memory"
"""Under the data directory: the `map` entries (`*.map`) of the orders served from memory."""


def page_token(i: int) -> str:
    return f"p{i:05d}"


def build_orders(
    data: Path, n: int, *, in_memory: int = 0, page_size: int = 1000, seed: int = 7, processes: int = 2
) -> Orders:
    """Writes `data/orders/{id}` for `n` orders, `data/pages/*.json` listing them all and
    `data/memory/*.map` for the first `in_memory`. Rendering is pure Python (~10 s for
    100,000 orders here): `processes` forked children each render and write a contiguous
    run of pages and their orders."""
    sim = ArtistreeSim(seed=seed)
    ids = sim.add_many(n, project_id=DEFAULT_PROJECT_ID)
    orders_dir, pages_dir, memory_dir = data / "orders", data / "pages", data / MEMORY_DIR
    for d in (orders_dir, pages_dir, memory_dir):
        d.mkdir(parents=True, exist_ok=True)
    pages = (n + page_size - 1) // page_size
    stats = orjson.dumps({"total_in_progress": n, "total_orders": n, **{s: 0 for s in STATES[1:]}})
    memory = frozenset(ids[:in_memory])
    job = _Render(sim, ids, orders_dir, pages_dir, memory_dir, memory, page_size, pages, stats)
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
    for d in (data, orders_dir, pages_dir, memory_dir):
        d.chmod(0o755)
    return Orders(ids, data, DEFAULT_PROJECT_ID, total / max(1, n), pages, memory)


def map_entry(order_id: str, body: bytes) -> bytes:
    """One line of nginx's `map $uri $order_body`: the body as a single-quoted string.
    A body with `$` (nginx would read a variable) cannot be one: none is rendered so."""
    if b"$" in body:
        raise ValueError(f"order {order_id}: a body with '$' cannot be served from nginx's memory")
    quoted = body.replace(b"\\", b"\\\\").replace(b"'", b"\\'")
    return b"/v1/orders/" + order_id.encode() + b" '" + quoted + b"';\n"


@dataclass(frozen=True, slots=True)
class _Render:
    sim: ArtistreeSim
    ids: list[str]
    orders_dir: Path
    pages_dir: Path
    memory_dir: Path
    in_memory: frozenset[str]
    page_size: int
    pages: int
    stats: bytes

    def write(self, run: range) -> int:
        """Renders and writes the pages of `run` and their orders; returns their bytes."""
        total = 0
        entries: list[bytes] = []
        for i in run:
            bodies = []
            for oid in self.ids[i * self.page_size : (i + 1) * self.page_size]:
                body = orjson.dumps(self.sim.get(oid))
                total += len(body)
                bodies.append(body)
                if oid in self.in_memory:
                    entries.append(map_entry(oid, body))
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
        if entries:
            path = self.memory_dir / f"{run.start:05d}.map"
            path.write_bytes(b"".join(entries))
            path.chmod(0o644)
        return total


_job: _Render | None = None
"""What the forked children render (inherited by fork, not pickled)."""


def _render_run(run: range) -> int:
    assert _job is not None
    return _job.write(run)


def _rewrite_file(data: Path, order_id: str, state: str) -> None:
    """A change at the 'provider': the order's file now says `state`."""
    path = data / "orders" / order_id
    order = orjson.loads(path.read_bytes())
    order["order_state"] = state
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(order))
    tmp.chmod(0o644)
    tmp.replace(path)
