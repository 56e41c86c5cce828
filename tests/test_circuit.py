"""A destination's circuit against real Redis, real workers and real receivers on loopback:
a receiver that is down (500s, then a closed port) and comes back gets every held delivery
at once, in order per resource, none lost; held deliveries spend no tries, survive a
SIGKILLed worker, and wait at most `max_hold`; retries waiting on their schedule do not
wait it out; Slack's flush keeps Slack's pace."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from config import Config
from core.circuit import Status
from model.events import Event
from simulator.receivers import WebhookReceiver
from simulator.slack import SlackStandIn
from store import keys
from store.circuit import Circuits
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker, write_config
from tests.test_routes import equals, event, publish
from worker.delivery_ops import destination_status
from worker.metrics import read_gauges

DOWN = [500] * 100_000
"""A receiver's script for "answers 500 until told otherwise" (`script.clear()` heals it)."""


@pytest.fixture
async def ops() -> AsyncIterator[WebhookReceiver]:
    """A second, healthy receiver: where the operational events about `hook` go."""
    r = WebhookReceiver(secret=WHSEC)
    await r.start()
    yield r
    await r.stop()


def config(tmp_path: Path, redis_url: str, hook_url: str, ops_url: str, *, worker: dict[str, Any] | None = None,
           **hook: Any) -> Config:
    return write_config(
        tmp_path / "statehook.toml", redis_url=redis_url, providers={},
        destinations={"hook": {"kind": "webhook", "url": hook_url, "secret": WHSEC, **hook},
                      "ops": {"kind": "webhook", "url": ops_url, "secret": WHSEC}},
        routes=[{"match": {"type": ["artistree.*"]}, "to": ["hook"]},
                {"match": {"type": ["statehook.*"]}, "to": ["ops", "hook"]}],
        worker=worker)


def changed(rid: str, seq: int) -> Event:
    return event("artistree.order.state_changed", "critical", to=f"state {seq}", rid=rid, seq=seq)


async def circuit_is(redis: aioredis.Redis, status: Status) -> bool:
    return await circuit_is_of(redis, "hook", status)


async def circuit_is_of(redis: aioredis.Redis, destination: str, status: Status) -> bool:
    return (await Circuits(redis).read(destination)).status is status


