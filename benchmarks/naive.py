"""The reference design statehook avoids: httpx as the client, one ARQ job per resource,
one Redis round trip per key. Same server, same concurrency, same work per poll (fetch,
normalize, digest, compare, store, reschedule); measured on a subset because it is slow."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx
from arq.connections import ArqRedis, create_pool
from arq.worker import Worker, func

from core.fingerprint import canonical, digest
from model.resources import ResourceRef
from providers.artistree import ArtistreeProvider, ArtistreeSettings
from store import keys
from store.snapshots import pack_snapshot
from worker.settings import redis_settings

__all__ = ["arq_jobs_per_s", "naive_polls_per_s"]

QUEUE = "bench:naive"


async def naive_poll(ctx: dict[str, Any], rkey: str) -> None:
    r: ArqRedis = ctx["redis"]
    ref = ResourceRef.parse(rkey)
    interval = 3600.0 if await r.hget(keys.META, rkey) else None  # type: ignore[misc]
    stored = await r.hget(keys.STATE, rkey)  # type: ignore[misc]
    resp = await ctx["http"].get(f"{ctx['base_url']}/v1/orders/{ref.id}", headers=ctx["headers"])
    resp.raise_for_status()
    body = canonical(ctx["provider"].normalize(ref, resp.json()))
    d = digest(body).encode()
    if stored != d:
        await r.set(keys.snapshot(rkey), pack_snapshot(body))
        await r.hset(keys.STATE, rkey, d)  # type: ignore[misc,arg-type]
    if interval is not None:
        await r.zadd(keys.DUE, {rkey: time.time() + interval}, xx=True)


async def _run_burst(redis_url: str, base_url: str, rkeys: Sequence[str], concurrency: int) -> float:
    pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE)
    for rkey in rkeys:
        await pool.enqueue_job("naive_poll", rkey)
    settings = ArtistreeSettings(base_url=base_url, client_id="x", client_secret="x")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:
        worker = Worker(
            functions=[func(naive_poll, name="naive_poll", max_tries=1)],
            redis_pool=pool,
            queue_name=QUEUE,
            burst=True,
            max_jobs=concurrency,
            poll_delay=0.01,
            keep_result=0,
            handle_signals=False,
            ctx={"http": http, "base_url": base_url, "headers": {"Authorization": "Bearer bench-token"},
                 "provider": ArtistreeProvider(settings, None)},  # type: ignore[arg-type]
        )
        started = time.perf_counter()
        await worker.main()
        elapsed = time.perf_counter() - started
        failed = worker.jobs_failed
        await worker.close()
    await pool.aclose()
    if failed:
        raise RuntimeError(f"naive reference: {failed} jobs failed")
    return len(rkeys) / elapsed


async def naive_polls_per_s(redis_url: str, base_url: str, rkeys: Sequence[str], concurrency: int) -> float:
    """A baseline pass first (as statehook's measured pass, the measured one is unchanged)."""
    await _run_burst(redis_url, base_url, rkeys, concurrency)
    return await _run_burst(redis_url, base_url, rkeys, concurrency)


async def _trivial(ctx: dict[str, Any]) -> None:
    return None


async def arq_jobs_per_s(redis_url: str, n: int, *, max_jobs: int = 32, poll_delay: float = 0.05) -> float:
    """ARQ's own ceiling on this machine: `n` trivial jobs run by one in-process worker with
    statehook's worker settings (max_jobs, poll_delay). A delivery is one such job."""
    pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE + ":trivial")
    for _ in range(n):
        await pool.enqueue_job("trivial")
    worker = Worker(
        functions=[func(_trivial, name="trivial", max_tries=1)],
        redis_pool=pool, queue_name=QUEUE + ":trivial", burst=True, max_jobs=max_jobs,
        poll_delay=poll_delay, handle_signals=False,
    )
    started = time.perf_counter()
    await worker.main()
    elapsed = time.perf_counter() - started
    await worker.close()
    await pool.aclose()
    return n / elapsed
