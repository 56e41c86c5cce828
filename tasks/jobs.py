"""ARQ job functions. Thin: each wires the runtime's I/O to the core and nothing else."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from typing import Any

from arq import Retry
from redis.exceptions import RedisError

from model.events import Event
from model.resources import ResourceRef
from tasks.batch_delivery import deliver_batch
from tasks.deliver import deliver_once
from tasks.dispatch import DELIVER_EXPIRES, delivery_job_id
from tasks.enqueue import JobSpec, enqueue_jobs

__all__ = [
    "BATCH_DEADLINE", "DELIVERY_DEDUP_WINDOW", "deliver", "deliver_events", "poll_batch", "poll_scan", "schedule_due",
]

log = logging.getLogger("statehook.jobs")

SCHEDULE_TICK = 1.0
"""The scheduler's period (`schedule_due` runs every second)."""
ENQUEUE_CHUNK = 500
"""Jobs per enqueue script: a tick of 20,000 claims in batches of 200 is one script."""
BATCH_DEADLINE = 120.0
"""What a delivery batch may take; what it has not attempted by then gets jobs of its own."""
DELIVERY_DEDUP_WINDOW = 600
"""How long a delivered event stays known, as a delivery mark saying "done" and as a
finished `deliver` job id in ARQ: longer than any re-dispatch (an outbox entry is
reclaimed after `reclaim_idle`), short enough not to fill Redis."""


def _batch_job_id(kind: str, provider: str, rkeys: list[str], claimed_at: float) -> str:
    """Deterministic for one claim of one batch: a re-run of the same scheduler tick cannot
    enqueue it twice, while the next claim of the same resources gets a new id."""
    h = hashlib.blake2b("\n".join(rkeys).encode(), digest_size=10).hexdigest()
    return f"{kind}:{provider}:{h}:{claimed_at:.3f}"


async def schedule_due(ctx: dict[str, Any]) -> int:
    """Claim what is due (leasing it so that no other claim takes it) and enqueue poll jobs
    in batches of one provider. Runs as a unique cron: one winner across all workers, which
    also checks every second that Redis still holds the dataset (`Runtime.check_dataset`).
    While Redis is down a tick does nothing: the next one, a second later, tries again."""
    rt = ctx["rt"]
    try:
        if not await rt.check_dataset():
            return 0
        return await _schedule(ctx, rt)
    except Exception as exc:
        if not rt.outage_of(exc, "scheduler"):
            raise
        return 0


async def _schedule(ctx: dict[str, Any], rt: Any) -> int:
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
    jobs: list[JobSpec] = []
    for provider, items in by_provider.items():
        for i in range(0, len(items), size):
            chunk = [rkey for rkey, _ in items[i : i + size]]
            jobs.append(JobSpec("poll_batch", _batch_job_id("poll", provider, chunk, now), (chunk,),
                                _not_before(items[i][1], now)))
    for rkey, due in scans:
        jobs.append(JobSpec("poll_scan", _batch_job_id("scan", rkey, [rkey], now), (rkey,), _not_before(due, now)))
    # one round trip for the tick's jobs: one by one, they reached the queue over ~2 s
    for i in range(0, len(jobs), ENQUEUE_CHUNK):
        await enqueue_jobs(ctx["redis"], jobs[i : i + ENQUEUE_CHUNK])
    return len(claimed)


def _not_before(due: float, now: float) -> float | None:
    return due if due > now else None


async def poll_batch(ctx: dict[str, Any], rkeys: list[str]) -> dict[str, int]:
    """One batch of one provider's resources. A poll is idempotent (its commit is guarded by
    the state it read), so one that Redis failed runs again once Redis answers."""
    rt = ctx["rt"]
    outcomes = await rt.outage.through(lambda: rt.poll(rkeys), "poll")
    return {k.value: v for k, v in outcomes.items()}


async def poll_scan(ctx: dict[str, Any], rkey: str) -> dict[str, int]:
    rt = ctx["rt"]
    outcomes = await rt.outage.through(lambda: rt.poll([rkey]), "scan")
    return {k.value: v for k, v in outcomes.items()}


async def deliver(ctx: dict[str, Any], event_json: bytes, destination: str, attempts_before: int = 0) -> str:
    """One event to one destination, retried by ARQ on the destination's schedule.
    `attempts_before`: attempts a delivery batch already made."""
    rt = ctx["rt"]
    attempt = attempts_before + ctx["job_try"]
    # an attempt that Redis failed is made again once Redis answers (a repeat carries the same id)
    result = await rt.outage.through(
        lambda: deliver_once(rt.redis, rt.notifiers.get(destination), destination, event_json, attempt), "delivery")
    if result.retry_in is not None:
        raise Retry(defer=result.retry_in)
    return "delivered" if result.delivered else "dead-lettered"


async def deliver_events(ctx: dict[str, Any], events: list[bytes], destination: str) -> dict[str, int]:
    """First attempts of one outbox read's events to one destination (tasks/batch_delivery.py).
    A failure of Redis itself re-runs the batch: the delivery marks keep it from sending twice."""
    rt = ctx["rt"]

    async def hand_over(event: Event, retry_in: float | None) -> None:
        await ctx["redis"].enqueue_job(
            "deliver", event.to_json(), destination, 0 if retry_in is None else 1,
            _job_id=delivery_job_id(event.id, destination), _expires=DELIVER_EXPIRES, _defer_by=retry_in,
        )

    def batch() -> Any:
        return deliver_batch(
            rt.redis, rt.notifiers.get(destination), destination, events, hand_over, owner=ctx["job_id"],
            concurrency=rt.config.settings.worker.delivery_concurrency, deadline_s=BATCH_DEADLINE,
            keep_mark_s=DELIVERY_DEDUP_WINDOW,
        )

    try:
        # the marks it took are its own (owner = this job's id): a run again sends what it had not
        result = await rt.outage.through(batch, "delivery batch")
    except (OSError, RedisError) as exc:
        log.warning("delivery batch to %s: %s; running it again in 5s", destination, type(exc).__name__)
        raise Retry(defer=5) from exc
    return {"delivered": result.delivered, "dead_lettered": result.dead_lettered,
            "handed_over": result.handed_over, "skipped": result.skipped}
