"""`statehook events tail -f` lives through a Redis that goes away (the port closed for a
while): one note when it goes, one when it is back, and the event committed after is
printed. It exited with `error: redis unavailable` (found by a fresh-user trial)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from simulator.redisctl import RedisProcess
from store import keys
from tests.conftest import wait_for
from tests.test_api import api_config
from tests.test_routes import event
from worker.redis_client import redis_client

STATEHOOK = str(Path(sys.executable).parent / "statehook")


async def _reading(url: str) -> bool:
    """Whether a client of that Redis is blocked in an XREAD (the tail, following)."""
    client = redis_client(url)
    try:
        return any(c.get("cmd") == "xread" for c in await client.client_list())
    finally:
        await client.aclose()


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    with RedisProcess(appendonly=True) as proc:
        yield proc


async def test_events_tail_follows_through_a_redis_restart(
    tmp_path: Path, own_redis: RedisProcess, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, own_redis.url, sim, receiver)
    tail = await asyncio.create_subprocess_exec(
        STATEHOOK, "events", "tail", "-f", "-n", "0", "--max-events", "1", "--json", "-c", str(config.source),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_for(lambda: _reading(own_redis.url), timeout=20, what="the tail following the outbox")
        await asyncio.to_thread(own_redis.stop)
        await asyncio.sleep(3)
        assert tail.returncode is None, "it exited while Redis was down"
        await asyncio.to_thread(own_redis.start)
        client = redis_client(own_redis.url)
        try:
            await client.xadd(keys.OUTBOX, {"e": event("artistree.order.state_changed", to="Failed").to_json()})
        finally:
            await client.aclose()
        raw_out, raw_err = await asyncio.wait_for(tail.communicate(), timeout=30)
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.communicate()
    out, err = raw_out.decode(), raw_err.decode()
    assert tail.returncode == 0, err
    assert [x["type"] for x in orjson.loads(out)] == ["artistree.order.state_changed"]
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 2 and "Redis unavailable" in notes[0] and "available again" in notes[1], err
