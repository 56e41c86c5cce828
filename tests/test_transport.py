"""transport/http.py: what a status means (pure), and `send` against real loopback servers:
an answer, a refused connection, a server that never answers, a huge body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import free_port
from transport.http import NoReply, Outcome, Reply, error_words, outcome_of, parse_retry_after, send


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.OK), (204, Outcome.OK), (299, Outcome.OK),
    (301, Outcome.REFUSED), (400, Outcome.REFUSED), (422, Outcome.REFUSED),
    (401, Outcome.UNAUTHORIZED), (403, Outcome.UNAUTHORIZED), (404, Outcome.NOT_FOUND), (410, Outcome.GONE),
    (429, Outcome.RATE_LIMITED), (408, Outcome.RETRY), (425, Outcome.RETRY), (500, Outcome.RETRY),
    (503, Outcome.RETRY), (599, Outcome.RETRY),
])
def test_each_status_has_one_outcome(status: int, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome
    assert Reply(status, b"").outcome is outcome


def test_retry_after_reads_seconds_and_dates_and_falls_back() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None, 3.0) == 3.0
    assert parse_retry_after("soon", 2.0) == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert Reply(429, b"", "7").retry_after() == 7.0 and Reply(429, b"").retry_after(0.5) == 0.5


def test_error_words_take_the_apis_own_words_only() -> None:
    assert error_words(b'{"detail": "bad token"}') == "bad token"
    assert error_words(b'{"code": 3, "message": "nope"}') == "nope"
    assert error_words(b'{"error": {"nested": 1}, "error_description": "x"}') == "x"
    assert error_words(b"<html>502</html>") == "" and error_words(b"") == "" and error_words(b"[1]") == ""
    assert len(error_words(b'{"detail": "' + b"y" * 500 + b'"}')) == 200
    assert Reply(500, b"  oops \n").text() == "oops"


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(status=int(request.query.get("status", "200")), body=b"z" * 200_000,
                            headers={"Retry-After": "4"})

    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/hang", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}"
    release.set()
    await runner.cleanup()


async def test_send_reads_the_answer_and_caps_the_body(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        whole = await send(session, "GET", f"{server}/ok", params={"status": "503"}, timeout=5)
        capped = await send(session, "GET", f"{server}/ok", timeout=5, max_body=1000)
    assert (whole.status, len(whole.body), whole.retry_after_header) == (503, 200_000, "4")
    assert whole.outcome is Outcome.RETRY and whole.retry_after() == 4.0
    assert capped.status == 200 and len(capped.body) == 1000


async def test_no_answer_is_noreply_without_the_url(server: str) -> None:
    closed = free_port()
    secret_url = f"http://127.0.0.1:{closed}/hooks/T000/B000/s3cr3t"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(NoReply) as refused:
            await send(session, "POST", secret_url, timeout=5)
        with pytest.raises(NoReply) as hung:
            await send(session, "GET", f"{server}/hang?token=s3cr3t", timeout=0.3)
    assert refused.value.reason.startswith("connection failed: ")
    assert hung.value.reason == "timeout after 0.3s"
    for caught in (refused, hung):
        assert "s3cr3t" not in str(caught.value) and "127.0.0.1" not in str(caught.value)

