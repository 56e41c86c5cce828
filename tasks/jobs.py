"""ARQ job functions. Thin: each wires the runtime's I/O to the core and nothing else."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from arq import Retry

from tasks.deliver import deliver_once
from tasks.model import ResourceRef

__all__ = ["deliver", "poll_batch", "poll_scan", "schedule_due"]

log = logging.getLogger("statehook.jobs")

SCHEDULE_TICK = 1.0
"""The scheduler's period (`schedule_due` runs every second)."""


def _batch_job_id(kind: str, provider: str, rkeys: list[str], claimed_at: float) -> str:
    """Deterministic for one claim of one batch: a re-run of the same scheduler tick cannot
    enqueue it twice, while the next claim of the same resources gets a new id."""
    h = hashlib.blake2b("\n".join(rkeys).encode(), digest_size=10).hexdigest()
    return f"{kind}:{provider}:{h}:{claimed_at:.3f}"


async def schedule_due(ctx: dict[str, Any]) -> int:
    """Claim what is due (leasing it so that no other claim takes it) and enqueue poll jobs
    in batches of one provider. Runs as a unique cron: one winner across all workers."""
    rt = ctx["rt"]
    tuning = rt.config.settings.worker
    now = time.time()
    # claim up to the next tick too, and defer each batch to its first due time: a resource is
    # polled when it is due, not up to one tick later (the tick added to the change latency)
    claimed = await rt.store.claim_due_times(now + SCHEDULE_TICK, tuning.poll_lease, tuning.schedule_max_per_tick)
    by_provider: dict[str, list[tuple[str, float]]] = defaultdict(list)
    scans: list[tuple[str, float]] = []
    for rkey, due in claimed:
        ref = ResourceRef.parse(rkey)
        (scans if ref.kind == "scan" else by_provider[ref.provider]).append((rkey, due))
    size = tuning.poll_batch_size
    for provider, items in by_provider.items():
        for i in range(0, len(items), size):
            chunk = [rkey for rkey, _ in items[i : i + size]]
            await ctx["redis"].enqueue_job(
                "poll_batch", chunk, _job_id=_batch_job_id("poll", provider, chunk, now),
                _defer_until=_not_before(items[i][1], now),
            )
    for rkey, due in scans:
        await ctx["redis"].enqueue_job(
            "poll_scan", rkey, _job_id=_batch_job_id("scan", rkey, [rkey], now), _defer_until=_not_before(due, now)
        )
    return len(claimed)


def _not_before(due: float, now: float) -> datetime | None:
    return datetime.fromtimestamp(due, UTC) if due > now else None


async def poll_batch(ctx: dict[str, Any], rkeys: list[str]) -> dict[str, int]:
    outcomes = await ctx["rt"].poll(rkeys)
    return {k.value: v for k, v in outcomes.items()}


async def poll_scan(ctx: dict[str, Any], rkey: str) -> dict[str, int]:
    outcomes = await ctx["rt"].poll([rkey])
    return {k.value: v for k, v in outcomes.items()}


async def deliver(ctx: dict[str, Any], event_json: bytes, destination: str) -> str:
    rt = ctx["rt"]
    result = await deliver_once(rt.redis, rt.notifiers.get(destination), destination, event_json, ctx["job_try"])
    if result.retry_in is not None:
        raise Retry(defer=result.retry_in)
    return "delivered" if result.delivered else "dead-lettered"
