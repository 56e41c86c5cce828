"""The providers' rate budget: what users feel is how fast a change is noticed under a real
provider's limit, long before the workers run out of CPU.

The simulator serves Artistree and Rev, each limited to `RATE` requests a second (a token
bucket that holds one second of them, as an API gateway's limit does; the token endpoint
is not limited) and answering 429 with `Retry-After: 1` beyond it; it counts the 429s it
sends and logs every request it lets through. Watched together, by one worker:

- 50,000 Artistree orders of one scan watch (`preview=true`, 1,000 a page: 50 pages),
  watched and baselined before (`benchmarks/loader.py`: what the preview scan's first
  sweep would leave: 50,000 detail fetches at 20 a second would take 42 minutes). A sweep
  is timed by the simulator's log, from its first page to its last, plus one slot; the
  ideal is pages ÷ rate. An order changes state every `CHANGE_EVERY` seconds: its delay to
  the receiver's 2xx against one sweep + 1 s.
- Rev orders watched by id (interval 1 s, so that the limit is what spaces their polls):
  the time between two polls of each order against orders ÷ rate. The issue's size is
  5,000 (250 s a round at 20/s, two rounds and more to measure); `make bench` runs 500
  (25 s a round) at the same limit and keeps the verdict's form (`--rev-orders`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from benchmarks.latency import percentile
from benchmarks.loader import load_records, preview_record
from benchmarks.scenarios import Bench
from benchmarks.stack import wait_until, workers, write_config
from model.resources import ResourceRef
from simulator.artistree import ArtistreeSim
from simulator.core import Handler, SimProvider, Simulator
from simulator.receivers import Received
from simulator.rev import RevSim
from store.records import WatchMeta
from store.snapshots import Store

__all__ = ["RATE", "LimitedSimulator", "budget"]

RATE = 20.0
PAGE = 1000
CHANGE_EVERY = 2.0
SCAN_RKEY = "artistree:scan:all-preview"


class LimitedSimulator(Simulator):
    """The stand-in with each provider's API limited to `rate` requests a second."""

    def __init__(self, providers: list[SimProvider], *, rate: float, seed: int = 7) -> None:
        super().__init__(providers, seed=seed)
        self.rate = rate
        self._tokens: dict[str, float] = {}
        self._at: dict[str, float] = {}
        self.limited: Counter[str] = Counter()
        """429s sent, per provider"""
        self.log: dict[str, list[tuple[float, str]]] = defaultdict(list)
        """(wall time, path and query) of every request let through, per provider"""

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.middlewares.insert(0, self._limit)
        return app

    @web.middleware
    async def _limit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        provider = request.path.split("/", 2)[1] if request.path.count("/") >= 2 else ""
        if provider not in self.providers or request.path.endswith("/token"):
            return await handler(request)
        now = time.monotonic()
        tokens = min(self.rate, self._tokens.get(provider, self.rate) + (now - self._at.get(provider, now)) * self.rate)
        self._at[provider] = now
        if tokens < 1.0:
            self._tokens[provider] = tokens
            self.limited[provider] += 1
            return web.Response(status=429, headers={"Retry-After": "1"})
        self._tokens[provider] = tokens - 1.0
        self.log[provider].append((time.time(), request.path_qs))
        return await handler(request)


async def budget(b: Bench, *, artistree: int = 50_000, rev: int = 500, rounds: float = 2.2) -> dict[str, Any]:
    await b.reset()
    art, rv = ArtistreeSim(seed=13), RevSim()
    sim = LimitedSimulator([art, rv], rate=RATE, seed=13)
    base = await sim.start()
    ids, orders = art.add_many(artistree), rv.add_many(rev)
    config = _config(b, base)
    try:
        loaded_s = await _baselined(b, art, ids, base)
        changes: dict[str, float] = {}
        seen: dict[str, float] = {}
        b.receiver.on_receive = _first_seen(changes, seen)
        async with workers(config, 1, b.log, b.redis):
            t0 = time.time()
            store = Store(b.redis)
            await store.add_watches([(SCAN_RKEY, WatchMeta(interval=1.0, scan={
                "project_id": "All Projects", "preview": "true"}))])
            await store.add_watches([(ResourceRef("rev", "order", o).key, WatchMeta(interval=1.0)) for o in orders])
            run_for = rounds * rev / RATE
            await _change_orders(art, ids, changes, until=t0 + run_for)
            with contextlib.suppress(TimeoutError):  # what is missing is reported, not waited for
                await wait_until(lambda: _all_seen(changes, seen), 30, "deliveries of the Artistree changes",
                                 every=0.1)
    finally:
        b.receiver.on_receive = None
        await sim.stop()
    return _figures(sim, artistree, rev, changes, seen, loaded_s)


