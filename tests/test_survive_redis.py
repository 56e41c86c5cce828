"""A worker lives through what production does to Redis, against real redis-server processes:
a refused connection (stopped, its port closed), a hung server (SIGSTOP), a Sentinel
failover (kill -9 of the master), a lost dataset (FLUSHALL), a killed worker's jobs; and a
change made while Redis was away is delivered once it is back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from arq.constants import in_progress_key_prefix

from config import Config
from model.resources import ResourceRef
from simulator.core import Fault, Simulator
from simulator.receivers import WebhookReceiver
from simulator.redisctl import RedisProcess, SentinelTopology
from store import keys
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker, write_config
from tests.test_pipeline import artistree_block
from worker.redis_client import redis_client

FAST = {"health_interval": "1s", "reclaim_idle": "1s", "poll_lease": "5s", "takeover_after": "3s"}


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A redis-server of this test's own (with AOF), to stop, hang and restart."""
    with RedisProcess(appendonly=True) as proc:
        yield proc


def _config(tmp_path: Path, url: str, sim: Simulator, receiver: WebhookReceiver, oid: str,
            **tuning: str) -> Config:
    return write_config(
        tmp_path / "statehook.toml", redis_url=url, providers={"artistree": artistree_block(sim)},
        watches=[{"provider": "artistree", "ids": [oid], "interval": "1s"}],
        destinations={"hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC,
                               "retry_schedule": [0.05, 0.05, 0.05], "jitter": 0.0}},
        routes=[{"to": ["hook"]}], worker={**FAST, **tuning},
    )


def _states(receiver: WebhookReceiver) -> list[str]:
    return [r.event["data"].get("to") for r in receiver.delivered if r.event["type"].endswith("state_changed")]


async def _baselined(url: str, rkey: str) -> None:
    client = aioredis.from_url(url, socket_timeout=1)
    try:
        await wait_for(lambda: client.hexists(keys.STATE, rkey), timeout=20, what="the baseline poll")
    finally:
        await client.aclose()


