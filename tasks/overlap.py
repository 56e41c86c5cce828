"""Steps run one behind the other: the next step starts while the one before it still waits.

A scan's page is worked on in two halves: the worker's own (fingerprints, parsing what
changed) and a wait for Redis (the comparison of the page's fingerprints, lua/
match_listed.lua). One page after the other, the worker idles through each wait. Here
each page is a task, and at most `depth` of them are in flight: the next page's
fingerprints are taken while Redis compares the page before. The steps share the sweep's
plan, so whoever writes the plan out drains them first (`drain`): nothing then is half
decided, and nothing is added to the plan while it is written.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any

__all__ = ["Overlap"]


class Overlap:
    def __init__(self, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.depth = depth
        self._in_flight: deque[asyncio.Task[Any]] = deque()

    async def add(self, step: Coroutine[Any, Any, Any]) -> None:
        """Start `step`; returns once at most `depth - 1` steps are left in flight, raising
        what the oldest step raised."""
        self._in_flight.append(asyncio.ensure_future(step))
        while len(self._in_flight) >= self.depth:
            await self._oldest()

    async def drain(self) -> None:
        """Until every step started has ended, in order; raises what the first failed one
        raised (that one is then out, the ones after it still in flight)."""
        while self._in_flight:
            await self._oldest()

    async def _oldest(self) -> None:
        task = self._in_flight[0]
        try:
            await task
        finally:
            if task.done():  # ended, or failed; a cancellation of the caller leaves it for `cancel`
                self._in_flight.popleft()

    async def cancel(self) -> None:
        """Cancel the steps still in flight (after a failure: what they would add is not wanted)."""
        tasks = list(self._in_flight)
        self._in_flight.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)  # a cancellation of the caller still reaches it
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved: a step's failure is not reported twice
