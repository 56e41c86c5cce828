"""A worker takes no more poll batches of a provider than it can work on (worker/queue.py
fair_share, poll_room), and the end of one of its batches starts its next pickup at once
(Pickup, worker/resilient.py): ARQ's pickup let the first worker to look take up to max_jobs
batches of a tick while the others waited (benchmarks/quota.py), and a capped worker that
waited for its next poll_delay lost a third of its polls."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from arq.connections import ArqRedis
from arq.worker import Worker, func

from config.settings import WorkerTuning
from worker.fair_pickup import Pickup, fair_share, poll_room
from worker.outage import Outage
from worker.queue import skip_running_jobs
from worker.resilient import keep_running
from worker.runtime import Runtime


def test_poll_room_is_the_share_over_the_batch_and_one_more() -> None:
    assert poll_room(16, 200) == 2
    assert poll_room(200, 200) == 2
    assert poll_room(201, 200) == 3
    assert poll_room(1024, 200) == 7
    assert poll_room(0, 200) == 2


def test_fair_share_caps_each_providers_batches_and_keeps_the_other_jobs() -> None:
    running = ["poll:rev:aaa:1.000", "deliver:evt_1:hook"]
    ids = [b"poll:rev:bbb:1.000", b"poll:rev:ccc:1.000", b"poll:artistree:ddd:1.000", b"deliver:evt_2:hook",
           b"scan:artistree:scan:eee:1.000"]
    assert fair_share(running, ids, lambda p: 2) == [b"poll:rev:bbb:1.000", b"poll:artistree:ddd:1.000",
                                                     b"deliver:evt_2:hook", b"scan:artistree:scan:eee:1.000"]
    # before the EXISTS check: only the providers already at their room lose their batches
    assert fair_share(running, ids, lambda p: 2, count_taken=False) == ids
    assert fair_share(running, ids, lambda p: 1, count_taken=False) == ids[2:]


class _Worker:
    """What the pickup filter reads of an ARQ worker: its tasks, its pool, its start_jobs."""

    def __init__(self, pool: ArqRedis, running: list[str]) -> None:
        self.pool = pool
        self.ctx: dict[str, Any] = {}
        self.started: list[bytes] = []
        loop = asyncio.get_running_loop()
        self.tasks = {job_id: loop.create_future() for job_id in running}

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        self.started += job_ids


async def test_the_pickup_leaves_batches_beyond_the_room_for_other_workers(arq: ArqRedis) -> None:
    worker: Any = _Worker(arq, ["poll:rev:aaa:1.000"])
    skip_running_jobs(worker, room=lambda w, provider: 2)
    await arq.set("arq:in-progress:poll:rev:bbb:1.000", b"1")  # another worker runs it
    await worker.start_jobs([b"poll:rev:aaa:1.000", b"poll:rev:bbb:1.000", b"poll:rev:ccc:1.000",
                             b"poll:rev:ddd:1.000", b"deliver:evt_1:hook"])
    assert worker.started == [b"poll:rev:ccc:1.000", b"deliver:evt_1:hook"]


BATCH_S = 0.03
ran: list[tuple[str, float]] = []


async def batch(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(BATCH_S)
    ran.append((ctx["job_id"], time.monotonic()))


def _capped_worker(arq: ArqRedis, *, wake: bool, poll_delay: float) -> Worker:
    pickup = Pickup() if wake else None
    worker = Worker(functions=[func(batch, name="batch")], redis_pool=arq, handle_signals=False, burst=True,
                    poll_delay=poll_delay)
    skip_running_jobs(worker, room=lambda w, provider: 1, pickup=pickup)
    return keep_running(worker, Outage(), takeover_after=10, woken=None if pickup is None else pickup.woken)


async def _run_batches(arq: ArqRedis, *, wake: bool) -> float:
    """Seconds a worker allowed one batch at a time takes for five batches of BATCH_S."""
    ran.clear()
    for i in range(5):
        await arq.enqueue_job("batch", _job_id=f"poll:rev:{i:03d}:1.000")
    worker = _capped_worker(arq, wake=wake, poll_delay=0.5)
    started = time.monotonic()
    await worker.main()
    await worker.close()
    assert sorted(job for job, _ in ran) == [f"poll:rev:{i:03d}:1.000" for i in range(5)]
    return time.monotonic() - started


async def test_the_end_of_a_batch_starts_the_next_pickup_at_once(arq: ArqRedis) -> None:
    # one at a time, each next batch waited for the next poll_delay (0.5 s): ~2 s for five
    assert await _run_batches(arq, wake=False) > 1.5
    await arq.flushdb()
    # woken by each batch's end, the five run back to back
    assert await _run_batches(arq, wake=True) < 5 * BATCH_S + 0.4


def test_a_worker_alone_takes_what_arq_lets_it_and_shares_once_others_beat() -> None:
    tuning = WorkerTuning(max_jobs=32, poll_batch_size=200)
    rt: Any = SimpleNamespace(config=SimpleNamespace(settings=SimpleNamespace(worker=tuning)), live_workers=1,
                              providers={"artistree": SimpleNamespace(settings=SimpleNamespace(max_concurrency=640))})
    assert Runtime.poll_room(rt, "artistree") == 32
    rt.live_workers = 4  # a share of 160 permits: a batch of 200 and one more
    assert Runtime.poll_room(rt, "artistree") == 2
    rt.live_workers = 2  # 320 permits: two batches and one more
    assert Runtime.poll_room(rt, "artistree") == 3
    assert Runtime.poll_room(rt, "unknown") == 32
