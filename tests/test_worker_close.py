"""A closed worker's loop ends even when the cancellation of its main task was lost (a
race of asyncio.wait_for in Python 3.11 can swallow one): it found `pool` gone and looped
on "worker loop iteration failed" for ever, hanging whatever awaited it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from tests.conftest import wait_for
from tests.test_api import api_config
from worker.settings import make_worker


async def test_the_loop_of_a_closed_worker_ends_without_being_cancelled(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    worker = make_worker(api_config(tmp_path, redis_url, sim, receiver), handle_signals=False)
    loop_task = asyncio.create_task(worker.main())  # not worker.main_task: close cannot cancel it
    await wait_for(lambda: "rt" in worker.ctx, what="the worker's start-up")
    await worker.close()
    await asyncio.wait_for(loop_task, timeout=10)
