"""Slack, against a local stand-in that enforces Slack's limits: the message a state change
becomes, the error strings that dead-letter, 429 and Retry-After, one message per second
per webhook across two workers, and threads per resource through chat.postMessage."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from config import Config
from model.events import Event, Severity
from model.resources import ResourceRef
from model.routes import Route
from notifiers.slack import build_message
from notifiers.templates import TemplateBook
from simulator.core import Simulator
from simulator.slack import SlackStandIn, check_blocks
from store import keys
from tests.conftest import wait_for
from tests.kit import running_worker, write_config
from tests.test_routes import event, publish

FAST = {"retry_schedule": [0.05, 0.05, 0.05], "jitter": 0.0}


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn()
    await standin.start()
    yield standin
    await standin.stop()


def config(tmp_path: Path, redis_url: str, destinations: dict[str, dict[str, Any]],
           routes: list[dict[str, Any]] | None = None, **extra: Any) -> Config:
    return write_config(
        tmp_path / "statehook.toml", redis_url=redis_url, providers=extra.pop("providers", {}),
        destinations=destinations, routes=routes or [{"to": list(destinations)}], **extra,
    )


def failed(rid: str = "ord-1", seq: int = 1, severity: str = "critical") -> Event:
    return event("artistree.order.state_changed", severity, to="Failed", rid=rid, seq=seq, title=f"Poster {rid}",
                 url=f"https://human.artistree.example/orders/{rid}")


async def test_a_state_change_reaches_slack_as_block_kit_with_a_fallback_text(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, slack: SlackStandIn
) -> None:
    order = sim["artistree"].add_order(state="In Progress", title="Poster v3")
    oid = order["order_id"]
    cfg = config(
        tmp_path, redis_url, {"ops": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"), **FAST}},
        [{"match": {"severity": ["critical"]}, "to": ["ops"]}],
        providers={"artistree": {"base_url": sim.url("artistree"), "token_url": sim.url("artistree") + "/oauth2/token",
                                 "client_id": "sim-client", "client_secret": "sim-secret"}},
        watches=[{"provider": "artistree", "ids": [oid], "interval": "0.2s"}],
    )
    async with running_worker(cfg):
        await wait_for(lambda: redis.hexists(keys.STATE, ResourceRef("artistree", "order", oid).key))
        sim["artistree"].set_state(oid, "Failed")
        await wait_for(lambda: len(slack.messages) == 1, what="the Slack message")

    (message,) = slack.messages
    payload = message.payload
    assert message.target == "T1/B1/ops"
    assert payload["text"] == "[CRITICAL] Order “Poster v3”: In Progress → Failed"
    section = payload["blocks"][0]["text"]["text"]
    assert section.startswith(":red_circle: *<")  # the severity at a glance, the title a link
    assert "Poster v3" in section and f"`{oid}`" in section and "artistree order" in section
    assert "*In Progress* → *Failed*" in section
    button = next(b for b in payload["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["url"].endswith(f"/v1/orders/{oid}")
    context = payload["blocks"][-1]["elements"][0]["text"]
    assert "*critical*" in context and "artistree.order.state_changed" in context
    assert check_blocks(payload) is None
    assert slack.rejected == []


@pytest.mark.parametrize(
    ("error", "status"),
    [("invalid_payload", 400), ("action_prohibited", 403), ("channel_not_found", 404), ("channel_is_archived", 410)],
)
async def test_slack_errors_are_dead_lettered_with_slacks_own_string(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, slack: SlackStandIn, error: str, status: int
) -> None:
    cfg = config(tmp_path, redis_url, {"ops": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"), **FAST}})
    slack.fail("T1/B1/ops", error)
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: redis.xlen(keys.DLQ), what="a dead letter")
    (_, fields), = await redis.xrange(keys.DLQ)
    assert fields[b"reason"].decode() == error
    assert fields[b"status"].decode() == str(status)
    assert fields[b"attempts"] == b"1"
    assert slack.messages == []


async def test_a_429_is_retried_after_its_retry_after(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, slack: SlackStandIn
) -> None:
    cfg = config(tmp_path, redis_url, {"ops": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"), **FAST}})
    slack.fail("T1/B1/ops", "rate_limited")  # answered 429 with Retry-After: 1
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: len(slack.messages) == 1, what="the retried message")
    (_, refused_at, error), = slack.rejected
    assert error == "rate_limited"
    assert slack.messages[0].at - refused_at >= 0.95  # the schedule says 0.05 s; Slack said 1 s
    attempts = [orjson.loads(a) for a in await redis.lrange(keys.attempts(failed().id), 0, -1)]
    assert [(a["ok"], a["status"]) for a in reversed(attempts)] == [(False, 429), (True, 200)]


async def test_a_408_from_a_proxy_is_retried_like_a_5xx(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, slack: SlackStandIn
) -> None:
    cfg = config(tmp_path, redis_url, {"ops": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"), **FAST}})
    slack.fail("T1/B1/ops", "request_timeout")
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: len(slack.messages) == 1, what="the retried message")
    assert await redis.xlen(keys.DLQ) == 0
    attempts = [orjson.loads(a) for a in await redis.lrange(keys.attempts(failed().id), 0, -1)]
    assert [(a["ok"], a["status"]) for a in reversed(attempts)] == [(False, 408), (True, 200)]


async def test_a_slack_outage_is_retried_then_dead_lettered_when_the_schedule_is_spent(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, slack: SlackStandIn
) -> None:
    cfg = config(tmp_path, redis_url, {"ops": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"),
                                               "retry_schedule": [0.05, 0.05], "jitter": 0.0}})
    slack.fail("T1/B1/ops", "internal_error", times=3)
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: redis.xlen(keys.DLQ), what="a dead letter")
    (_, fields), = await redis.xrange(keys.DLQ)
    assert fields[b"reason"].startswith(b"gave up after 3 attempts: HTTP 500")
    assert len(slack.rejected) == 3


async def test_two_workers_hold_one_message_per_second_per_webhook(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, slack: SlackStandIn
) -> None:
    cfg = config(tmp_path, redis_url, {
        "ops": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B1/ops"), **FAST},
        "dev": {"kind": "slack", "webhook_url": slack.webhook_url("T1/B2/dev"), **FAST},
    })
    async with running_worker(cfg), running_worker(cfg):
        await publish(redis, *(failed(f"ord-{i}") for i in range(4)))
        await wait_for(lambda: len(slack.messages) == 8, timeout=20, what="8 messages")
    assert slack.rate_limited() == 0
    for target in ("T1/B1/ops", "T1/B2/dev"):
        times = [m.at for m in slack.to(target)]
        assert len(times) == 4
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.9, gaps
    # each webhook has its own schedule: the two went side by side, not one after the other
    span = max(m.at for m in slack.messages) - min(m.at for m in slack.messages)
    assert span < 5.0


async def test_a_burst_longer_than_max_wait_is_handed_back_as_retries(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    standin = SlackStandIn(interval=0.2, tolerance=0.02)
    await standin.start()
    try:
        cfg = config(tmp_path, redis_url, {"ops": {
            "kind": "slack", "webhook_url": standin.webhook_url("T1/B1/ops"), "min_interval": 0.2, "max_wait": 0.3,
            "retry_schedule": [0.05] * 20, "jitter": 0.0}})
        async with running_worker(cfg):
            await publish(redis, *(failed(f"ord-{i}") for i in range(6)))
            await wait_for(lambda: len(standin.messages) == 6, timeout=15, what="6 messages")
        assert standin.rate_limited() == 0
        times = sorted(m.at for m in standin.messages)
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.18
        busy = 0
        for i in range(6):
            attempts = [orjson.loads(a) for a in await redis.lrange(keys.attempts(failed(f"ord-{i}").id), 0, -1)]
            busy += sum(1 for a in attempts if (a["error"] or "").startswith("webhook busy"))
        assert busy > 0  # some waited as retries, not inside a job
        assert await redis.xlen(keys.DLQ) == 0
    finally:
        await standin.stop()


async def test_the_bot_token_threads_every_event_of_a_resource(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    standin = SlackStandIn(interval=0.2, tolerance=0.02)
    await standin.start()
    try:
        cfg = config(tmp_path, redis_url, {"ops": {
            "kind": "slack", "bot_token": standin.bot_token, "channel": "C0OPS", "slack_api_url": standin.api_url,
            "min_interval": 0.2, **FAST}})
        first, second = failed("ord-1", 1), failed("ord-1", 2)
        info = failed("ord-1", 3, severity="info")
        other = failed("ord-2", 1)
        async with running_worker(cfg):
            await publish(redis, first, second, other)  # two of ord-1 at once: still one thread
            await wait_for(lambda: len(standin.messages) == 3, what="3 messages")
            await publish(redis, info)
            await wait_for(lambda: len(standin.messages) == 4, what="the 4th message")
        by_event = {m.payload["blocks"][-1]["elements"][0]["text"].rsplit(" · ", 1)[1]: m for m in standin.messages}
        ord_1 = [by_event[e.id] for e in (first, second, info)]
        (root,) = [m for m in ord_1 if m.thread_ts is None]
        assert all(m.thread_ts == root.ts for m in ord_1 if m is not root)
        assert by_event[info.id] is not root
        assert "reply_broadcast" not in by_event[info.id].payload  # info stays in the thread
        (critical_reply,) = [m for m in ord_1 if m is not root and m is not by_event[info.id]]
        assert critical_reply.payload["reply_broadcast"] is True  # critical also shows in the channel
        assert by_event[other.id].thread_ts is None
        stored = [k async for k in redis.scan_iter(match=keys.SLACK_PREFIX + "thread:*")]
        assert len(stored) == 2
        assert standin.rejected == []
    finally:
        await standin.stop()


async def test_a_thread_that_vanished_is_started_again(tmp_path: Path, redis_url: str, redis: aioredis.Redis) -> None:
    standin = SlackStandIn(interval=0.0, tolerance=0.0)
    await standin.start()
    try:
        cfg = config(tmp_path, redis_url, {"ops": {
            "kind": "slack", "bot_token": standin.bot_token, "channel": "C0OPS", "api_url": standin.api_url, **FAST}})
        async with running_worker(cfg):
            await publish(redis, failed("ord-1", 1))
            await wait_for(lambda: len(standin.messages) == 1)
            (key,) = [k async for k in redis.scan_iter(match=keys.SLACK_PREFIX + "thread:*")]
            await redis.set(key, "1700000000.000001")  # a thread Slack no longer knows
            await publish(redis, failed("ord-1", 2))
            await wait_for(lambda: len(standin.messages) == 2)
        assert [e for _, _, e in standin.rejected] == ["thread_not_found"]
        assert standin.messages[1].thread_ts is None
        assert (await redis.get(key)).decode() == standin.messages[1].ts
    finally:
        await standin.stop()


async def test_an_invalid_bot_token_is_dead_lettered_with_slacks_error(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, slack: SlackStandIn
) -> None:
    cfg = config(tmp_path, redis_url, {"ops": {
        "kind": "slack", "bot_token": "xoxb-wrong", "channel": "C0OPS", "api_url": slack.api_url, **FAST}})
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: redis.xlen(keys.DLQ), what="a dead letter")
    (_, fields), = await redis.xrange(keys.DLQ)
    assert fields[b"reason"] == b"invalid_auth"
    assert b"xoxb-wrong" not in b"".join(await redis.lrange(keys.attempts(failed().id), 0, -1))


def test_a_message_stays_within_slacks_limits() -> None:
    huge = "x" * 5000
    changes = [{"path": f"/field_{i}", "old": huge, "new": huge} for i in range(60)]
    ev = event("artistree.order.state_changed", "warning", to="Action Required", title="<&>" + huge + "<&>",
               changes=changes,
               url="https://example.com/" + "a" * 4000)
    payload = build_message(ev, TemplateBook("ops"))
    assert check_blocks(payload) is None
    assert len(payload["blocks"]) <= 50
    assert len(payload["blocks"][0]["text"]["text"]) <= 3000
    fields = payload["blocks"][1]["fields"]
    assert len(fields) == 10 and all(len(f["text"]) <= 2000 for f in fields)
    section = payload["blocks"][0]["text"]["text"]
    assert "&lt;&amp;&gt;" in section and "<&>" not in section  # escaped, and clipped after escaping
    assert not re.search(r"&[a-z]*$", section)  # no entity cut in half
    assert not any(b["type"] == "actions" for b in payload["blocks"])  # a URL over 3000 chars is no button


def test_a_route_template_overrides_the_destinations_and_the_default() -> None:
    routes = [Route.model_validate({"match": {"severity": "critical"}, "to": ["ops"],
                                    "template": {"slack": "PAGE {{ title }} ({{ to_state }})"}}),
              Route.model_validate({"to": ["ops"]})]
    book = TemplateBook("ops", {"slack": "FYI {{ event.summary }}", "subject": "S: {{ event.type }}"}, routes)
    paged = build_message(failed(), book)
    assert paged["blocks"][0]["text"]["text"] == "PAGE Poster ord-1 (Failed)"
    assert paged["text"] == "S: artistree.order.state_changed"
    fyi = build_message(failed(severity="info"), book)
    assert fyi["blocks"][0]["text"]["text"] == "FYI artistree.order.state_changed Failed"


def rev_comment(by: str, text: str) -> Event:
    """A Rev comment as providers/rev.py makes it: the author and the words in the summary."""
    return Event(
        id="evt_rev_ord-7_3_comment_added", type="rev.order.comment_added", provider="rev",
        resource={"kind": "order", "id": "ord-7", "key": "rev:order:ord-7", "url": None, "title": "ord-7"},
        seq=3, detected_at="2026-11-23T10:15:02Z", severity=Severity.INFO,
        summary=f"Rev order ord-7: comment by {by}: {text}",
        data={"by": by, "text": text}, snapshot=None,
    )


@pytest.mark.parametrize(
    ("ev", "shown"),
    [
        (rev_comment("<!here>", "see <https://evil.example|the fix> & reply"),
         "[INFO] Rev order ord-7: comment by &lt;!here&gt;: see &lt;https://evil.example|the fix&gt; &amp; reply"),
        (event("artistree.order.state_changed", "critical", to="<!channel> <https://evil.example|click>",
               title="Poster <!subteam^S0123> & co"),
         "[CRITICAL] artistree.order.state_changed &lt;!channel&gt; &lt;https://evil.example|click&gt;"),
    ],
    ids=["rev-comment-by-here", "status-with-channel-and-link"],
)
def test_the_fallback_text_shows_mentions_and_links_never_fires_them(ev: Event, shown: str) -> None:
    payload = build_message(ev, TemplateBook("ops"))
    assert payload["text"] == shown
    section = payload["blocks"][0]["text"]["text"]
    for message_text in (payload["text"], section):
        assert "<!" not in message_text and "<https://evil" not in message_text
    assert check_blocks(payload) is None


def test_a_long_escaped_fallback_text_is_clipped_between_entities() -> None:
    for pad in range(6):
        ev = rev_comment("x", "y" * pad + "<" * 3000)
        text = build_message(ev, TemplateBook("ops"))["text"]
        assert len(text) <= 3000 and text.endswith("…")
        body = text[:-1]
        assert "<" not in body and body.replace("&lt;", "").count("&") == 0, body[-8:]


def test_a_resource_url_cannot_end_its_link_early_or_fill_the_message() -> None:
    crafted = event("artistree.order.state_changed", "critical", to="Failed", title="Poster",
                    url="https://example.com/o/1|<!channel>>x y")
    section = build_message(crafted, TemplateBook("ops"))["blocks"][0]["text"]["text"]
    assert "<https://example.com/o/1%7C%3C!channel%3E%3Ex%20y|Poster>" in section
    assert "<!channel>" not in section
    long = event("artistree.order.state_changed", "critical", to="Failed", title="Poster",
                 url="https://example.com/" + "a" * 2500)
    payload = build_message(long, TemplateBook("ops"))
    assert "https://example.com/" not in payload["blocks"][0]["text"]["text"]  # shown unlinked
    assert "*Poster*" in payload["blocks"][0]["text"]["text"]
