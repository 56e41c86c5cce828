"""Two things an API process met from outside: a body whose Content-Encoding does not decode
(gzip that is not) is a 400 with a reason on every path that reads a body, not a 500 with
two tracebacks in the log; and while Redis is down, a page that never reads Redis (the
console's sign-in page) does not end the outage in the log, only an answer from Redis does."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from simulator.redisctl import RedisProcess
from tests.console.kit import serving_console
from tests.test_api import AUTH, api_config

GZIP = {"Content-Encoding": "gzip"}


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    with RedisProcess() as proc:
        yield proc


@pytest.mark.parametrize(("path", "ctype", "auth"), [
    ("/v1/watches", "application/json", True),
    ("/v1/hooks/rev/hook-token", "application/x-www-form-urlencoded", False),
    ("/v1/hooks/rev/hook-token", "application/json", False),
    ("/ui/login", "application/x-www-form-urlencoded", False),
])
async def test_a_body_that_does_not_decode_is_a_400_with_a_reason(
    path: str, ctype: str, auth: bool, tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEHOOK_API__HOOK_TOKENS__REV", "hook-token")
    config = api_config(tmp_path, redis_url, sim, receiver)
    with caplog.at_level(logging.ERROR):
        async with serving_console(config) as (_, client, _s):
            headers = {**GZIP, "Content-Type": ctype, **(AUTH if auth else {})}
            async with client.http.post(path, data=b"not gzip at all", headers=headers,
                                        allow_redirects=False) as answer:
                text = await answer.text()
    assert answer.status == 400, text
    assert "Content-Encoding does not decode" in text or "not a form" in text, text
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_a_page_that_reads_no_redis_does_not_end_an_outage_in_the_log(
    tmp_path: Path, own_redis: RedisProcess, sim: Simulator, receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture
) -> None:
    config = api_config(tmp_path, own_redis.url, sim, receiver)
    with caplog.at_level(logging.WARNING, logger="statehook.api"):
        async with serving_console(config) as (_, client, _s):
            own_redis.stop()
            async with client.http.get("/v1/watches", headers=AUTH) as answer:
                assert answer.status == 503
            for _ in range(3):
                assert (await client.get("/ui/login")).status == 200  # no Redis in it
            told = [r.getMessage() for r in caplog.records if r.name == "statehook.api"]
            assert not [line for line in told if "available again" in line], told
            own_redis.start()
            async with client.http.get("/v1/watches", headers=AUTH) as answer:
                assert answer.status == 200
    told = [r.getMessage() for r in caplog.records if r.name == "statehook.api"]
    assert len([line for line in told if "available again" in line]) == 1, told
