"""ARQ worker construction. Workers are made through `arq.worker.create_worker`, looked up
on the module at call time: that is the function sentry-sdk's ArqIntegration replaces, so
a worker made after `sentry_sdk.init` has its jobs wrapped.

Shutdown: SIGTERM (or SIGINT) stops the worker taking jobs; jobs in flight get
`shutdown_grace` seconds to finish, then are cancelled (a cancelled poll commits nothing
and its resource is polled again after its lease; a cancelled delivery re-runs).
Redis outages: the worker never exits for one (worker/resilient.py, worker/outage.py);
its client has timeouts on everything (worker/redis_client.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import socket
from typing import Any

import arq.worker
from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker, func
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config import Config
from config.settings import redis_url_origin
from store import keys
from store.redis_url import SENTINEL_SCHEMES, parse_sentinel_url
from store.unavailable import redis_refusal
from worker.fair_pickup import Pickup
from worker.jobs import (
    BATCH_DEADLINE,
    DELIVERY_DEDUP_WINDOW,
    deliver,
    deliver_events,
    poll_batch,
    poll_scan,
    schedule_due,
)
from worker.jobs_circuit import FLUSH_DEADLINE, flush_destination, probe_destination, watch_circuits
from worker.jobs_reminders import REMINDER_SECONDS, send_reminders
from worker.outage import Outage
from worker.queue import Job, skip_running_jobs
from worker.redis_client import redis_client
from worker.resilient import keep_jobs_alive, keep_running
from worker.runtime import Runtime

__all__ = ["WorkerSettings", "make_worker", "redis_settings", "run_worker", "sentinel_settings",
           "tune_gc", "use_event_loop"]

SCAN_TIMEOUT = 1800
"""A scan's own timeout (a hang); a dead worker's scan is taken over after `takeover_after`, not this."""
POLL_TRIES = 3


def sentinel_settings(url: str) -> RedisSettings:
    """ARQ's settings for `redis+sentinel://…` (for ARQ's own pool; workers use `redis_client`)."""
    target = parse_sentinel_url(url)
    return RedisSettings(
        host=target.sentinels,
        sentinel=True,
        sentinel_master=target.service,
        database=target.db,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
    )


def redis_settings(url: str) -> RedisSettings:
    """Connection settings from `redis_url`: `redis://`, `rediss://`, `unix://`, or
    `redis+sentinel://…` for a Sentinel-managed master."""
    settings = sentinel_settings(url) if url.startswith(SENTINEL_SCHEMES) else (
        RedisSettings.from_dsn(url)
    )
    settings.retry_on_timeout = True
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    settings.retry = Retry(ExponentialBackoff(cap=5.0, base=0.1), 16)
    settings.conn_retries = 30
    return settings


async def on_startup(ctx: dict[str, Any]) -> None:
    rt = await Runtime.start(ctx["config"], ctx["redis"], run_dispatcher=ctx.get("run_dispatcher", True),
                             outage=ctx["outage"])
    ctx["rt"] = rt
    worker = ctx.get("worker")
    if worker is not None:
        takeover = rt.config.settings.worker.takeover_after
        rt.background.append(asyncio.create_task(keep_jobs_alive(worker, rt.outage, takeover, rt.stop),
                                                 name="job-renewal"))


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


def use_event_loop(config: Config) -> None:
    """Makes the configured event loop (`worker.event_loop`) the current one, for the worker
    `make_worker` builds next: ARQ's Worker runs on the loop that is current when it is made.
    For a process's main thread, before any loop runs (`statehook run`). asyncio stays the
    default: uvloop's gain in the benchmark was +15% one day and lost in the noise another
    (docs/performance.md)."""
    loop: asyncio.AbstractEventLoop
    if config.settings.worker.event_loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    kind = type(loop)
    logging.getLogger("statehook.worker").info("event loop: %s.%s", kind.__module__, kind.__qualname__)


def tune_gc(threshold: int) -> None:
    """Python's cyclic collector, for a long-running worker: what exists after start-up is
    frozen out of every later collection, and a young-generation collection runs every
    `threshold` (`worker.gc_threshold`) net allocations instead of 700. Traced in a worker polling
    20,000 unchanged orders a pass: 0.5 s of a pass's 6.6 s of CPU went to collections
    (~425 young, 4 full, each full one walking every object of the process); with this,
    ~4 ms. Garbage without cycles is freed by reference counting as before; cycles wait
    for the next collection, at most `threshold` allocations away."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, gen1, gen2)
    logging.getLogger("statehook.worker").info(
        "gc: %d start-up objects frozen, young collection every %d allocations",
        gc.get_freeze_count(), threshold,
    )


