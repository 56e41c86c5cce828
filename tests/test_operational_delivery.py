"""The delivery side's operational events against real Redis, a real worker and real
receivers: `statehook.delivery.dead_lettered` reaches the other destinations but never the
one it is about (a Slack destination's never reaches Slack), the dead letter of an
operational event tells nothing more, and a destination disabled by a 410 and enabled again
tells each transition once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from model.events import Event
from simulator.receivers import WebhookReceiver
from simulator.slack import SlackStandIn
from store import keys
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker, timeline, write_config
from tests.test_routes import equals, event, publish
from worker.delivery_ops import disable_destination, enable_destination

FAST = {"retry_schedule": [0.05, 0.05], "jitter": 0.0}


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn()
    await standin.start()
    yield standin
    await standin.stop()


def failed(rid: str) -> Event:
    return event("artistree.order.state_changed", "critical", to="Failed", rid=rid)


def operational(receiver: WebhookReceiver, event_type: str) -> list[dict[str, Any]]:
    return [r.event for r in receiver.delivered if r.event["type"] == event_type]


async def outbox_types(redis: aioredis.Redis) -> list[str]:
    return [orjson.loads(f[b"e"])["type"] for _, f in await redis.xrange(keys.OUTBOX)]


async def test_dead_lettered_for_slack_reaches_the_webhook_but_never_slack(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, slack: SlackStandIn, receiver: WebhookReceiver
) -> None:
    cfg = write_config(
        tmp_path / "statehook.toml", redis_url=redis_url, providers={},
        destinations={"chat": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"), **FAST},
                      "hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC, **FAST}},
        routes=[{"to": ["chat", "hook"]}])  # everything everywhere: operational events included
    slack.fail("T1/B1/ops", "invalid_payload")
    order = failed("ord-1")
    async with running_worker(cfg):
        await publish(redis, order)
        await wait_for(lambda: bool(operational(receiver, "statehook.delivery.dead_lettered")), what="the webhook told")
        await asyncio.sleep(0.5)  # time enough for a (wrong) delivery to Slack as well
    (told,) = operational(receiver, "statehook.delivery.dead_lettered")
    assert told["data"] == {"destination": "chat", "reason": "invalid_payload", "event_id": order.id,
                            "event_type": order.type, "status": 400, "attempts": 1}
    assert told["provider"] == "statehook" and told["resource"]["key"] == "statehook:destination:chat"
    assert [r.event["id"] for r in receiver.delivered if r.event["id"] == order.id] == [order.id]
    assert slack.messages == [] and [e for _, _, e in slack.rejected] == ["invalid_payload"]  # Slack saw the order only


async def test_the_dead_letter_of_an_operational_event_tells_nothing_more(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, slack: SlackStandIn, receiver: WebhookReceiver
) -> None:
    """chat dead-letters the order; `dead_lettered` goes to hook, which refuses it for good:
    its dead letter is not told again (hook and chat both failing would go round for ever)."""
    cfg = write_config(
        tmp_path / "statehook.toml", redis_url=redis_url, providers={},
        destinations={"chat": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"), **FAST},
                      "hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC, **FAST}},
        routes=[{"match": {"type": ["artistree.*"]}, "to": ["chat"]}, {"match": {"type": ["statehook.*"]},
                                                                         "to": ["hook", "chat"]}])
    slack.fail("T1/B1/ops", "invalid_payload")
    receiver.script = [400]
    async with running_worker(cfg):
        await publish(redis, failed("ord-1"))
        await wait_for(lambda: equals(redis.xlen(keys.DLQ), 2), what="both dead letters")
        await asyncio.sleep(0.5)
    dead = [(f[b"destination"].decode(), orjson.loads(f[b"event"])["type"]) for _, f in await redis.xrange(keys.DLQ)]
    assert sorted(dead) == [("chat", "artistree.order.state_changed"), ("hook", "statehook.delivery.dead_lettered")]
    assert (await outbox_types(redis)).count("statehook.delivery.dead_lettered") == 1


async def test_disabled_and_enabled_are_told_once_per_transition(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    ops = WebhookReceiver(secret=WHSEC)
    await ops.start()
    try:
        cfg = write_config(
            tmp_path / "statehook.toml", redis_url=redis_url, providers={},
            destinations={"hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC, **FAST},
                          "ops": {"kind": "webhook", "url": ops.url, "secret": WHSEC}},
            routes=[{"match": {"type": ["artistree.*"]}, "to": ["hook"]},
                    {"match": {"type": ["statehook.*"]}, "to": ["ops", "hook"]}])
        receiver.script = [410, 410, 410]  # three deliveries at once meet the 410
        async with running_worker(cfg):
            await publish(redis, *(failed(f"ord-{i}") for i in range(3)))
            await wait_for(lambda: bool(operational(ops, "statehook.destination.disabled")), what="disabled told")
            await wait_for(lambda: equals(redis.xlen(keys.DLQ), 3), what="three dead letters")
            assert await enable_destination(redis, cfg, "hook")  # what `statehook notify enable hook` does
            assert not await enable_destination(redis, cfg, "hook")
            await wait_for(lambda: bool(operational(ops, "statehook.destination.enabled")), what="enabled told")
            await asyncio.sleep(0.5)
    finally:
        await ops.stop()
    types = [r.event["type"] for r in ops.delivered]
    assert types.count("statehook.destination.disabled") == 1 and types.count("statehook.destination.enabled") == 1
    assert types.count("statehook.delivery.dead_lettered") == 1  # one per destination within the throttle
    (disabled,) = operational(ops, "statehook.destination.disabled")
    assert disabled["data"]["destination"] == "hook" and disabled["data"]["reason"].startswith("HTTP 410")
    assert disabled["severity"] == "critical"
    assert not any(r.event["type"].startswith("statehook.") for r in receiver.delivered)  # never about itself


async def test_a_destinations_timeline_keeps_the_configured_history_length(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    """What a worker tells of a destination (disabled on a 410, a dead letter) and what an
    operator does to it (enabled, disabled by hand) go to one timeline, kept to
    `worker.history_length` like every other (it was cut to 50 whatever the setting)."""
    cfg = write_config(
        tmp_path / "statehook.toml", redis_url=redis_url, providers={}, worker={"history_length": 2},
        destinations={"hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC, **FAST}},
        routes=[{"match": {"type": ["artistree.*"]}, "to": ["hook"]}])
    subject = "statehook:destination:hook"
    receiver.script = [410]
    async with running_worker(cfg):
        await publish(redis, failed("ord-1"))
        await wait_for(lambda: redis.hexists(keys.DISABLED, "hook"), what="disabled by the worker")
        await wait_for(lambda: equals(redis.xlen(keys.DLQ), 1), what="the dead letter")
    assert await enable_destination(redis, cfg, "hook")
    await disable_destination(redis, cfg, "hook", "by the test")
    assert await enable_destination(redis, cfg, "hook")
    entries = [orjson.loads(raw) for raw in await timeline(redis, subject)]
    assert len(entries) == 2  # of five told: disabled, dead-lettered, enabled, disabled, enabled


async def test_show_and_the_api_give_a_destinations_timeline(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    """`statehook show statehook:destination:hook` said "not watched and was never polled"
    while /v1/events had that timeline (found by a fresh-user trial)."""
    from typer.testing import CliRunner

    from worker.api_resources import resource_view
    from worker.cli import app

    cfg = write_config(tmp_path / "statehook.toml", redis_url=redis_url, providers={},
                       destinations={"hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC, **FAST}},
                       routes=[{"match": {"type": ["artistree.*"]}, "to": ["hook"]}])
    subject = "statehook:destination:hook"
    assert await resource_view(redis, subject) is None  # nothing told of it yet
    await disable_destination(redis, cfg, "hook", "by the test")
    view = await resource_view(redis, subject)
    assert view is not None and view["watch"] is None and view["snapshot"] is None
    assert [e["type"] for e in view["history"]] == ["statehook.destination.disabled"]
    result = await asyncio.to_thread(CliRunner().invoke, app, ["show", subject, "-c", str(cfg.source)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{subject}  not watched") and "statehook.destination.disabled" in result.output
    assert await resource_view(redis, "statehook:destination:other") is None
