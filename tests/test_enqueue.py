"""Many ARQ jobs in one script: what ARQ's own enqueue_job would have written, and its refusals."""

from __future__ import annotations

import time
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker, func

from worker.queue import JobSpec, enqueue_jobs

calls: list[tuple[Any, ...]] = []


async def record(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    calls.append((ctx["job_id"], args, kwargs))


async def run_burst(arq: ArqRedis) -> None:
    worker = Worker(functions=[func(record, name="record")], redis_pool=arq, handle_signals=False, burst=True,
                    poll_delay=0.01)
    await worker.main()


async def test_the_jobs_run_as_arq_enqueued_them(arq: ArqRedis) -> None:
    calls.clear()
    added = await enqueue_jobs(arq, [
        JobSpec("record", "a", (["k1", "k2"],)),
        JobSpec("record", "b", ("x",), kwargs={"n": 2}),
    ])

    await run_burst(arq)

    assert added == 2
    assert sorted(calls) == [("a", (["k1", "k2"],), {}), ("b", ("x",), {"n": 2})]


async def test_an_id_with_a_job_or_a_result_is_refused(arq: ArqRedis) -> None:
    calls.clear()
    await arq.enqueue_job("record", "queued", _job_id="dup")
    assert await enqueue_jobs(arq, [JobSpec("record", "dup", ("again",)), JobSpec("record", "new")]) == 1
    await run_burst(arq)  # "dup" runs once and leaves its result
    assert await enqueue_jobs(arq, [JobSpec("record", "dup", ("third",))]) == 0

    assert sorted(calls) == [("dup", ("queued",), {}), ("new", (), {})]


async def test_a_job_waits_for_its_time(arq: ArqRedis) -> None:
    later = time.time() + 30
    await enqueue_jobs(arq, [JobSpec("record", "later", not_before=later), JobSpec("record", "now")])

    scores = dict(await arq.zrange("arq:queue", 0, -1, withscores=True))

    assert scores[b"later"] == pytest.approx(later * 1000, abs=1)
    assert scores[b"now"] <= time.time() * 1000
    assert 30_000 < await arq.pttl("arq:job:later") <= 30_000 + arq.expires_extra_ms
