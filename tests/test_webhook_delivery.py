"""Webhooks as Svix and Convoy deliver them, checked with real receivers on loopback:
several secrets give several signatures that each verify; custom headers; Retry-After;
the timeout; 410 Gone disables the destination until an operator enables it again."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from arq.connections import ArqRedis, RedisSettings, create_pool
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from config import Config, ConfigError
from core.backoff import delivery_delay
from notifiers.base import DEFAULT_SCHEDULE
from notifiers.webhook import WebhookSettings
from simulator.receivers import WebhookReceiver
from store import keys
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker, write_config
from tests.test_routes import equals, event, publish
from worker.delivery_ops import destination_status, enable_destination, replay_dead_letters

FAST = {"retry_schedule": [0.05, 0.05, 0.05], "jitter": 0.0}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass(frozen=True, slots=True)
class Request:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    """A receiver that keeps every request and answers from `script`: (status, headers,
    delay) tuples, consumed in order, then 204."""

    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(Request(time.time(), {k.lower(): v for k, v in request.headers.items()},
                                     await request.read()))
        if self.script:
            status, headers, delay = self.script.pop(0)
            if delay:
                await asyncio.sleep(delay)
            return web.Response(status=status, headers=headers, text=f"scripted {status}")
        return web.Response(status=204)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    e = Endpoint()
    await e.start()
    yield e
    await e.stop()


@pytest.fixture
async def arq(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


def config(tmp_path: Path, redis_url: str, url: str, **dest: Any) -> Config:
    block = {"kind": "webhook", "url": url, "secret": WHSEC, **FAST, **dest}
    return write_config(tmp_path / "statehook.toml", redis_url=redis_url, providers={},
                        destinations={"hook": block}, routes=[{"to": ["hook"]}])


def failed(rid: str = "ord-1", seq: int = 1) -> Any:
    return event("artistree.order.state_changed", "critical", to="Failed", rid=rid, seq=seq)


async def test_each_of_several_secrets_signs_the_delivery(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, endpoint: Endpoint
) -> None:
    old, new = new_secret(), new_secret()
    cfg = config(tmp_path, redis_url, endpoint.url, secret=f"{old} {new}")
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: len(endpoint.requests) == 1, what="the delivery")
    (req,) = endpoint.requests
    assert req.headers["webhook-id"] == failed().id
    assert orjson.loads(req.body)["id"] == failed().id
    signatures = req.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret, signature in zip((old, new), signatures, strict=True):
        Webhook(secret).verify(req.body, {**req.headers, "webhook-signature": signature})  # each one verifies
        other = new if secret == old else old
        with pytest.raises(WebhookVerificationError):
            Webhook(other).verify(req.body, {**req.headers, "webhook-signature": signature})
    for secret in (old, new):  # a receiver that knows either secret accepts the delivery
        Webhook(secret).verify(req.body, req.headers)


async def test_custom_headers_are_sent_but_never_replace_the_signature(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    cfg = config(tmp_path, redis_url, receiver.url, headers={"Authorization": "Bearer abc", "X-Env": "test"})
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: len(receiver.delivered) == 1, what="the delivery")
    headers = receiver.delivered[0].headers
    assert headers["authorization"] == "Bearer abc" and headers["x-env"] == "test"
    assert headers["user-agent"] == "statehook"
    with pytest.raises(ConfigError, match=r"destinations\.hook\.headers"):
        config(tmp_path, redis_url, receiver.url, headers={"Webhook-Signature": "v1,forged"})


async def test_retry_after_is_honoured(tmp_path: Path, redis_url: str, redis: aioredis.Redis,
                                       endpoint: Endpoint) -> None:
    endpoint.script = [(503, {"Retry-After": "1"}, 0.0)]
    cfg = config(tmp_path, redis_url, endpoint.url)
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: len(endpoint.requests) == 2, what="the retry")
    first, second = endpoint.requests
    assert second.at - first.at >= 0.95  # the schedule said 0.05 s
    assert second.headers["webhook-id"] == first.headers["webhook-id"]


async def test_a_slow_receiver_times_out_and_is_retried(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, endpoint: Endpoint
) -> None:
    assert WebhookSettings.model_validate({"url": "https://x.example/h", "secret": WHSEC}).timeout == 15.0
    endpoint.script = [(204, {}, 1.0), (408, {}, 0.0)]
    cfg = config(tmp_path, redis_url, endpoint.url, timeout=0.2)
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: len(endpoint.requests) == 3, what="two retries")
        await wait_for(lambda: equals(redis.llen(keys.attempts(failed().id)), 3), what="three recorded attempts")
    attempts = [orjson.loads(a) for a in reversed(await redis.lrange(keys.attempts(failed().id), 0, -1))]
    assert [a["error"] for a in attempts] == ["timeout after 0.2s", "HTTP 408: scripted 408", None]
    assert await redis.xlen(keys.DLQ) == 0


async def test_a_410_disables_the_destination_until_it_is_enabled_again(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, arq: ArqRedis, receiver: WebhookReceiver
) -> None:
    receiver.script = [410]
    cfg = config(tmp_path, redis_url, receiver.url)
    async with running_worker(cfg):
        await publish(redis, failed("ord-1"))
        await wait_for(lambda: redis.hexists(keys.DISABLED, "hook"), what="the destination disabled")
        await publish(redis, failed("ord-2"))
        await wait_for(lambda: equals(redis.xlen(keys.DLQ), 2), what="two dead letters")
        assert sum(receiver.attempts.values()) == 1  # nothing more was sent to a gone endpoint
        (status,) = await destination_status(redis, cfg)
        assert status["disabled"].startswith("HTTP 410") and status["dead_letters"] == 2
        reasons = [f[b"reason"].decode() for _, f in await redis.xrange(keys.DLQ)]
        assert reasons[0].startswith("HTTP 410") and reasons[1].startswith("destination disabled: HTTP 410")

        assert await enable_destination(redis, cfg, "hook")
        await publish(redis, failed("ord-3"))
        await wait_for(lambda: len(receiver.delivered) == 1, what="delivery after enabling")
        await replay_dead_letters(arq, None, history_length=50)
        await wait_for(lambda: len(receiver.delivered) == 3, what="the replayed dead letters")
    assert sorted(r.event["resource"]["id"] for r in receiver.delivered) == ["ord-1", "ord-2", "ord-3"]
    assert (await destination_status(redis, cfg))[0]["disabled"] is None


def test_the_default_schedule_is_svixs_with_twenty_percent_jitter() -> None:
    assert DEFAULT_SCHEDULE == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    settings = WebhookSettings.model_validate({"url": "https://x.example/h", "secret": WHSEC})
    assert settings.retry_schedule == list(DEFAULT_SCHEDULE) and settings.jitter == 0.2
    for retry, base in enumerate(DEFAULT_SCHEDULE, start=1):
        delays = [delivery_delay(retry, settings.retry_schedule, jitter=settings.jitter) for _ in range(200)]
        assert all(d is not None and base * 0.8 <= d <= base * 1.2 for d in delays)
    assert delivery_delay(len(DEFAULT_SCHEDULE) + 1, settings.retry_schedule) is None  # then dead-lettered
