"""Shared fixtures: a private redis-server on a free port (never 6379), waiting helpers, and a
counter of a provider's body parses."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool

from providers.base import Provider
from simulator.artistree import ArtistreeSim
from simulator.core import SimProvider, Simulator
from simulator.receivers import WebhookReceiver
from tests.kit import WHSEC


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """URL of a redis-server started for this test session, on a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (make test installs it)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="statehook-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def redis_url(redis_server: str) -> AsyncIterator[str]:
    """A flushed database on the session's redis-server."""
    client = aioredis.from_url(redis_server)
    await client.flushall()
    await client.aclose()
    yield redis_server


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def arq(redis_url: str) -> AsyncIterator[ArqRedis]:
    """An ARQ pool on the same flushed database."""
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


async def wait_for(
    condition: Callable[[], Awaitable[bool] | bool], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Wait until `condition()` is true, checking often; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def count_parses(provider: Provider) -> list[bytes]:
    """The bodies `provider` parses from now on (the fingerprint fast path parses none)."""
    parsed: list[bytes] = []
    parse = provider.parse
    provider.parse = lambda body: parsed.append(body) or parse(body)  # type: ignore[method-assign]
    return parsed


@pytest.fixture
def sim_providers() -> list[SimProvider]:
    """The stand-ins `sim` serves: Artistree's. A module that needs others overrides this."""
    return [ArtistreeSim()]


@pytest.fixture
async def sim(sim_providers: list[SimProvider]) -> AsyncIterator[Simulator]:
    """The providers' simulator on a free loopback port."""
    simulator = Simulator(sim_providers)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver on loopback that verifies signatures made with tests.kit.WHSEC."""
    r = WebhookReceiver(secret=WHSEC)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def tmp_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        """A private file (mode 600), as a config file that holds secrets is kept: one others
        can read is warned about (config/file_secrets.py)."""
        path = tmp_path / "statehook.toml"
        path.write_text(text)
        path.chmod(0o600)
        return path

    return write


os.environ.setdefault("STATEHOOK_LOG_FORMAT", "text")
