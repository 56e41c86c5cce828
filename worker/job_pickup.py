"""ARQ's job pickup without the tries that cannot succeed.

Every poll iteration (`poll_delay`, 50 ms here) a worker with a free job slot reads the
first due job ids of the queue and tries each in turn: WATCH, EXISTS and ZSCORE of its
in-progress key, then MULTI/EXEC, four round trips that each wait behind the event loop's
other work. A running job stays in the queue until it ends, so the jobs that are running
(in this worker or another) are tried again at every iteration and refused. With two
workers polling 20,000 orders in batches of 200, Redis's commandstats counted ~515 WATCH
per pass for 100 enqueued and 100 started jobs: ~300 wasted tries, ~1,200 round trips.

`skip_running_jobs` puts a filter in front of the worker's own `start_jobs`: the ids of its
own running jobs are dropped at once, the rest are checked with one pipelined EXISTS, and
only the jobs that nobody runs go on to ARQ's own (unchanged, race-safe) claim. A job
that starts elsewhere between the check and the claim is still refused by ARQ's WATCH.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable

from arq.constants import in_progress_key_prefix
from arq.worker import Worker

__all__ = ["not_running", "skip_running_jobs"]


async def not_running(worker: Worker, job_ids: list[bytes]) -> list[bytes]:
    """`job_ids` less the jobs this worker runs and those with an in-progress key."""
    ids = [j for j in job_ids if not _running_here(worker, j.decode())]
    if not ids:
        return ids
    async with worker.pool.pipeline(transaction=False) as pipe:
        for j in ids:
            pipe.exists(in_progress_key_prefix + j.decode())
        running = await pipe.execute()
    return [j for j, busy in zip(ids, running, strict=True) if not busy]


def _running_here(worker: Worker, job_id: str) -> bool:
    task = worker.tasks.get(job_id)
    return task is not None and not task.done()


def skip_running_jobs(worker: Worker) -> Worker:
    """Wraps this worker's `start_jobs` (an instance attribute: the worker stays the one
    `arq.worker.create_worker` made, which Sentry's integration may have wrapped)."""
    start: Callable[[list[bytes]], Awaitable[None]] = worker.start_jobs

    async def start_jobs(self: Worker, job_ids: list[bytes]) -> None:
        ids = await not_running(self, job_ids)
        if ids:
            await start(ids)

    worker.start_jobs = types.MethodType(start_jobs, worker)  # type: ignore[method-assign]
    return worker
