"""A delivery's time stays within its job's: a send is bounded as a whole, a retry that
would come after the job expires is a dead letter instead, and a paced resend never spins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from core.backoff import delivery_delay
from model.values import MAX_RETRY_DELAY
from notifiers.base import NotifierContext
from notifiers.email import EmailNotifier, EmailSettings
from notifiers.webhook import WebhookNotifier, WebhookSettings
from simulator.receivers import WebhookReceiver
from store import keys
from store.deliveries import DeliveryRecords
from tasks.deliver import attempt_delivery, deliver_once, send_once
from tests.kit import WHSEC, telling_deliveries
from tests.test_webhook_delivery import failed

STEP = 0.4
"""How long the slow SMTP server takes to answer each command."""


@pytest.fixture
async def slow_smtp() -> AsyncIterator[int]:
    """An SMTP server that answers every command, each after STEP seconds."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 slow.example ESMTP\r\n")
        in_data = False
        while line := await reader.readline():
            if in_data:
                if line != b".\r\n":
                    continue
                in_data, reply = False, b"250 queued\r\n"
            elif line.upper().startswith(b"DATA"):
                in_data, reply = True, b"354 go on\r\n"
            else:
                reply = b"250 ok\r\n"
            await asyncio.sleep(STEP)
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_send_is_bounded_as_a_whole_not_step_by_step(slow_smtp: int) -> None:
    """aiosmtplib's timeout bounds each reply: a server that answers each in 0.4 s would
    keep a 1 s send going for seconds (and a retry job past its own timeout, lost)."""
    settings = EmailSettings.model_validate({"kind": "email", "host": "127.0.0.1", "port": slow_smtp,
                                             "security": "plain", "from": "statehook@example.com",
                                             "to": ["ops@example.com"], "timeout": 1})
    async with aiohttp.ClientSession() as session:
        notifier = EmailNotifier("mail", settings, NotifierContext(session=session))
        started = time.monotonic()
        sent = await send_once(notifier, failed(), "mail")
    assert sent.error == "no answer within 1s" and not sent.bug and sent.outage
    assert time.monotonic() - started < 1 + 3 * STEP


def webhook(session: aiohttp.ClientSession, url: str, **extra: object) -> WebhookNotifier:
    settings = WebhookSettings.model_validate({"url": url, "secret": WHSEC, "jitter": 0, **extra})
    return WebhookNotifier("hook", settings, NotifierContext(session=session))


async def test_a_retry_that_would_come_after_the_job_expires_is_a_dead_letter(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    receiver.script = [503]
    async with aiohttp.ClientSession() as session:
        notifier = webhook(session, receiver.url, retry_schedule=["1h"])
        result = await deliver_once(telling_deliveries(redis), notifier, "hook", failed().to_json(), 1,
                                    retry_until=time.time() + 600)
    assert result.dead_lettered and result.retry_in is None
    ((_, fields),) = await redis.xrange(keys.DLQ)
    assert "after its job expires" in fields[b"reason"].decode()


async def test_a_paced_resend_after_retry_after_zero_waits(redis: aioredis.Redis, receiver: WebhookReceiver) -> None:
    """A flush resends a 429 after its Retry-After; `Retry-After: 0` made that a tight loop."""
    receiver.script, receiver.retry_after = [429, 429], "0"
    async with aiohttp.ClientSession() as session:
        notifier = webhook(session, receiver.url)
        started = time.monotonic()
        result = await attempt_delivery(telling_deliveries(redis), notifier, "hook", failed(), 1,
                                        DeliveryRecords(), None, paced_wait=30.0)
    assert result.delivered and sum(receiver.attempts.values()) == 3
    assert time.monotonic() - started >= 2 * 0.9


def test_a_retry_waits_at_most_a_day_whatever_the_destination_asks() -> None:
    assert delivery_delay(1, [5.0], jitter=0, retry_after=999_999.0) == MAX_RETRY_DELAY
    assert delivery_delay(1, [5.0], jitter=0, retry_after=60.0) == 60.0
