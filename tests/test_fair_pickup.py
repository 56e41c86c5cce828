"""A worker takes no more poll batches of a provider than it can work on (worker/queue.py
fair_share, poll_room): ARQ's pickup let the first worker to look take up to max_jobs
batches of a tick while the others waited (benchmarks/quota.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.connections import ArqRedis

from worker.queue import fair_share, poll_room, skip_running_jobs


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
