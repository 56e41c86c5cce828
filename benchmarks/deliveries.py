"""Scenario 3: signed webhook deliveries, statehook against a bare sign + POST loop."""

from __future__ import annotations

import statistics
import time
from typing import Any

import orjson

from benchmarks.scenarios import Bench, count_delivered
from benchmarks.stack import wait_until, workers
from core.events import build_events
from model.events import EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef
from providers.artistree import ArtistreeProvider, ArtistreeSettings
from store import keys

__all__ = ["DELIVERY_CONCURRENCY", "deliveries"]


def _events(b: Bench, n: int) -> list[bytes]:
    settings = ArtistreeSettings(base_url=b.base_url, client_id="x", client_secret="x")
    provider = ArtistreeProvider(settings, None)  # type: ignore[arg-type]
    out = []
    now = time.time()
    for oid in b.orders.ids[:n]:
        ref = ResourceRef("artistree", "order", oid)
        snap = provider.normalize(ref, orjson.loads((b.orders.data / "orders" / oid).read_bytes()))
        info: ResourceInfo = provider.describe(ref, snap)
        draft = EventDraft("artistree.order.state_changed", Severity.CRITICAL, f"Order {oid}: In Progress → Failed",
                           {"from": "In Progress", "to": "Failed", "terminal": True})
        (event,) = build_events(ref, info, [draft], base_seq=1, now=now, snapshot=snap)
        out.append(event.to_json())
    return out


DELIVERY_CONCURRENCY = 32
"""statehook's `worker.delivery_concurrency` (its default), which the bare loop uses too."""


DELIVERY_PASSES = 3
"""statehook's delivery passes, each between two bare loops: the ratio is the median of the
three pairs (one pair followed the machine: bare loops of one run differed by a third)."""


async def deliveries(b: Bench, n: int) -> dict[str, Any]:
    """Scenario 3: `n` events appear in the outbox at once; one worker dispatches and
    delivers them to the signature-verifying receiver. Before and after each of its
    `DELIVERY_PASSES` passes, a bare loop signs and POSTs the same bodies to the same
    receiver (`benchmarks/bare_post.py`): each pass's ratio is statehook's rate over the mean
    of the two loops beside it, and the verdict the median of the passes' ratios."""
    from benchmarks.bare_post import bare_posts_per_s
    from benchmarks.stack import WHSEC

    await b.reset()
    events = _events(b, n)
    bare = [await bare_posts_per_s(events, b.receiver.url, WHSEC, DELIVERY_CONCURRENCY)]
    passes = []
    for _ in range(DELIVERY_PASSES):
        await b.reset()  # the delivery marks of the pass before would hold the same events back
        passes.append(await _delivered(b, events))
        b.receiver.received.clear()
        bare.append(await bare_posts_per_s(events, b.receiver.url, WHSEC, DELIVERY_CONCURRENCY))
        b.receiver.received.clear()
    ratios = [p["deliveries_per_s"] / statistics.mean(bare[i : i + 2]) for i, p in enumerate(passes)]
    d = sorted(passes, key=lambda p: p["deliveries_per_s"])[len(passes) // 2]  # the median pass's figures
    d.update({
        "bare_posts_per_s": bare,
        "passes_per_s": [p["deliveries_per_s"] for p in passes],
        "ratios": ratios,
        "deliveries_ratio": statistics.median(ratios),
        "lost": sum(p["lost"] for p in passes),
        "duplicates": sum(p["duplicates"] for p in passes),
        "dead_lettered": sum(p["dead_lettered"] for p in passes),
        "verified": all(p["verified"] for p in passes),
    })
    return d


async def _delivered(b: Bench, events: list[bytes]) -> dict[str, Any]:
    n = len(events)
    async with workers(b.config, 1, b.log, b.redis):
        started = time.perf_counter()
        async with b.redis.pipeline(transaction=False) as pipe:
            for raw in events:
                pipe.xadd(keys.OUTBOX, {"e": raw})
            await pipe.execute()
        done_at = await wait_until(lambda: count_delivered(b.receiver, n), 120, f"{n} deliveries")
        first = min(r.at for r in b.receiver.delivered)
        last = max(r.at for r in b.receiver.delivered)
        dead = int(await b.redis.xlen(keys.DLQ))
    counts = b.receiver.unique_ids()
    return {
        "events": n,
        "deliveries_per_s": n / (done_at - started),
        "steady_per_s": (n - 1) / (last - first) if last > first else 0.0,
        "delivered_unique": len(counts),
        "lost": n - len(counts),
        "duplicates": sum(v - 1 for v in counts.values()),
        "dead_lettered": dead,
        "verified": all(r.verified for r in b.receiver.delivered),
    }
