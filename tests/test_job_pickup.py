"""Job pickup: a worker does not try to claim jobs that it or another worker is running."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Worker, func

from worker.queue import not_running, skip_running_jobs

ran: list[str] = []


async def noop(ctx: dict[str, Any]) -> None:
    ran.append(ctx["job_id"])


def make(arq: ArqRedis) -> Worker:
    return Worker(functions=[func(noop, name="noop")], redis_pool=arq, handle_signals=False, burst=True)


async def test_jobs_running_here_or_elsewhere_are_left_out(arq: ArqRedis) -> None:
    for job_id in ("free", "elsewhere", "here", "finished-here"):
        await arq.enqueue_job("noop", _job_id=job_id)
    await arq.set(in_progress_key_prefix + "elsewhere", b"1")
    worker = make(arq)
    blocker = asyncio.get_running_loop().create_future()
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    worker.tasks["here"] = blocker  # type: ignore[assignment]
    worker.tasks["finished-here"] = done  # type: ignore[assignment]

    ids = await not_running(worker, [b"free", b"elsewhere", b"here", b"finished-here"])

    assert ids == [b"free", b"finished-here"]
    blocker.cancel()


async def test_the_wrapped_pickup_claims_only_the_free_job_with_one_watch(arq: ArqRedis) -> None:
    ran.clear()
    for job_id in ("free", "elsewhere"):
        await arq.enqueue_job("noop", _job_id=job_id)
    await arq.set(in_progress_key_prefix + "elsewhere", b"1")
    worker = skip_running_jobs(make(arq))
    await arq.config_resetstat()

    await worker.start_jobs([b"free", b"elsewhere"])
    await asyncio.gather(*worker.tasks.values())

    assert ran == ["free"]
    stats = await arq.info("commandstats")
    assert stats["cmdstat_watch"]["calls"] == 1  # ARQ's own claim, for "free" only
