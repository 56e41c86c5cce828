"""ARQ's worker loop, made to live through Redis outages and to hand a dead worker's jobs on.

ARQ 0.28's `Worker.main` ends the worker on the first Redis error of its loop (job pickup,
cron, health check), and its start-up gives up after `conn_retries`. `keep_running`
replaces both on one worker instance (the worker stays the one `arq.worker.create_worker`
made, which Sentry's integration may have wrapped):

- start-up waits for Redis as long as it takes, and runs `on_startup` once it answers;
- an iteration that fails because Redis is down reports to the process's `Outage` and
  tries again after a short backoff, so that the worker resumes within about two
  seconds of Redis answering; any other error of an iteration is logged and the loop goes on;
- `close` bounds every Redis call it makes, so that SIGTERM stops a worker promptly even
  while Redis is unreachable;
- SIGTERM and SIGINT are logged, with the jobs the worker lets finish, and so is the end
  of the shutdown (ARQ's own lines are at info on its logger, which is kept at warning).

A job's in-progress key is what keeps other workers from running it; ARQ gives it the
*largest* timeout of all functions + 10 s, so a killed worker's jobs waited for that.
Here it lasts `takeover_after` seconds and `keep_jobs_alive` renews it for the jobs this
worker is running: a killed or hung worker's jobs are taken over by another worker at
most `takeover_after` seconds after its last renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import types
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial

from arq.constants import in_progress_key_prefix
from arq.worker import Worker

from worker.outage import Outage, is_redis_down

__all__ = ["keep_jobs_alive", "keep_running", "running_job_ids"]

log = logging.getLogger("statehook.worker")

CLOSE_TIMEOUT = 2.0
"""What one Redis call of a shutdown may take before it is given up."""


def running_job_ids(worker: Worker) -> list[str]:
    return [job_id for job_id, task in worker.tasks.items() if not task.done()]


async def keep_jobs_alive(worker: Worker, outage: Outage, takeover_after: float, stop: asyncio.Event) -> None:
    """Renew the in-progress keys of this worker's running jobs every third of `takeover_after`."""
    ttl_ms = int(takeover_after * 1000)
    while not stop.is_set():
        ids = running_job_ids(worker)
        if ids and not outage.down:
            try:
                async with worker.pool.pipeline(transaction=False) as pipe:
                    for job_id in ids:
                        pipe.pexpire(in_progress_key_prefix + job_id, ttl_ms)
                    await pipe.execute()
            except Exception as exc:
                if not is_redis_down(exc):
                    log.exception("renewing the in-progress keys of running jobs failed")
                else:
                    outage.failed(exc, "job renewal")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), takeover_after / 3)


async def _until_redis_answers(worker: Worker, outage: Outage) -> None:
    while True:
        try:
            await worker.pool.ping()
        except Exception as exc:
            if not is_redis_down(exc):
                raise
            outage.failed(exc, "start-up")
            await asyncio.sleep(outage.backoff())
            continue
        outage.ok(wrote=False)
        return


async def _iterations(step: float, woken: asyncio.Event | None) -> AsyncIterator[None]:
    """ARQ's `poll(step)`: an iteration every `step` seconds (less the time it took), and at
    once when `woken` is set (a poll batch of this worker ended, worker/fair_pickup.py `Pickup`)."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        if woken is not None:
            woken.clear()
        yield None
        wait = max(0.0, step - (loop.time() - before))
        if woken is None:
            await asyncio.sleep(wait)
        elif not woken.is_set() and wait > 0:
            timer = loop.call_later(wait, woken.set)  # the step's end wakes it too (no task per wait)
            try:
                await woken.wait()
            finally:
                timer.cancel()


async def _main(self: Worker, outage: Outage, woken: asyncio.Event | None = None) -> None:
    log.info("starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions))
    self.ctx["redis"] = self.pool
    self.ctx["outage"] = outage
    await _until_redis_answers(self, outage)
    if self.on_startup:
        await self.on_startup(self.ctx)
    async for _ in _iterations(self.poll_delay_s, woken):
        if self._pool is None:  # closed: a cancellation that did not reach this loop must not keep it going
            log.info("worker closed: its loop ends")
            return
        try:
            await self._poll_iteration()
        except Exception as exc:
            if self._pool is None:
                return
            if is_redis_down(exc):
                outage.failed(exc, "job pickup")
            else:
                log.exception("worker loop iteration failed; going on")
            await asyncio.sleep(outage.backoff())
            continue
        outage.ok(wrote=False)  # an idle pickup only reads
        if self.burst and (0 <= self.max_burst_jobs <= self._jobs_started()
                           or await self.pool.zcard(self.queue_name) == 0):
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            return


@dataclass
class _Shutdown:
    """What a signal left running, for the line that says how the shutdown ended."""

    started: float | None = None
    jobs: list[asyncio.Task[object]] = field(default_factory=list)


def _on_signal(worker: Worker, shutdown: _Shutdown, arq_handler: Callable[[signal.Signals], None],
               signum: signal.Signals) -> None:
    sig = signal.Signals(signum)
    running = [task for task in worker.tasks.values() if not task.done()]
    if shutdown.started is None:
        shutdown.started, shutdown.jobs = time.monotonic(), running
    grace = worker._job_completion_wait  # shutdown_grace, rounded up
    log.info("shutting down (%s): finishing %d job(s) (up to %ds, then they are cancelled)", sig.name,
             len(running), grace)
    arq_handler(sig)


def _log_shut_down(shutdown: _Shutdown) -> None:
    took = f" in {time.monotonic() - shutdown.started:.1f}s" if shutdown.started is not None else ""
    cancelled = sum(task.cancelled() for task in shutdown.jobs)
    log.info("shut down%s: %d job(s) finished, %d cancelled", took, len(shutdown.jobs) - cancelled, cancelled)


def _handle_signals(worker: Worker, shutdown: _Shutdown) -> None:
    """Put `_on_signal` in front of the handler ARQ registered for SIGINT and SIGTERM."""
    arq_handler = worker.handle_sig_wait_for_completion if worker._job_completion_wait else worker.handle_sig
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            worker.loop.add_signal_handler(sig, partial(_on_signal, worker, shutdown, arq_handler, sig))


async def _close(self: Worker, shutdown: _Shutdown) -> None:
    if not self._handle_signals:
        self.handle_sig(signal.SIGUSR1)
    if not self._pool:
        return
    await asyncio.gather(*self.tasks.values(), return_exceptions=True)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(self.pool.delete(self.health_check_key), CLOSE_TIMEOUT)
    if self.on_shutdown:
        try:
            await self.on_shutdown(self.ctx)
        except Exception:
            log.exception("shutdown failed")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(self.pool.aclose(close_connection_pool=True), CLOSE_TIMEOUT)
    self._pool = None
    _log_shut_down(shutdown)


def keep_running(worker: Worker, outage: Outage, *, takeover_after: float,
                 woken: asyncio.Event | None = None) -> Worker:
    """`worker`, with the loop, start-up and shutdown above and `takeover_after` as the
    lifetime of its jobs' in-progress keys; its loop looks for jobs every `poll_delay` and
    whenever `woken` is set."""
    worker.in_progress_timeout_s = takeover_after

    async def main(self: Worker) -> None:
        await _main(self, outage, woken)

    async def close(self: Worker) -> None:
        await _close(self, shutdown)

    shutdown = _Shutdown()
    if worker._handle_signals:
        _handle_signals(worker, shutdown)
    worker.main = types.MethodType(main, worker)  # type: ignore[method-assign]
    worker.close = types.MethodType(close, worker)  # type: ignore[method-assign]
    return worker
