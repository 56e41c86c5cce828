"""Watched orders written straight into Redis in the stored formats, for the scenarios that
need more of them than a worker baselines in the time a benchmark has (a million at ~4,000
polls a second would take four minutes, and a preview scan's baseline fetches every order
one by one under its provider's rate limit).

The records are the real ones: a watch's meta (`store.records.encode_meta`), the state
record that the poll decision makes of a first sight (`core.decide.decide`, encoded by
`encode_state`), the snapshot packed by the store's codec, and a due time, each under
its order's own rkey. They are written with a few multi-field commands per thousand orders
(HSET of 1,000 fields, MSET of 1,000 snapshots, ZADD of 1,000 members), pipelined. A caller
with more orders than it rendered gives several rkeys one rendered order's records (the
growth scenario: 1,000 rendered, a million watched).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from core.decide import Batch, Changed, Watch, decide, observe
from core.fingerprint import body_fingerprint, canonical, digest
from core.state import ResourceState
from model.resources import ResourceRef
from store import keys
from store.history import pack_snapshot
from store.records import WatchMeta, encode_meta, encode_state

__all__ = ["Record", "artistree_record", "baseline_state", "load_records", "preview_record"]

CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Record:
    """What Redis holds of one watched resource after its baseline (no event yet)."""

    state: str
    snapshot: bytes


def baseline_state(provider: Any, ref: ResourceRef, snapshot: Any, preview: str, *, scheduled: bool,
                   now: float | None = None) -> ResourceState:
    """The state record the poll decision makes on the first sight of `ref` (core/decide.py,
    so that it is the one a worker's baseline poll writes, whatever fields the record has)."""
    decision = decide(None, observe(ref, snapshot, preview), Watch(3600.0, scheduled=scheduled),
                      Batch(provider, time.time() if now is None else now, "bench"))
    assert isinstance(decision, Changed) and not decision.events
    return decision.record


def artistree_record(provider: Any, ref: ResourceRef, body: bytes) -> Record:
    """The records a poll of `ref` by id leaves after its baseline: the body's fingerprint
    (volatile values blanked) as the state's preview, and the terminal flag."""
    snap = provider.normalize(ref, provider.parse(body))
    fp = body_fingerprint(body, provider.fingerprint_blanks or ())
    state = baseline_state(provider, ref, snap, fp, scheduled=True)
    return Record(encode_state(state), pack_snapshot(canonical(snap)))


def preview_record(provider: Any, ref: ResourceRef, full: Any, preview: Any) -> Record:
    """The records a preview scan leaves after fetching the order whose summary was new: the
    summary's digest as the preview, the full order as the snapshot."""
    snap = provider.normalize(ref, full)
    fp = digest(canonical(provider.normalize_preview(ref, preview)))
    state = baseline_state(provider, ref, snap, fp, scheduled=False)
    return Record(encode_state(state), pack_snapshot(canonical(snap)))


async def load_records(
    redis: aioredis.Redis,
    rkeys: Sequence[str],
    record: Callable[[int], Record],
    meta: WatchMeta | None,
    due: Callable[[int], float],
) -> float:
    """Writes the i-th rkey's `record(i)`, `meta` (None: no watch of its own, as the orders
    of a scan) and due time `due(i)` (only with a meta); returns the seconds it took."""
    t0 = time.perf_counter()
    packed_meta = encode_meta(meta) if meta is not None else None
    for start in range(0, len(rkeys), 20 * CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(len(rkeys), start + 20 * CHUNK), CHUNK):
                chunk = range(i, min(len(rkeys), i + CHUNK))
                recs = [record(j) for j in chunk]
                pipe.hset(keys.STATE, mapping={rkeys[j]: r.state for j, r in zip(chunk, recs, strict=True)})
                pipe.mset({keys.snapshot(rkeys[j]): r.snapshot for j, r in zip(chunk, recs, strict=True)})
                if packed_meta is not None:
                    pipe.hset(keys.META, mapping=dict.fromkeys((rkeys[j] for j in chunk), packed_meta))
                    pipe.zadd(keys.DUE, {rkeys[j]: due(j) for j in chunk})
            await pipe.execute()
    return time.perf_counter() - t0
