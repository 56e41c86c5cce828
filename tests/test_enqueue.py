"""worker/queue.py's enqueue functions: many ARQ jobs in one script (what ARQ's own enqueue_job would
have written, and its refusals), a delivery job's id and arguments, a scheduler tick's poll jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from worker.jobs import plan_polls
from worker.queue import (
    DELIVER_EXPIRES,
    Job,
    JobSpec,
    PollJob,
    enqueue_delivery,
    enqueue_delivery_batch,
    enqueue_jobs,
    enqueue_polls,
    skip_running_jobs,
)

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


async def test_a_delivery_job_has_one_id_per_event_and_destination_and_its_own_for_a_replay(arq: ArqRedis) -> None:
    assert await enqueue_delivery(arq, "evt_1", b'{"id": "evt_1"}', "hook")
    assert not await enqueue_delivery(arq, "evt_1", b'{"id": "evt_1"}', "hook", attempts_before=1, defer_s=5)
    assert await enqueue_delivery(arq, "evt_1", b'{"id": "evt_1"}', "hook", replay_of="1700000000000-0")
    assert await enqueue_delivery(arq, "evt_1", b'{"id": "evt_1"}', "mail", attempts_before=1, defer_s=30)

    jobs = {j.job_id: j for j in await arq.queued_jobs()}

    assert set(jobs) == {"deliver:evt_1:hook", "deliver:evt_1:hook:replay:1700000000000-0", "deliver:evt_1:mail"}
    assert {j.function for j in jobs.values()} == {Job.DELIVER.value}
    assert jobs["deliver:evt_1:hook"].args == (b'{"id": "evt_1"}', "hook", 0)
    assert jobs["deliver:evt_1:mail"].args == (b'{"id": "evt_1"}', "mail", 1)
    later = dict(await arq.zrange("arq:queue", 0, -1, withscores=True))[b"deliver:evt_1:mail"]
    assert later == pytest.approx((time.time() + 30) * 1000, abs=2000)
    assert await arq.pttl("arq:job:deliver:evt_1:hook") > (DELIVER_EXPIRES - 60) * 1000  # days, not ARQ's one


def test_a_tick_is_planned_as_batches_of_one_provider_and_one_job_per_scan() -> None:
    now = 1000.0
    claimed = [("artistree:order:1", 999.0), ("rev:order:A", 1000.5), ("artistree:order:2", 1000.2),
               ("rev:scan:all", 1000.9), ("artistree:order:3", 998.0)]

    jobs = plan_polls(claimed, now, size=2)

    assert jobs == [
        PollJob("artistree", ("artistree:order:1", "artistree:order:2"), None),
        PollJob("artistree", ("artistree:order:3",), None),
        PollJob("rev", ("rev:order:A",), 1000.5),
        PollJob("rev", ("rev:scan:all",), 1000.9, scan=True),
    ]


async def test_a_ticks_jobs_are_enqueued_once(arq: ArqRedis) -> None:
    jobs = [PollJob("artistree", ("artistree:order:1", "artistree:order:2")), PollJob("rev", ("rev:scan:all",),
                                                                                      scan=True)]
    assert await enqueue_polls(arq, jobs, claimed_at=1000.0) == 2
    assert await enqueue_polls(arq, jobs, claimed_at=1000.0) == 0  # the same tick run again
    queued = sorted((j.function, j.args) for j in await arq.queued_jobs())
    assert queued == [("poll_batch", (["artistree:order:1", "artistree:order:2"],)), ("poll_scan", ("rev:scan:all",))]


async def test_a_delivery_batch_is_logged_as_its_count_of_events_not_their_bytes(
        arq: ArqRedis, caplog: pytest.LogCaptureFixture) -> None:
    calls.clear()
    events = [b'{"id":"evt_1","summary":"' + b"x" * 5000 + b'"}', b'{"id":"evt_2"}']
    worker = Worker(functions=[func(record, name=Job.DELIVER_EVENTS.value)], redis_pool=arq, handle_signals=False,
                    burst=True, poll_delay=0.01)
    assert await enqueue_delivery_batch(arq, ["evt_1", "evt_2"], events, "hook")
    with caplog.at_level(logging.INFO, logger="arq.worker"):
        await worker.main()
    ((_, (got, destination), _),) = calls
    assert list(got) == events and destination == "hook"
    started = [r.getMessage() for r in caplog.records if "→" in r.getMessage()]
    assert started and "deliver_events(<2 events>, 'hook')" in started[0], started


@contextlib.asynccontextmanager
async def cutting(redis_url: str, command: bytes) -> AsyncIterator[str]:
    """A TCP proxy to the test's redis-server that cuts the connection carrying the first
    `command` (a connection reset at that moment), then forwards all; yields its URL."""
    target = urlparse(redis_url)
    cut = asyncio.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watch: bool) -> None:
        try:
            while data := await reader.read(65536):
                if watch and not cut.is_set() and b"\r\n" + command + b"\r\n" in data:
                    cut.set()
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}{target.path}"
    finally:
        server.close()


@pytest.fixture
async def drops_first_exec(redis_url: str) -> AsyncIterator[str]:
    async with cutting(redis_url, b"EXEC") as url:
        yield url


async def test_an_enqueue_whose_connection_breaks_at_exec_is_an_error_not_a_duplicate(drops_first_exec: str) -> None:
    """redis-py raises WatchError for a watched pipeline whose connection failed, which ARQ
    takes for "enqueued meanwhile": the dispatcher then acknowledged events never enqueued."""
    redis = ArqRedis.from_url(drops_first_exec)
    try:
        with pytest.raises(RedisConnectionError):
            await enqueue_delivery_batch(redis, ["evt_1"], [b"{}"], "hook")
        assert await enqueue_delivery_batch(redis, ["evt_1"], [b"{}"], "hook")  # once Redis answers: enqueued
        assert not await enqueue_delivery_batch(redis, ["evt_1"], [b"{}"], "hook")  # and then known
    finally:
        await redis.aclose()


async def test_a_redis_failure_while_a_job_is_picked_up_gives_its_slot_back(redis_url: str) -> None:
    """ARQ takes a job's slot before it checks the job in Redis; a failed check kept it, and
    max_jobs such faults left the worker taking no job again."""
    async with cutting(redis_url, b"WATCH") as url:
        pool = ArqRedis.from_url(url)
        worker = skip_running_jobs(Worker(functions=[func(record, name="record")], redis_pool=pool,
                                          handle_signals=False, max_jobs=2))
        try:
            await pool.zadd("arq:queue", {"job-1": 1})
            free = worker.sem._value  # what ARQ counts its slots with
            with pytest.raises(RedisError):
                await worker.start_jobs([b"job-1"])
            assert worker.job_counter == 0 and worker.sem._value == free
        finally:
            await pool.aclose()
