"""ARQ worker construction. Workers are made through `arq.worker.create_worker`, the way
sentry-sdk's ArqIntegration hooks them."""

from __future__ import annotations

import os
import socket
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker, create_worker, func
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config import Config
from tasks.jobs import deliver, poll_batch, poll_scan, schedule_due
from worker.runtime import Runtime

__all__ = ["WorkerSettings", "make_worker", "redis_settings"]

SCAN_TIMEOUT = 1800
DELIVERY_DEDUP_WINDOW = 600
"""How long a finished delivery job id stays known to ARQ: longer than any re-dispatch
(an outbox entry is reclaimed after `reclaim_idle`), short enough not to fill Redis."""


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.retry_on_timeout = True
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    settings.conn_retries = 30
    return settings


async def on_startup(ctx: dict[str, Any]) -> None:
    ctx["rt"] = await Runtime.start(ctx["config"], ctx["redis"], run_dispatcher=ctx.get("run_dispatcher", True))


async def on_shutdown(ctx: dict[str, Any]) -> None:
    rt = ctx.get("rt")
    if rt is not None:
        await rt.close()


class WorkerSettings:
    """Static part; `make_worker` adds Redis, the config and the timeouts."""

    on_startup = on_startup
    on_shutdown = on_shutdown
    keep_result = 3600
    poll_delay = 0.05
    max_tries = 1


def make_worker(config: Config, *, handle_signals: bool = True, run_dispatcher: bool = True,
                burst: bool = False) -> Worker:
    tuning = config.settings.worker
    return create_worker(
        WorkerSettings,  # type: ignore[arg-type]
        functions=[
            func(poll_batch, timeout=tuning.job_timeout, max_tries=1, keep_result=60),
            func(poll_scan, timeout=SCAN_TIMEOUT, max_tries=1, keep_result=60),
            func(deliver, timeout=tuning.delivery_timeout, max_tries=1000, keep_result=DELIVERY_DEDUP_WINDOW),
        ],
        cron_jobs=[cron(schedule_due, second=set(range(60)), unique=True, timeout=30, run_at_startup=True)],
        redis_settings=redis_settings(config.redis_url),
        ctx={"config": config, "run_dispatcher": run_dispatcher},
        handle_signals=handle_signals,
        max_jobs=tuning.max_jobs,
        job_timeout=tuning.job_timeout,
        health_check_interval=tuning.health_interval,
        health_check_key=f"sh:arq-health:{socket.gethostname()}-{os.getpid()}",
        job_completion_wait=int(tuning.shutdown_grace),
        burst=burst,
    )