def run_worker(config: Config) -> None:
    """What `statehook run` does once logging and Sentry are set up (the benchmark's worker
    processes call it too): the configured event loop, the worker, the collector tuned
    after start-up, then the worker's loop until a signal stops it."""
    use_event_loop(config)
    try:
        worker = make_worker(config)
        tune_gc(config.settings.worker.gc_threshold)
        worker.run()
    except Exception as exc:
        # one line in the configured format (a traceback goes to Sentry, if set up), then exit 1
        if refusal := redis_refusal(exc):
            logging.getLogger("statehook.worker").critical("worker stopped: %sredis_url: %s", redis_url_origin(),
                                                           refusal)
        else:
            logging.getLogger("statehook.worker").critical("worker stopped by an unexpected error: %s: %s",
                                                           type(exc).__name__, exc)
        raise SystemExit(1) from None


def _poll_room(worker: Worker, provider: str) -> int:
    """The poll batches of `provider` that `worker` holds at a time (`Runtime.poll_room`)."""
    rt: Runtime | None = worker.ctx.get("rt")
    return 1 if rt is None else rt.poll_room(provider)


def make_worker(config: Config, *, handle_signals: bool = True, run_dispatcher: bool = True,
                burst: bool = False) -> Worker:
    """The worker `statehook run` runs. A poll job may run up to POLL_TRIES times: a second
    run is another worker taking it over from one that died (its in-progress key expired)."""
    tuning = config.settings.worker
    outage = Outage()
    pickup = Pickup()
    worker = skip_running_jobs(arq.worker.create_worker(
        WorkerSettings,  # type: ignore[arg-type]
        functions=[
            func(schedule_due, name=Job.SCHEDULE_NOW.value, timeout=30, max_tries=1, keep_result=0),
            func(poll_batch, name=Job.POLL_BATCH.value, timeout=tuning.job_timeout, max_tries=POLL_TRIES,
                 keep_result=60),
            func(poll_scan, name=Job.POLL_SCAN.value, timeout=SCAN_TIMEOUT, max_tries=POLL_TRIES, keep_result=60),
            func(deliver, name=Job.DELIVER.value, timeout=tuning.delivery_timeout, max_tries=1000,
                 keep_result=DELIVERY_DEDUP_WINDOW),
            # the batch's own deadline comes first; the job's timeout only catches a hang
            func(deliver_events, name=Job.DELIVER_EVENTS.value, timeout=BATCH_DEADLINE + 60, max_tries=1000,
                 keep_result=0),
            func(probe_destination, name=Job.PROBE_DESTINATION.value, timeout=60, max_tries=3, keep_result=0),
            func(flush_destination, name=Job.FLUSH_DESTINATION.value, timeout=FLUSH_DEADLINE + 60, max_tries=3,
                 keep_result=0),
        ],
        cron_jobs=[cron(schedule_due, second=set(range(60)), unique=True, timeout=30, run_at_startup=True),
                   cron(send_reminders, second=REMINDER_SECONDS, unique=True, timeout=30),
                   cron(watch_circuits, second=set(range(60)), unique=True, timeout=30)],
        redis_pool=redis_client(config.redis_url),
        ctx={"config": config, "run_dispatcher": run_dispatcher, "outage": outage},
        handle_signals=handle_signals,
        max_jobs=tuning.max_jobs,
        job_timeout=tuning.job_timeout,
        health_check_interval=tuning.health_interval,
        health_check_key=keys.arq_health(f"{socket.gethostname()}-{os.getpid()}"),
        job_completion_wait=max(1, math.ceil(tuning.shutdown_grace)),
        burst=burst,
    ), room=_poll_room, pickup=pickup)
    worker.ctx["worker"] = worker
    return keep_running(worker, outage, takeover_after=tuning.takeover_after, woken=pickup.woken)
