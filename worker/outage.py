"""Redis outages, as one worker process lives through them.

Redis goes away in many ways: refused (restarting), hung (a stopped master: a socket
timeout), `LOADING` (reading its AOF back), `READONLY` (a demoted master), `NOREPLICAS`
(`min-replicas-to-write` not met), `MASTERDOWN` or `UNBLOCKED` (a failover in progress).
Every loop of a worker (ARQ's job pickup, the dispatcher, the heartbeat, the jobs
themselves) reports to one `Outage` per process: the first failure logs one line, the
first success after it logs one line with how long it lasted, and whoever waits for Redis
to come back wakes up then. Nothing else about an outage is logged. A Redis that refuses
writes but answers reads (`store.unavailable.refuses_writes`) is back only when a loop that
writes succeeds (`ok(wrote=True)`): the job pickup's and the dispatcher's reads would
otherwise end the outage and the next write start it again, two lines at every pickup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from store.unavailable import is_redis_down, redis_problem, refuses_writes

__all__ = ["Outage", "is_redis_down"]

log = logging.getLogger("statehook.redis")
T = TypeVar("T")

class Outage:
    """Whether this process currently finds Redis down, and since when."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_backoff: float = 2.0) -> None:
        self.clock = clock
        self.max_backoff = max_backoff
        self.down_since: float | None = None
        self.outages = 0
        self._failures = 0
        self._writes_refused = False
        self._up = asyncio.Event()
        self._up.set()
        self._on_recover: list[Callable[[], Awaitable[None]]] = []
        self._tasks: set[asyncio.Future[None]] = set()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException, where: str) -> None:
        """Redis failed `where`: the first failure of an outage is logged, the rest counted."""
        self._failures += 1
        self._writes_refused = refuses_writes(exc)
        if self.down_since is None:
            self.down_since = self.clock()
            self.outages += 1
            self._up.clear()
            log.warning("Redis unavailable (%s, in %s): pausing until it answers again", redis_problem(exc), where)

    def ok(self, *, wrote: bool = True) -> None:
        """Redis answered (`wrote`: a write of the caller's succeeded, not only reads): ends an
        outage, if there was one, unless Redis last refused writes and only reads succeeded."""
        if self.down_since is None or (self._writes_refused and not wrote):
            return
        lasted = self.clock() - self.down_since
        self.down_since = None
        self._failures = 0
        self._writes_refused = False
        self._up.set()
        log.warning("Redis available again after %.1fs", lasted)
        for callback in self._on_recover:
            task = asyncio.ensure_future(callback())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def on_recover(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` (in its own task) each time an outage ends."""
        self._on_recover.append(callback)

    def backoff(self) -> float:
        """How long a loop that just failed waits before its next try: 0.1 s doubling to `max_backoff`."""
        return min(self.max_backoff, 0.1 * 2 ** min(self._failures, 8))

    async def wait_up(self, timeout: float | None = None) -> bool:
        """Until some loop saw Redis answer again (True), or `timeout` passed (False)."""
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def through(self, step: Callable[[], Awaitable[T]], where: str) -> T:
        """`step()`, run again each time it fails because Redis is down, once Redis is back
        (or after a backoff, if nothing else probes it). For idempotent steps only: a poll
        (its commit is guarded), a delivery batch (its marks keep it from sending twice)."""
        while True:
            try:
                result = await step()
            except Exception as exc:
                if not is_redis_down(exc):
                    raise
                self.failed(exc, where)
                await self.wait_up(self.backoff())
                continue
            self.ok()
            return result