async def test_a_worker_lives_through_a_refused_redis_and_delivers_what_changed_meanwhile(
    tmp_path: Path, own_redis: RedisProcess, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    config = _config(tmp_path, own_redis.url, sim, receiver, oid)
    async with running_worker(config) as worker:
        await _baselined(own_redis.url, ResourceRef("artistree", "order", oid).key)
        await asyncio.to_thread(own_redis.stop)  # the port is closed: connections are refused
        sim["artistree"].set_state(oid, "Failed")
        await asyncio.sleep(3)
        assert not worker.main_task.done(), "the worker exited while Redis was down"
        await asyncio.to_thread(own_redis.start)
        await wait_for(lambda: "Failed" in _states(receiver), timeout=20, what="the change made while Redis was down")
        assert not worker.main_task.done()


async def test_a_hung_redis_pauses_the_worker_and_it_resumes_after(
    tmp_path: Path, own_redis: RedisProcess, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    config = _config(tmp_path, own_redis.url, sim, receiver, oid)
    async with running_worker(config) as worker:
        await _baselined(own_redis.url, ResourceRef("artistree", "order", oid).key)
        own_redis.pause()  # SIGSTOP: connections are accepted, nothing answers
        try:
            sim["artistree"].set_state(oid, "Action Required")
            await asyncio.sleep(7)  # past the client's socket timeout
            assert not worker.main_task.done(), "the worker exited while Redis hung"
        finally:
            own_redis.resume()
        await wait_for(lambda: "Action Required" in _states(receiver), timeout=20, what="the change after SIGCONT")
        assert not worker.main_task.done()


async def test_a_worker_stops_promptly_while_redis_is_unreachable(
    tmp_path: Path, own_redis: RedisProcess, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order()["order_id"]
    config = _config(tmp_path, own_redis.url, sim, receiver, oid)
    worker_cm = running_worker(config)
    worker = await worker_cm.__aenter__()
    await _baselined(own_redis.url, ResourceRef("artistree", "order", oid).key)
    own_redis.pause()
    try:
        started = time.monotonic()
        await asyncio.wait_for(worker_cm.__aexit__(None, None, None), timeout=15)
        assert time.monotonic() - started < 15
        assert worker.main_task.done()
    finally:
        own_redis.resume()


async def test_a_worker_started_while_redis_is_down_starts_when_it_comes(
    tmp_path: Path, own_redis: RedisProcess, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order()["order_id"]
    config = _config(tmp_path, own_redis.url, sim, receiver, oid)
    await asyncio.to_thread(own_redis.stop)
    async with running_worker(config) as worker:
        await asyncio.sleep(2)
        assert not worker.main_task.done()
        await asyncio.to_thread(own_redis.start)
        await _baselined(own_redis.url, ResourceRef("artistree", "order", oid).key)


async def test_a_sentinel_failover_moves_the_worker_to_the_new_master(
    tmp_path: Path, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    with SentinelTopology(down_after_ms=1000) as topo:
        config = _config(tmp_path, topo.url, sim, receiver, oid)
        async with running_worker(config) as worker:
            rkey = ResourceRef("artistree", "order", oid).key
            await _baselined(topo.current_master().url, rkey)
            # the baseline must have reached the replica: a commit the failover loses is a lost
            # baseline, and the next poll takes it again (no event), which is not what this tests
            await _baselined(topo.replica.url, rkey)
            old = topo.master_port()
            topo.current_master().kill()
            sim["artistree"].set_state(oid, "Failed")
            await asyncio.to_thread(topo.wait_for_failover, old, 30.0)
            await wait_for(lambda: "Failed" in _states(receiver), timeout=30, what="the change after the failover")
            assert not worker.main_task.done()


async def test_a_flushall_is_taken_back_without_false_events_or_reused_ids(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    config = _config(tmp_path, redis_url, sim, receiver, oid)
    async with running_worker(config) as worker:
        await _baselined(redis_url, rkey)
        sim["artistree"].set_state(oid, "Action Required")
        await wait_for(lambda: len(receiver.delivered) == 1, timeout=20, what="the first change")
        sim["artistree"].set_state(oid, "In Progress")
        await wait_for(lambda: len(receiver.delivered) == 2, timeout=20, what="the second change")
        epoch = await redis.get(keys.EPOCH)
        await redis.flushall()
        # the dataset is taken again: the config watch is back and a new baseline is taken
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), timeout=20, what="the baseline after FLUSHALL")
        assert await redis.get(keys.EPOCH) not in (None, epoch)
        assert len(receiver.delivered) == 2, "a baseline after the loss was delivered as a change"
        # the same transition as the first one, with seq starting again: a new id
        sim["artistree"].set_state(oid, "Action Required")
        await wait_for(lambda: len(receiver.delivered) == 3, timeout=20, what="the change after the loss")
        assert not worker.main_task.done()
    first, _, third = (r.event for r in receiver.delivered)
    assert (first["seq"], first["data"]["to"]) == (third["seq"], third["data"]["to"])
    assert len({r.event["id"] for r in receiver.delivered}) == 3


def _run_worker(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "STATEHOOK_CONFIG_FILE": str(config_path), "STATEHOOK_LOG_LEVEL": "info"}
    statehook = Path(sys.executable).parent / "statehook"
    with log.open("wb") as out:
        return subprocess.Popen([str(statehook), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_a_killed_workers_poll_is_taken_over_after_takeover_after(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    """Worker A (a process) holds a poll that hangs at the provider and is killed (-9); worker B
    runs that very job once A's in-progress key runs out (3 s here), not after ARQ's 1,810 s."""
    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    # a lease far longer than the test: only a takeover of the very job can poll the order in time
    config = _config(tmp_path, redis_url, sim, receiver, oid, poll_lease="10m")
    sim.faults.add("artistree", "/v1/orders/", Fault(delay=60.0))
    proc = _run_worker(tmp_path / "statehook.toml", tmp_path / "a.log")
    try:
        async def a_poll_in_progress() -> bool:
            return any(k for k in await redis.keys(in_progress_key_prefix + "poll:*"))

        await wait_for(a_poll_in_progress, timeout=30, what="worker A holding a poll")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = time.monotonic()
        sim.faults.clear()
        async with running_worker(config):
            await wait_for(lambda: redis.hexists(keys.STATE, rkey), timeout=20, what="the poll taken over")
        assert time.monotonic() - killed_at < 20
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_the_client_fails_a_command_on_a_hung_server_instead_of_waiting(own_redis: RedisProcess) -> None:
    client = redis_client(own_redis.url)
    try:
        assert await client.ping()
        own_redis.pause()
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            await client.get("x")
        assert time.monotonic() - started < 15  # one socket timeout (5 s), not one per retry
        from store.unavailable import is_redis_down

        assert is_redis_down(caught.value)
    finally:
        own_redis.resume()
        await client.aclose()


async def test_a_re_registration_that_failed_after_a_flushall_is_made_again(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker took the new epoch before it registered the config's watches again: when
    that failed (a blip, OOM), every later look saw the epoch it expected, and the watches
    stayed gone until a restart."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from worker.runtime import Runtime

    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    config = _config(tmp_path, redis_url, sim, receiver, oid)
    real, failures = Runtime.sync_watches, [RedisConnectionError("Connection reset by peer")]

    async def flaky(self: Runtime) -> None:
        if failures:
            raise failures.pop()
        await real(self)

    async with running_worker(config):
        await _baselined(redis_url, rkey)
        monkeypatch.setattr(Runtime, "sync_watches", flaky)
        await redis.flushall()
        await wait_for(lambda: redis.hexists(keys.META, rkey), timeout=30, what="the config's watch registered again")
    assert failures == []
