"""tasks/overlap.py: steps one behind the other, drained before the plan is written. Plain
coroutines and events, no I/O."""

from __future__ import annotations

import asyncio

import pytest

from tasks.overlap import Overlap


class Step:
    """A step that records when it started and waits until it is let go."""

    def __init__(self, name: str, log: list[str], fail: BaseException | None = None) -> None:
        self.name, self.log, self.fail = name, log, fail
        self.go, self.started, self.ended = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def run(self) -> str:
        self.log.append(f"start {self.name}")
        self.started.set()
        await self.go.wait()
        self.log.append(f"end {self.name}")
        self.ended.set()
        if self.fail is not None:
            raise self.fail
        return self.name


async def started(steps: list[Step], depth: int) -> Overlap:
    """An Overlap of `depth` that every one of `steps` was added to."""
    overlap = Overlap(depth)
    for s in steps:
        await asyncio.wait_for(overlap.add(s.run()), 5)
    return overlap


async def test_the_next_step_starts_while_the_one_before_still_waits() -> None:
    log: list[str] = []
    first, second = Step("1", log), Step("2", log)
    overlap = Overlap(2)
    await asyncio.wait_for(overlap.add(first.run()), 5)  # one in flight: room for the next
    adding = asyncio.ensure_future(overlap.add(second.run()))
    await asyncio.wait_for(second.started.wait(), 5)
    assert log == ["start 1", "start 2"] and not adding.done()  # the second waits for the first to end
    first.go.set()
    await adding
    assert log == ["start 1", "start 2", "end 1"]
    second.go.set()
    await overlap.drain()
    assert log[-1] == "end 2"


async def test_depth_one_runs_the_steps_one_after_the_other() -> None:
    log: list[str] = []
    steps = [Step(str(i), log) for i in range(3)]
    for s in steps:
        s.go.set()
    await started(steps, 1)
    assert log == ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]


async def test_drain_waits_for_every_step_in_order() -> None:
    log: list[str] = []
    steps = [Step(str(i), log) for i in range(2)]
    overlap = await started(steps, 3)
    draining = asyncio.ensure_future(overlap.drain())
    steps[1].go.set()
    await asyncio.wait_for(steps[1].ended.wait(), 5)
    assert not draining.done()  # the first has not ended
    steps[0].go.set()
    await draining
    assert sorted(log) == ["end 0", "end 1", "start 0", "start 1"]


async def test_a_failed_step_is_raised_once_and_the_ones_after_it_are_drained() -> None:
    log: list[str] = []
    bad, good = Step("bad", log, fail=RuntimeError("page failed")), Step("good", log)
    overlap = await started([bad, good], 3)
    bad.go.set()
    good.go.set()
    with pytest.raises(RuntimeError, match="page failed"):
        await overlap.drain()
    await overlap.drain()  # the failed one is out; the one after it still ends
    assert "end good" in log


async def test_a_failure_reaches_the_add_that_waits_for_it() -> None:
    log: list[str] = []
    bad = Step("bad", log, fail=ConnectionError("redis down"))
    bad.go.set()
    overlap = Overlap(2)
    await overlap.add(bad.run())
    with pytest.raises(ConnectionError):
        await overlap.add(Step("next", log).run())
    await overlap.cancel()  # the step left in flight is cancelled, not left running
    assert "end next" not in log


async def test_cancel_stops_the_steps_in_flight() -> None:
    log: list[str] = []
    steps = [Step(str(i), log) for i in range(2)]
    overlap = await started(steps, 3)
    await asyncio.wait_for(asyncio.gather(*(s.started.wait() for s in steps)), 5)
    await overlap.cancel()
    for s in steps:
        s.go.set()
    await asyncio.sleep(0)  # a step left running would end now: nothing to wait for when none is
    assert log == ["start 0", "start 1"]
    await overlap.drain()  # nothing left


def test_a_depth_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        Overlap(0)
