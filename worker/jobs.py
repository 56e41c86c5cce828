"""ARQ job functions. Thin: each wires the runtime's I/O to the orchestration (tasks/) and
nothing else; worker/settings.py registers them under worker/queue.py's names."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from store.circuit import Circuits
from store.deliveries import Deliveries
from store.operational import OperationalEvents
from store.snapshots import lease_until
from store.watchdog import LateWatches
from tasks.batch_delivery import BatchResult, deliver_batch
from tasks.circuit import CircuitDeps, Gate
from tasks.deliver import DeliveryResult, deliver_once
from tasks.watchdog import OverdueCheck
from worker.outage import is_redis_down
from worker.queue import DELIVER_EXPIRES, ArqQueue, PollJob, enqueue_polls
from worker.runtime import Runtime

__all__ = [
    "BATCH_DEADLINE", "DELIVERY_DEDUP_WINDOW", "SCHEDULE_TICK", "JobContext", "circuit_deps", "deliver",
    "deliver_events", "plan_polls", "poll_batch", "poll_scan", "schedule_due",
]

log = logging.getLogger("statehook.jobs")

SCHEDULE_TICK = 1.0
"""The scheduler's period (`schedule_due` runs every second)."""
BATCH_DEADLINE = 120.0
"""What a delivery batch may take; what it has not attempted by then gets jobs of its own."""
DELIVERY_DEDUP_WINDOW = 600
"""How long a delivered event stays known, as a delivery mark saying "done" and as a
finished `deliver` job id in ARQ: longer than any re-dispatch (an outbox entry is
reclaimed after `reclaim_idle`), short enough not to fill Redis."""
EXPIRY_MARGIN = 3600.0
"""A retry job's last try comes at least this long before ARQ's expiry of its job key."""


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job reads of the `ctx` ARQ passes it (a dict, as ARQ's signatures want): the
    runtime that worker/settings.py's start-up put there, ARQ's pool, the job's id and try."""

    rt: Runtime
    redis: ArqRedis
    job_id: str
    job_try: int

    @classmethod
    def of(cls, ctx: Mapping[str, Any]) -> JobContext:
        return cls(ctx["rt"], ctx["redis"], ctx["job_id"], ctx["job_try"])


def circuit_deps(rt: Runtime, redis: ArqRedis) -> CircuitDeps:
    """What the destinations' circuits use (tasks/circuit.py): the store, and this queue."""
    operational = OperationalEvents(rt.redis, history_length=rt.config.settings.worker.history_length)
    return CircuitDeps(Circuits(rt.redis), Deliveries(rt.redis, operational), operational, ArqQueue(redis))


async def schedule_due(ctx: dict[str, Any]) -> int:
    """Claim what is due (leasing it so that no other claim takes it) and enqueue poll jobs
    in batches of one provider. Runs as a unique cron: one winner across all workers, which
    also checks every second that Redis still holds the dataset (`Runtime.check_dataset`).
    While Redis is down a tick does nothing: the next one, a second later, tries again."""
    job = JobContext.of(ctx)
    rt = job.rt
    try:
        if not await rt.check_dataset():
            return 0
        return await _schedule(job.redis, rt)
    except Exception as exc:
        if not rt.outage_of(exc, "scheduler"):
            raise
        return 0


async def _schedule(redis: ArqRedis, rt: Runtime) -> int:
    tuning = rt.config.settings.worker
    now = time.time()
    await rt.claims.release(now)
    # claim up to the next tick too, and defer each batch to its first due time: a resource is
    # polled when it is due, not up to one tick later (the tick added to the change latency)
    until = now + SCHEDULE_TICK
    with rt.claims.claiming(lease_until(until, tuning.poll_lease)):
        claimed = await rt.store.claim_due_times(until, tuning.poll_lease, tuning.schedule_max_per_tick)
        # one round trip for the tick's jobs: one by one, they reached the queue over ~2 s
        await enqueue_polls(redis, plan_polls(claimed, now, tuning.poll_batch_size), now)
    await _check_overdue(rt, now)
    return len(claimed)


async def _check_overdue(rt: Runtime, now: float) -> None:
    """Watches claimed and not polled for too long (tasks/watchdog.py), once a tick across workers."""
    events = OperationalEvents(rt.redis, history_length=rt.config.settings.worker.history_length)
    try:
        await OverdueCheck(LateWatches(rt.redis), events, rt.config.settings.watchdog).run(now)
    except Exception as exc:
        if is_redis_down(exc):
            raise
        log.exception("the overdue check failed")


def plan_polls(claimed: Sequence[tuple[str, float]], now: float, size: int) -> list[PollJob]:
    """Claimed (rkey, due time) → poll jobs: batches of up to `size` resources of one provider
    (in claim order), one job per scan; each not before its first due time. Pure."""
    by_provider: dict[str, list[tuple[str, float]]] = defaultdict(list)
    scans: list[tuple[str, float]] = []
    for rkey, due in claimed:  # split, not parsed: a member that names no resource is the poll's to count
        provider, _, rest = rkey.partition(":")
        (scans if rest.partition(":")[0] == "scan" else by_provider[provider]).append((rkey, due))
    jobs = [
        PollJob(provider, tuple(rkey for rkey, _ in items[i : i + size]), _not_before(items[i][1], now))
        for provider, items in by_provider.items()
        for i in range(0, len(items), size)
    ]
    jobs += [PollJob(rkey.partition(":")[0], (rkey,), _not_before(due, now), scan=True) for rkey, due in scans]
    return jobs


def _not_before(due: float, now: float) -> float | None:
    return due if due > now else None


async def poll_batch(ctx: dict[str, Any], rkeys: list[str]) -> dict[str, int]:
    """One batch of one provider's resources. A poll is idempotent (its commit is guarded by
    the state it read), so one that Redis failed runs again once Redis answers."""
    rt = JobContext.of(ctx).rt
    outcomes = await rt.outage.through(lambda: rt.poll(rkeys), "poll")
    return {k.value: v for k, v in outcomes.items()}


async def poll_scan(ctx: dict[str, Any], rkey: str) -> dict[str, int]:
    rt = JobContext.of(ctx).rt
    outcomes = await rt.outage.through(lambda: rt.poll([rkey]), "scan")
    return {k.value: v for k, v in outcomes.items()}


async def deliver(ctx: dict[str, Any], event_json: bytes, destination: str, attempts_before: int = 0) -> str:
    """One event to one destination, retried by ARQ on the destination's schedule.
    `attempts_before`: attempts a delivery batch already made."""
    job = JobContext.of(ctx)
    rt = job.rt
    attempt = attempts_before + job.job_try
    deps, notifier = circuit_deps(rt, job.redis), rt.notifiers.get(destination)
    retry_until = ctx["enqueue_time"].timestamp() + DELIVER_EXPIRES - EXPIRY_MARGIN  # ARQ drops the job then

    async def once() -> DeliveryResult:
        gate = await Gate.load(deps, destination, notifier)
        return await deliver_once(deps.deliveries, notifier, destination, event_json, attempt, gate,
                                  retry_until=retry_until)

    try:
        # an attempt that Redis failed is made again once Redis answers (a repeat carries the same id)
        result = await rt.outage.through(once, "delivery")
    except (OSError, RedisError) as exc:  # a refusal that is not an outage (OOM): this try again
        log.warning("delivery to %s: %s; running it again in 5s", destination, type(exc).__name__)
        raise Retry(defer=5) from exc
    if result.retry_in is not None:
        raise Retry(defer=result.retry_in)
    return "held" if result.held else ("delivered" if result.delivered else "dead-lettered")


async def deliver_events(ctx: dict[str, Any], events: list[bytes], destination: str) -> dict[str, int]:
    """First attempts of one outbox read's events to one destination (tasks/batch_delivery.py).
    A failure of Redis itself re-runs the batch: the delivery marks keep it from sending twice."""
    job = JobContext.of(ctx)
    rt = job.rt
    deps, queue, notifier = circuit_deps(rt, job.redis), ArqQueue(job.redis), rt.notifiers.get(destination)

    async def batch() -> BatchResult:
        return await deliver_batch(
            deps.deliveries, notifier, destination, events, queue, owner=job.job_id,
            concurrency=rt.config.settings.worker.delivery_concurrency, deadline_s=BATCH_DEADLINE,
            keep_mark_s=DELIVERY_DEDUP_WINDOW, gate=await Gate.load(deps, destination, notifier),
        )

    try:
        # the marks it took are its own (owner = this job's id): a run again sends what it had not
        result = await rt.outage.through(batch, "delivery batch")
    except (OSError, RedisError) as exc:
        log.warning("delivery batch to %s: %s; running it again in 5s", destination, type(exc).__name__)
        raise Retry(defer=5) from exc
    return {"delivered": result.delivered, "dead_lettered": result.dead_lettered,
            "handed_over": result.handed_over, "skipped": result.skipped, "held": result.held}

