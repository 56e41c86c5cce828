"""A Redis that answers reads but refuses writes (`NOREPLICAS`: min-replicas-to-write not met;
`OOM`: maxmemory under noeviction) is one outage, logged once when it starts and once when
writes work again: a loop whose reads succeed meanwhile (the job pickup, the start-up ping)
does not end it, so the log does not flap between "unavailable" and "available again" at
every pickup. The change made meanwhile is delivered after."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.resources import ResourceRef
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from simulator.redisctl import RedisProcess
from tests.conftest import wait_for
from tests.kit import running_worker
from tests.test_survive_redis import _baselined, _config, _states
from worker.redis_client import redis_client

REFUSALS = {
    "NOREPLICAS": ({"min-replicas-to-write": "1"}, {"min-replicas-to-write": "0"}),
    "OOM": ({"maxmemory-policy": "noeviction", "maxmemory": "1"}, {"maxmemory": "0"}),
}

NAMED = {"NOREPLICAS": "NOREPLICAS", "OOM": "OutOfMemoryError"}  # redis-py strips OOM's code: named by its class


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    with RedisProcess() as proc:
        yield proc


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_writes_refused_are_one_outage_logged_once_and_the_change_arrives_after(
    refusal: str, tmp_path: Path, own_redis: RedisProcess, sim: Simulator, receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    refuse, allow = REFUSALS[refusal]
    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    config = _config(tmp_path, own_redis.url, sim, receiver, oid)
    admin = redis_client(own_redis.url)
    try:
        with caplog.at_level(logging.WARNING, logger="statehook.redis"):
            async with running_worker(config) as worker:
                await _baselined(own_redis.url, ResourceRef("artistree", "order", oid).key)
                for name, value in refuse.items():
                    await admin.config_set(name, value)
                sim["artistree"].set_state(oid, "Failed")
                await asyncio.sleep(4)  # polls (1 s interval), heartbeats (1 s) and pickups fail and succeed
                assert not worker.main_task.done()
                during = [r.getMessage() for r in caplog.records if r.name == "statehook.redis"]
                assert "Failed" not in _states(receiver)
                for name, value in allow.items():
                    await admin.config_set(name, value)
                await wait_for(lambda: "Failed" in _states(receiver), timeout=20, what="the change made meanwhile")
        lines = [r.getMessage() for r in caplog.records if r.name == "statehook.redis"]
    finally:
        await admin.aclose()
    assert len(during) == 1 and f"Redis unavailable ({NAMED[refusal]}," in during[0], during
    assert len(lines) == 2 and "available again" in lines[1], lines
