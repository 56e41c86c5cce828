"""The destinations' circuit jobs (tasks/circuit.py, tasks/circuit_flush.py): a probe of an
open circuit, the flush of one that answers again, and `watch_circuits`, an ARQ cron every
second with `unique=True` that starts a probe or a flush nobody started (worker/settings.py
registers them). Thin: the work is in tasks/."""

from __future__ import annotations

from typing import Any

from tasks.circuit import probe, watch
from tasks.circuit_flush import flush
from worker.jobs import JobContext, circuit_deps

__all__ = ["FLUSH_DEADLINE", "flush_destination", "probe_destination", "watch_circuits"]

FLUSH_DEADLINE = 120.0
"""What one flush job may take; what is left then goes on in another flush job."""


async def probe_destination(ctx: dict[str, Any], destination: str) -> str:
    """One probe; one that Redis failed is made again once Redis answers (its lease keeps
    two from going at once)."""
    job = JobContext.of(ctx)
    rt = job.rt
    deps = circuit_deps(rt, job.redis)
    return await rt.outage.through(lambda: probe(deps, rt.notifiers.get(destination), destination), "circuit probe")


async def flush_destination(ctx: dict[str, Any], destination: str) -> dict[str, Any]:
    job = JobContext.of(ctx)
    rt = job.rt
    deps = circuit_deps(rt, job.redis)
    result = await rt.outage.through(
        lambda: flush(deps, rt.notifiers.get(destination), destination,
                      concurrency=rt.config.settings.worker.delivery_concurrency, deadline_s=FLUSH_DEADLINE),
        "circuit flush")
    return {"sent": result.sent, "closed": result.closed, "reopened": result.reopened, "busy": result.busy}


async def watch_circuits(ctx: dict[str, Any]) -> int:
    """While Redis is down a tick does nothing: the next one, a second later, looks again."""
    job = JobContext.of(ctx)
    try:
        return await watch(circuit_deps(job.rt, job.redis))
    except Exception as exc:
        if not job.rt.outage_of(exc, "circuit watch"):
            raise
        return 0