def first_arrivals(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    """Each event as it first arrived (a repeat of at-least-once delivery dropped)."""
    seen, out = set(), []
    for r in receiver.delivered:
        if r.webhook_id not in seen:
            seen.add(r.webhook_id)
            out.append(r.event)
    return out


def assert_in_order_per_resource(arrived: Sequence[dict[str, Any]], sent: Sequence[Event]) -> None:
    assert {e["id"] for e in arrived} >= {e.id for e in sent}, "lost"
    for rid in {e.resource["id"] for e in sent}:
        seqs = [e["seq"] for e in arrived if e["resource"]["id"] == rid]
        assert seqs == sorted(seqs), f"{rid} reordered: {seqs}"


def op_types(receiver: WebhookReceiver) -> list[str]:
    return [e["type"] for e in first_arrivals(receiver)]


async def test_a_receiver_down_then_healthy_gets_every_held_delivery_within_5s(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver, ops: WebhookReceiver
) -> None:
    """The destination's defaults: Svix's retry schedule (a second failure waits 5 min) and
    the circuit's (5 failures open it; probes 1 s, 2 s, then every 3 s)."""
    cfg = config(tmp_path, redis_url, receiver.url, ops.url)
    receiver.script = list(DOWN)
    sent: list[Event] = []
    async with running_worker(cfg):
        for seq in range(1, 9):  # 4 s of 500s: three orders change every half second
            batch = [changed(f"ord-{r}", seq) for r in range(3)]
            sent += batch
            await publish(redis, *batch)
            await asyncio.sleep(0.5)
        await wait_for(lambda: circuit_is(redis, Status.OPEN), what="the circuit open")
        port = int(receiver.base_url.rsplit(":", 1)[1])
        await receiver.stop()  # then 3 s of a closed port
        for seq in range(9, 15):
            batch = [changed(f"ord-{r}", seq) for r in range(3)]
            sent += batch
            await publish(redis, *batch)
            await asyncio.sleep(0.5)
        # what an operator sees meanwhile: /metrics and `notify status` name the open circuit
        (gauge,) = (await read_gauges(redis)).circuits
        assert (gauge.destination, gauge.status) == ("hook", Status.OPEN) and gauge.held > 0
        hook = next(row for row in await destination_status(redis, cfg) if row["name"] == "hook")
        assert hook["circuit"] == "open" and hook["held"] == await Circuits(redis).held_count("hook") > 0
        receiver.script.clear()
        await receiver.start(port=port)
        recovered_at = time.time()
        await wait_for(lambda: {e.id for e in sent} <= set(receiver.unique_ids()), timeout=15,
                       what="every held delivery")
        await wait_for(lambda: circuit_is(redis, Status.CLOSED), what="the circuit closed")
        await wait_for(lambda: "statehook.destination.recovered" in op_types(ops), what="recovered")
    last = max(r.at for r in receiver.delivered if r.webhook_id in {e.id for e in sent})
    assert last - recovered_at <= 5.0, f"the last held delivery came {last - recovered_at:.1f}s after recovery"
    assert_in_order_per_resource(first_arrivals(receiver), sent)
    assert op_types(ops) == ["statehook.destination.unhealthy", "statehook.destination.recovered"]
    unhealthy, recovered = first_arrivals(ops)
    assert unhealthy["data"]["destination"] == "hook" and unhealthy["data"]["reason"].startswith("HTTP 500")
    assert recovered["data"]["held"] > 0 and recovered["resource"]["key"] == "statehook:destination:hook"
    assert all(not e["type"].startswith("statehook.") for e in first_arrivals(receiver))  # never about itself
    assert await redis.xlen(keys.DLQ) == 0
    assert await Circuits(redis).held_count("hook") == 0
    assert (await read_gauges(redis)).circuits == ()


async def test_held_deliveries_spend_no_tries_and_wait_at_most_max_hold(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver, ops: WebhookReceiver
) -> None:
    """Two retries 0.1 s apart would dead-letter every delivery of a 3 s outage; held, none
    is. Then an outage longer than `max_hold` (1 s here) dead-letters what it held."""
    fast: dict[str, Any] = {"retry_schedule": [0.1, 0.1], "jitter": 0.0,
            "circuit": {"failures": 3, "probe_after": 0.2, "probe_max": 0.5}}
    cfg = config(tmp_path, redis_url, receiver.url, ops.url, **fast)
    receiver.script = list(DOWN)
    sent = [changed(f"ord-{i}", 1) for i in range(10)]
    async with running_worker(cfg):
        await publish(redis, *sent[:3])
        await wait_for(lambda: circuit_is(redis, Status.OPEN), what="the circuit open")
        await publish(redis, *sent[3:])
        await asyncio.sleep(3.0)
        assert await redis.xlen(keys.DLQ) == 0 and await Circuits(redis).held_count("hook") == 10
        receiver.script.clear()
        await wait_for(lambda: len(receiver.unique_ids()) == 10, what="the ten deliveries")
    for e in sent:  # the probes' and the flush's attempts are numbered after the first ones
        stored = await redis.lrange(keys.attempts(e.id), 0, -1)  # type: ignore[misc]
        attempts = [orjson.loads(a)["attempt"] for a in stored]
        assert attempts and max(attempts) <= 3, (e.id, attempts)

    cfg = config(tmp_path, redis_url, receiver.url, ops.url, **{**fast, "circuit": {**fast["circuit"], "max_hold": 1}})
    receiver.script = list(DOWN)
    late = [changed(f"ord-{i}", 2) for i in range(4)]
    async with running_worker(cfg):
        await publish(redis, *late)
        await wait_for(lambda: equals(redis.xlen(keys.DLQ), 4), timeout=10, what="four held too long")
    reasons = {f[b"reason"].decode() for _, f in await redis.xrange(keys.DLQ)}
    assert reasons == {"held for more than 1s while the destination was down"}


async def test_a_retry_waiting_on_its_schedule_does_not_wait_it_out(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver, ops: WebhookReceiver
) -> None:
    """ord-0's second attempt fails before the circuit opens: its next is 5 minutes away.
    The circuit opening makes it run at once (held), so it goes with the flush."""
    cfg = config(tmp_path, redis_url, receiver.url, ops.url, retry_schedule=[0.3, 300], jitter=0.0,
                 circuit={"failures": 4, "probe_after": 0.2, "probe_max": 0.5})
    receiver.script = list(DOWN)
    first = changed("ord-0", 1)
    async with running_worker(cfg):
        await publish(redis, first)
        await wait_for(lambda: receiver.attempts[first.id] == 2, what="its second attempt")
        others = [changed(f"ord-{i}", 1) for i in range(1, 4)]
        await publish(redis, *others)
        await wait_for(lambda: circuit_is(redis, Status.OPEN), what="the circuit open")
        await wait_for(lambda: equals(Circuits(redis).held_count("hook"), 4), what="all four held")
        receiver.script.clear()
        healed = time.time()
        await wait_for(lambda: first.id in receiver.unique_ids(), timeout=10, what="the 5-minute retry")
    assert next(r.at for r in receiver.delivered if r.webhook_id == first.id) - healed < 3


async def test_held_deliveries_survive_a_killed_worker(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver, ops: WebhookReceiver
) -> None:
    """Worker A (a process) holds the deliveries and is killed (-9) while the receiver is
    down; worker B, started after the receiver recovers, probes and flushes them all."""
    cfg = config(tmp_path, redis_url, receiver.url, ops.url, circuit={"failures": 3},
                 worker={"takeover_after": "3s", "health_interval": "1s"})
    receiver.script = list(DOWN)
    sent = [changed(f"ord-{i % 3}", 1 + i // 3) for i in range(12)]
    proc = _run_worker(tmp_path / "statehook.toml", tmp_path / "a.log")
    try:
        await publish(redis, *sent)
        await wait_for(lambda: equals(Circuits(redis).held_count("hook"), 12), timeout=30, what="A holding all")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    receiver.script.clear()
    async with running_worker(cfg):
        await wait_for(lambda: {e.id for e in sent} <= set(receiver.unique_ids()), timeout=20,
                       what="B flushing what A held")
    assert_in_order_per_resource(first_arrivals(receiver), sent)


def _run_worker(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "STATEHOOK_CONFIG_FILE": str(config_path), "STATEHOOK_LOG_LEVEL": "info"}
    with log.open("wb") as out:
        return subprocess.Popen([str(Path(sys.executable).parent / "statehook"), "run"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def test_slacks_flush_keeps_slacks_pace(tmp_path: Path, redis_url: str, redis: aioredis.Redis) -> None:
    """A Slack webhook down (500, `internal_error`) then up: ten held messages of five
    orders go in order per order, one a second, each waiting for its slot in the flush
    rather than put off to a retry, and the stand-in (which refuses faster) refuses none."""
    slack = SlackStandIn()
    await slack.start()
    try:
        cfg = write_config(
            tmp_path / "statehook.toml", redis_url=redis_url, providers={},
            destinations={"chat": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"),
                                   "circuit": {"failures": 2, "probe_after": 1, "probe_max": 2}}},
            routes=[{"match": {"type": ["artistree.*"]}, "to": ["chat"]}])
        slack.fail("T1/B1/ops", "internal_error", times=3)  # two deliveries open it, the first probe fails
        sent = [changed(f"ord-{seq % 5}", seq) for seq in range(1, 11)]  # five orders, two changes each
        async with running_worker(cfg):
            await publish(redis, *sent[:2])
            await wait_for(lambda: circuit_is_of(redis, "chat", Status.OPEN), what="the circuit open")
            await publish(redis, *sent[2:])
            await wait_for(lambda: len(slack.to("T1/B1/ops")) == 10, timeout=30, what="the ten messages")
            assert await redis.hget(keys.STATS, "held:chat") is not None
        got = slack.to("T1/B1/ops")
        for rid in (f"ord-{i}" for i in range(5)):
            seqs = [int(m.payload["text"].rsplit(" ", 1)[-1]) for m in got
                    if f"_{rid}_" in orjson.dumps(m.payload).decode()]
            assert len(seqs) == 2 and seqs == sorted(seqs), (rid, seqs)
        assert all(b.at - a.at >= 0.85 for a, b in itertools.pairwise(got))  # Slack's pace
        assert slack.rate_limited() == 0
        for e in sent:  # each waited for its slot in the flush: none was put off to a retry
            stored = await redis.lrange(keys.attempts(e.id), 0, -1)  # type: ignore[misc]
            assert not [a for a in map(orjson.loads, stored) if "busy" in (a["error"] or "")], e.id
    finally:
        await slack.stop()
