"""The API degrades, never errors: it starts while Redis is down, answers 503 with a reason
(fast, even when Redis hangs), comes back by itself; and a stored record that cannot be
read is skipped, logged with its key and counted, never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError, ReadOnlyError, ResponseError

from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import keys, record_frame
from store.snapshots import Store, WatchMeta
from tests import test_api
from tests.conftest import free_port, wait_for
from tests.test_api import AUTH, api_config, call, serving
from worker.api import make_app

sim_providers = test_api.sim_providers

PASSWORD = "redis-pw-5c1e9a0b7d"
REDIS_ROUTES = [("GET", "/v1/watches"), ("GET", "/v1/resources/rev:order:TC1"), ("GET", "/v1/events"),
                ("POST", "/v1/watches")]


@contextlib.contextmanager
def private_redis(port: int, *args: str) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """`start()` runs a redis-server on `port` (with `args`); whatever runs is stopped at the end
    (a stopped one is continued first)."""
    binary = shutil.which("redis-server")
    assert binary is not None
    workdir = tempfile.mkdtemp(prefix="statehook-api-redis-")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", workdir, "--loglevel", "warning", *args],
                                stdout=subprocess.DEVNULL)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


async def answers(url: str, password: str | None = None) -> bool:
    client = aioredis.from_url(url, password=password, socket_connect_timeout=0.5)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


def assert_no_secret(body: Any, port: int) -> None:
    text = orjson.dumps(body).decode() if not isinstance(body, str) else body
    assert PASSWORD not in text and str(port) not in text and "redis://" not in text


def watch_body() -> dict[str, Any]:
    return {"provider": "rev", "ids": ["TC1"]}


# ---- Redis down, hung, refusing ----------------------------------------------------------------


async def test_the_api_starts_while_redis_is_down_and_answers_once_it_is_up(
    tmp_path: Path, sim: Simulator, receiver: WebhookReceiver
) -> None:
    port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    config = api_config(tmp_path, url, sim, receiver)
    started = time.monotonic()
    async with serving(config) as (_, http):
        assert time.monotonic() - started < 2, "the API listens without waiting for Redis"
        for method, path in REDIS_ROUTES:
            began = time.monotonic()
            status, body = await call(http, method, path, headers=AUTH, json=watch_body())
            assert time.monotonic() - began < 3, path
            assert (status, body) == (503, {"error": "redis unavailable: ConnectionError"}), path
        async with http.get("/v1/watches", headers=AUTH) as resp:
            assert resp.headers["Retry-After"] == "5"
        async with http.get("/metrics") as resp:
            assert resp.status == 503 and resp.headers["Retry-After"] == "5"
            assert_no_secret(await resp.text(), port)
        status, body = await call(http, "GET", "/healthz")
        assert status == 503 and body == {"status": "unavailable", "reason": "redis unreachable: ConnectionError"}
        async with http.get("/healthz") as resp:
            assert resp.headers["Retry-After"] == "5"
        status, _ = await call(http, "GET", "/openapi.json")
        assert status == 200

        with private_redis(port, "--requirepass", PASSWORD) as start:
            start()
            await wait_for(lambda: answers(url), what="redis up")

            async def serving_again() -> bool:
                return (await call(http, "GET", "/v1/watches", headers=AUTH))[0] == 200

            await wait_for(serving_again, timeout=10, what="the API answering 200 once Redis is up")
            status, body = await call(http, "POST", "/v1/watches", headers=AUTH, json=watch_body())
            assert status == 201 and body["added"] == 1
            async with http.get("/metrics") as resp:
                assert resp.status == 200 and "statehook_watched_resources 1.0" in await resp.text()


async def test_a_hung_redis_is_503_within_seconds_and_the_api_recovers(
    tmp_path: Path, sim: Simulator, receiver: WebhookReceiver
) -> None:
    """SIGSTOP: connections are accepted by the kernel, nothing answers. Each request gives
    up within a few seconds instead of hanging; SIGCONT brings 200s back."""
    port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    config = api_config(tmp_path, url, sim, receiver)
    with private_redis(port, "--requirepass", PASSWORD) as start:
        proc = start()
        await wait_for(lambda: answers(url), what="redis up")
        async with serving(config) as (_, http):
            assert (await call(http, "GET", "/v1/watches", headers=AUTH))[0] == 200
            proc.send_signal(signal.SIGSTOP)
            try:
                async def timed(method: str, path: str) -> tuple[str, int, Any, float]:
                    began = time.monotonic()
                    status, body = await call(http, method, path, headers=AUTH, json=watch_body())
                    return path, status, body, time.monotonic() - began

                routes = [*REDIS_ROUTES, ("GET", "/metrics"), ("GET", "/healthz")]
                for path, status, body, took in await asyncio.gather(*(timed(m, p) for m, p in routes)):
                    assert status == 503, (path, body)
                    assert took < 4, f"{path} took {took:.1f}s"
                    assert_no_secret(body, port)
                    assert "TimeoutError" in str(body), body
            finally:
                proc.send_signal(signal.SIGCONT)

            async def serving_again() -> bool:
                return (await call(http, "GET", "/v1/watches", headers=AUTH))[0] == 200

            await wait_for(serving_again, timeout=10, what="200 after SIGCONT")


async def test_read_only_and_no_replicas_are_503_with_the_reason(
    tmp_path: Path, sim: Simulator, receiver: WebhookReceiver
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    config = api_config(tmp_path, url, sim, receiver, providers={"rev": test_api.provider_blocks(sim)["rev"]})
    with private_redis(port) as start:
        start()
        await wait_for(lambda: answers(url), what="redis up")
        admin = aioredis.from_url(url)
        try:
            async with serving(config) as (_, http):
                await admin.config_set("min-replicas-to-write", 1)
                status, body = await call(http, "POST", "/v1/watches", headers=AUTH, json=watch_body())
                assert (status, body) == (503, {"error": "redis unavailable: NOREPLICAS"})
                assert (await call(http, "GET", "/v1/watches", headers=AUTH))[0] == 200, "reads still served"
                await admin.config_set("min-replicas-to-write", 0)
                await admin.replicaof("127.0.0.1", str(free_port()))  # a replica of nobody: read-only
                status, body = await call(http, "POST", "/v1/watches", headers=AUTH, json=watch_body())
                assert (status, body) == (503, {"error": "redis unavailable: ReadOnlyError"})
                await admin.replicaof("NO", "ONE")
                status, body = await call(http, "POST", "/v1/watches", headers=AUTH, json=watch_body())
                assert status == 201
        finally:
            await admin.aclose()


@pytest.mark.parametrize(("exc", "status", "answer"), [
    (BusyLoadingError("Redis is loading the dataset in memory"), 503, "redis unavailable: BusyLoadingError"),
    (ResponseError("LOADING Redis is loading the dataset in memory"), 503, "redis unavailable: LOADING"),
    (ResponseError("MASTERDOWN Link with MASTER is down"), 503, "redis unavailable: MASTERDOWN"),
    (ReadOnlyError("You can't write against a read only replica."), 503, "redis unavailable: ReadOnlyError"),
    (ResponseError("ERR unknown command"), 500, "internal error"),
    (RuntimeError("a bug at redis://:pw@h:1"), 500, "internal error"),
])
async def test_what_redis_raises_maps_to_503_or_a_bare_500(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, exc: Exception, status: int,
    answer: str,
) -> None:
    from aiohttp import web

    config = api_config(tmp_path, redis_url, sim, receiver)
    client = aioredis.from_url(redis_url)

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise exc

    client.hscan = failing  # type: ignore[method-assign]
    runner = web.AppRunner(make_app(config, client))  # type: ignore[arg-type]
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with http.get("/v1/watches", headers=AUTH) as resp:
                body = await resp.json()
                assert (resp.status, body) == (status, {"error": answer})
                assert ("Retry-After" in resp.headers) == (status == 503)
    finally:
        await runner.cleanup()
        await client.aclose()


# ---- unreadable records --------------------------------------------------------------------------


GOOD, NOT_JSON, NULL_INTERVAL, BAD_STATE = "rev:order:GOOD1", "rev:order:NOTJSON", "rev:order:NULLI", "rev:order:BADST"


async def poison(redis: aioredis.Redis) -> None:
    """One good watch beside records that cannot be read, of every kind the API reads."""
    await Store(redis).add_watches([(GOOD, WatchMeta(interval=60)), (BAD_STATE, WatchMeta(interval=60))])
    await redis.hset(keys.META, mapping={NOT_JSON: b"not json", NULL_INTERVAL: b'{"i": null}'})
    await redis.zadd(keys.DUE, {NOT_JSON: time.time(), NULL_INTERVAL: time.time()})
    await redis.hset(keys.STATE, BAD_STATE, b"no-pipes-here")
    await redis.set(keys.snapshot(BAD_STATE), record_frame.join(b"\x07 not a snapshot", [
        b"not json", orjson.dumps([1, 1700000000, "rev.order.state_changed", "info", "a change", "evt_1"])]))
    await redis.rpush(keys.attempts("evt_1"), b"{broken", orjson.dumps({"destination": "hook", "ok": True}))
    await redis.xadd(keys.OUTBOX, {"e": b"not json"})
    await redis.xadd(keys.OUTBOX, {"e": orjson.dumps({"id": "evt_2", "type": "rev.order.state_changed"})})
    await redis.zadd(keys.WORKERS, {"broken-1": time.time() + 600})
    await redis.hset(keys.WORKER_BEATS, "broken-1", b'{"at": "yesterday"}')
    await redis.hset(keys.STATS, mapping={"polls:rev:changed": 3, "polls:rev:odd": b"many"})


async def test_unreadable_records_are_skipped_logged_with_their_key_and_counted(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await poison(redis)
    config = api_config(tmp_path, redis_url, sim, receiver)
    caplog.set_level(logging.WARNING)
    async with serving(config) as (_, http):
        status, body = await call(http, "GET", "/v1/watches", headers=AUTH)
        assert status == 200 and sorted(w["rkey"] for w in body["watches"]) == [BAD_STATE, GOOD]
        for rkey in (NOT_JSON, NULL_INTERVAL):
            assert any(f"{keys.META}[{rkey}]" in r.getMessage() for r in caplog.records), rkey

        status, body = await call(http, "GET", f"/v1/resources/{BAD_STATE}", headers=AUTH)
        assert status == 200, body
        assert body["watch"]["interval"] == 60 and body["state"] is None and body["snapshot"] is None
        (entry,) = body["history"]
        assert entry["id"] == "evt_1" and entry["deliveries"] == [{"destination": "hook", "ok": True}]
        status, body = await call(http, "GET", f"/v1/resources/{NULL_INTERVAL}", headers=AUTH)
        assert status == 200 and body["watch"] is None

        status, body = await call(http, "GET", "/v1/events", headers=AUTH)
        assert status == 200 and [e["id"] for e in body["events"]] == ["evt_2"]

        async with http.get("/metrics") as resp:
            text = await resp.text()
            assert resp.status == 200, text
        assert 'statehook_polls_total{outcome="changed",provider="rev"} 3.0' in text
        status, body = await call(http, "GET", "/healthz")
        assert status == 503 and body["reason"] == "no worker heartbeat"

    messages = "\n".join(r.getMessage() for r in caplog.records)
    for key in (f"{keys.STATE}[{BAD_STATE}]", keys.snapshot(BAD_STATE), f"{keys.snapshot(BAD_STATE)} (timeline)",
                keys.attempts("evt_1"), f"{keys.OUTBOX}[", f"{keys.WORKER_BEATS}[broken-1]",
                f"{keys.STATS}[polls:rev:odd]"):
        assert key in messages, key
    assert not [r for r in caplog.records if r.exc_info], "a skipped record is one line, not a traceback"
    assert int(await redis.hget(keys.STATS, "corrupt_records") or 0) >= 8


# ---- bounded durations -------------------------------------------------------------------------------

UNBOUNDED = ["inf", "Infinity", "nan", 1e308, "1e400", "1ms", "50ms", -5, 0, "31d", "99999999999999d", True]


async def test_an_interval_that_is_not_finite_and_within_bounds_is_refused_with_the_field(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    """One call with `"interval": "inf"` stored a watch that took down every worker: each
    such interval is refused with the field and the bounds, and nothing is stored."""
    config = api_config(tmp_path, redis_url, sim, receiver, providers={"rev": test_api.provider_blocks(sim)["rev"]})
    async with serving(config) as (_, http):
        for interval in UNBOUNDED:
            status, body = await call(http, "POST", "/v1/watches", headers=AUTH,
                                      json={**watch_body(), "interval": interval})
            assert status == 400, (interval, body)
            (problem,) = body["problems"]
            assert problem["field"] == "interval", interval
            assert "duration" in problem["problem"], problem
        assert await redis.hlen(keys.META) == 0
        status, body = await call(http, "POST", "/v1/watches", headers=AUTH,
                                  json={**watch_body(), "interval": "30d"})
        assert status == 201 and body["interval"] == 30 * 86400