def _config(b: Bench, base: str) -> Any:
    art = {"base_url": f"{base}/artistree", "token_url": f"{base}/artistree/oauth2/token",
           "client_id": "sim-client", "client_secret": "sim-secret", "requests_per_second": RATE,
           "max_concurrency": 8, "page_size": PAGE}
    return write_config(b.config.with_name("budget.toml"), redis_url=b.redis_url, base_url=art["base_url"],
                        token_url=art["token_url"], receiver_url=b.receiver.url, concurrency=8,
                        providers={"rev": {"base_url": f"{base}/rev", "client_key": "sim-client-key",
                                           "user_key": "sim-user-key", "requests_per_second": RATE,
                                           "max_concurrency": 8}},
                        artistree={"requests_per_second": RATE, "page_size": PAGE})


async def _baselined(b: Bench, art: ArtistreeSim, ids: list[str], base: str) -> float:
    """The records the preview scan's first sweep would leave of every order."""
    from providers.artistree import ArtistreeProvider, ArtistreeSettings

    provider = ArtistreeProvider(ArtistreeSettings(base_url=base, client_id="x", client_secret="x"), None)  # type: ignore[arg-type]
    rkeys = [ResourceRef("artistree", "order", i).key for i in ids]

    def record(i: int) -> Any:
        full = art.get(ids[i])
        preview = art._preview(art._orders[ids[i]])
        return preview_record(provider, ResourceRef("artistree", "order", ids[i]), full, preview)

    return await load_records(b.redis, rkeys, record, None, lambda i: 0.0)


def _first_seen(changes: dict[str, float], seen: dict[str, float]) -> Callable[[Received], None]:
    def on_receive(item: Received) -> None:
        oid = item.event["resource"]["id"]
        if oid in changes and oid not in seen and item.event["type"].endswith("state_changed"):
            seen[oid] = item.at

    return on_receive


async def _change_orders(art: ArtistreeSim, ids: list[str], changes: dict[str, float], *, until: float) -> None:
    """One order of the scan changes state every `CHANGE_EVERY` s (each at most once), from
    a second after the watches until `until`."""
    rng = random.Random(17)
    pool = rng.sample(ids, k=min(len(ids), math.ceil((until - time.time()) / CHANGE_EVERY) + 1))
    await asyncio.sleep(1.0)
    for oid in pool:
        if time.time() >= until:
            return
        art.set_state(oid, "Action Required")
        changes[oid] = time.time()
        await asyncio.sleep(CHANGE_EVERY)


async def _all_seen(changes: dict[str, float], seen: dict[str, float]) -> bool:
    return len(seen) >= len(changes)


def _sweeps(log: list[tuple[float, str]], pages: int) -> tuple[list[float], list[int]]:
    """Each full sweep's span (its first page to its last, plus one slot) and the detail
    fetches made within it."""
    spans, fetches = [], []
    times: list[float] = []
    details = 0
    for at, path in log:
        if path.startswith("/artistree/v1/orders?"):
            if "page_token" not in path:
                times, details = [], 0
            times.append(at)
            if len(times) == pages:
                spans.append(times[-1] - times[0] + 1 / RATE)
                fetches.append(details)
        elif times:
            details += 1
    return spans, fetches


def _rev_gaps(log: list[tuple[float, str]]) -> list[float]:
    """Seconds between two polls of the same Rev order, over the run."""
    last: dict[str, float] = {}
    gaps = []
    for at, path in log:
        if path.startswith("/rev/api/v1/orders/"):
            if path in last:
                gaps.append(at - last[path])
            last[path] = at
    return gaps


def _figures(sim: LimitedSimulator, artistree: int, rev: int, changes: dict[str, float], seen: dict[str, float],
             loaded_s: float) -> dict[str, Any]:
    pages = math.ceil(artistree / PAGE)
    spans, fetches = _sweeps(sim.log["artistree"], pages)
    sweep = statistics.median(spans) if spans else float("nan")
    ideal = pages / RATE
    lat = [seen[o] - changes[o] for o in changes if o in seen]
    gaps = _rev_gaps(sim.log["rev"])
    rev_ideal = rev / RATE
    return {
        "rate": RATE, "artistree_orders": artistree, "pages": pages, "load_s": loaded_s,
        "sweeps": len(spans), "sweep_s": spans, "detail_fetches": fetches,
        "sweep_median_s": sweep, "sweep_ideal_s": ideal, "sweep_ratio": sweep / ideal,
        "changes": len(changes), "delivered": len(lat), "change_p50_s": percentile(lat, 50),
        "change_p99_s": percentile(lat, 99), "change_p99_over_sweep_s": percentile(lat, 99) - sweep,
        "change_p99_over_ideal_sweep_s": percentile(lat, 99) - ideal,
        "rev_orders": rev, "rev_polls": len(gaps) + len({p for _, p in sim.log["rev"]}),
        "rev_ideal_s": rev_ideal, "rev_staleness_p50_s": percentile(gaps, 50),
        "rev_staleness_p99_s": percentile(gaps, 99), "rev_staleness_ratio": percentile(gaps, 99) / rev_ideal,
        "rate_limited": dict(sim.limited), "rate_limited_total": sum(sim.limited.values()),
        "requests": {p: len(v) for p, v in sim.log.items()},
    }
