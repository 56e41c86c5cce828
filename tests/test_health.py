"""Health and shutdown: /healthz follows the workers' heartbeats and Redis; SIGTERM lets a
job in flight finish; a Redis restart under a running worker is survived."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis

from model.resources import ResourceRef
from simulator.core import Fault, Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from store.registry import WorkerRegistry
from store.snapshots import Store, WatchMeta
from tests import test_api
from tests.conftest import free_port, wait_for
from tests.kit import running_worker
from tests.test_api import api_config, call, serving
from worker.api import make_app
from worker.settings import redis_settings

STATEHOOK = str(Path(sys.executable).with_name("statehook"))

# the simulator (Artistree and Rev) and the webhook receiver of the API tests
sim_providers = test_api.sim_providers


async def test_healthz_follows_the_worker_heartbeat(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver, worker={"health_interval": "0.5s"})
    async with serving(config) as (_, http):
        status, body = await call(http, "GET", "/healthz")
        assert (status, body["reason"]) == (503, "no worker heartbeat")

        async with running_worker(config):
            async def healthy() -> bool:
                return (await call(http, "GET", "/healthz"))[0] == 200

            await wait_for(healthy, what="a fresh heartbeat")
            status, body = await call(http, "GET", "/healthz")
            assert body["status"] == "ok" and body["redis"] == "ok"
            (beat,) = body["workers"]
            assert beat["fresh"] and beat["interval"] == 0.5

        status, body = await call(http, "GET", "/healthz")
        assert status == 503, "a stopped worker removes its heartbeat at once"
        assert body["reason"] == "no worker heartbeat"


async def test_a_stale_heartbeat_is_not_healthy(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    """A worker killed with SIGKILL stays in the registry until its beat runs out (two more
    intervals, and a second): its age tells."""
    config = api_config(tmp_path, redis_url, sim, receiver)
    registry = WorkerRegistry(redis)
    await registry.beat("gone-1", 30, now=time.time() - 55)
    async with serving(config) as (_, http):
        status, body = await call(http, "GET", "/healthz")
        assert status == 503
        assert body["reason"].startswith("no fresh worker heartbeat: the newest is 55")
        await registry.beat("alive-2", 30, now=time.time() - 20)
        status, body = await call(http, "GET", "/healthz")
        assert status == 200
        assert sorted((w["worker"], w["fresh"]) for w in body["workers"]) == [("alive-2", True), ("gone-1", False)]


async def test_healthz_is_503_when_redis_is_unreachable(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    import aiohttp
    from aiohttp import web

    config = api_config(tmp_path, redis_url, sim, receiver)
    dead = ArqRedis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    runner = web.AppRunner(make_app(config, dead))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            status, body = await call(http, "GET", "/healthz")
    finally:
        await runner.cleanup()
        await dead.aclose()
    assert status == 503
    assert body["reason"].startswith("redis unreachable")


@pytest.mark.parametrize(("loop", "loop_class"), [("asyncio", "asyncio.unix_events._UnixSelectorEventLoop"),
                                                  ("uvloop", "uvloop.Loop")])
async def test_sigterm_lets_the_poll_in_flight_finish(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver, loop: str,
    loop_class: str,
) -> None:
    """`statehook run` as a process, on either event loop: SIGTERM arrives while a fetch is
    answered slowly; the worker stops taking jobs, finishes the poll (its commit lands), and
    exits cleanly."""
    oid = sim["artistree"].add_order()["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    config = api_config(tmp_path, redis_url, sim, receiver, worker={"shutdown_grace": "10s", "event_loop": loop})
    sim.faults.add("artistree", f"/v1/orders/{oid}", Fault(delay=1.5, times=1))
    await Store(redis).add_watches([(rkey, WatchMeta(interval=3600))])
    assert config.source is not None
    proc = await asyncio.create_subprocess_exec(
        STATEHOOK, "run", "-c", str(config.source),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for(lambda: sim.requests["artistree"] >= 2, timeout=20, what="the slow fetch under way")
        assert not await redis.hexists(keys.STATE, rkey)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert f"event loop: {loop_class}" in stderr.decode()
    assert "start-up objects frozen, young collection every 10000 allocations" in stderr.decode()
    assert time.monotonic() - started < 10
    assert await redis.hexists(keys.STATE, rkey), "the poll in flight committed its baseline"
    assert await WorkerRegistry(redis).beats() == [], "the worker left the registry"


@contextlib.contextmanager
def redis_servers(port: int) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts redis-server on `port` as often as asked; stops what runs at the end."""
    binary = shutil.which("redis-server")
    assert binary is not None
    workdir = tempfile.mkdtemp(prefix="statehook-restart-")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


async def _reachable(url: str) -> bool:
    client = aioredis.from_url(url)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def test_a_worker_survives_a_redis_restart(
    tmp_path: Path, sim: Simulator, receiver: WebhookReceiver
) -> None:
    """Redis goes away under a running worker and comes back (empty): the worker retries
    instead of dying, writes its heartbeat again, and polls what is watched afterwards."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    config = api_config(tmp_path, url, sim, receiver, worker={"health_interval": "0.3s"})
    assert redis_settings(url).retry is not None
    with redis_servers(port) as start_redis:
        first = start_redis()
        await wait_for(lambda: _reachable(url), what="redis up")
        client = aioredis.from_url(url)
        try:
            async with running_worker(config) as worker:

                async def beating() -> bool:
                    return bool(await WorkerRegistry(client).beats())

                await wait_for(beating, what="first heartbeat")
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=5)
                start_redis()
                await wait_for(lambda: _reachable(url), what="redis back")
                await wait_for(beating, timeout=20, what="the heartbeat after the restart")
                oid = sim["artistree"].add_order()["order_id"]
                rkey = ResourceRef("artistree", "order", oid).key
                await Store(client).add_watches([(rkey, WatchMeta(interval=3600))])
                await wait_for(lambda: client.hexists(keys.STATE, rkey), timeout=20, what="a poll after the restart")
                assert worker.main_task is not None and not worker.main_task.done()
        finally:
            await client.aclose()
