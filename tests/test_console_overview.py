"""The console's overview: polls and events per minute from the shared counters sampled over
time (RateWindow, pure), and the page over HTTP against real Redis: a provider unhealthy
with its reason, one paused by a 429, no live worker, the counts."""

from __future__ import annotations

import re
from pathlib import Path

import redis.asyncio as aioredis

from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from store.rates import ProviderLimits
from store.stats import StatsRecorder
from tests.console.kit import TOKEN, serving_console
from tests.kit import telling_deliveries
from tests.test_api import api_config
from worker.console.rates import MIN_SPAN, RateWindow


def test_rates_are_per_minute_between_samples_a_minute_apart() -> None:
    window = RateWindow()
    assert window.observe(1000.0, {"polls": 0}) is None
    assert window.observe(1000.0 + MIN_SPAN / 2, {"polls": 10}) is None  # not long enough to say
    rates = window.observe(1030.0, {"polls": 60, "events": 3})
    assert rates is not None and rates.span == 30.0
    assert rates.get("polls") == 120.0 and rates.get("events") == 6.0
    for t in range(1032, 1200, 2):
        window.observe(float(t), {"polls": 2 * (t - 1000), "events": 0})
    rates = window.observe(1200.0, {"polls": 400, "events": 0})
    assert rates is not None and abs(rates.span - 60.0) <= 2.0 and abs(rates.get("polls") - 120.0) < 1e-6


def test_a_counter_that_went_down_starts_the_samples_again() -> None:
    window = RateWindow()
    window.observe(0.0, {"polls": 500})
    assert window.observe(30.0, {"polls": 3}) is None  # the stats were flushed: no negative rate
    rates = window.observe(60.0, {"polls": 33})
    assert rates is not None and rates.get("polls") == 60.0


async def test_the_overview_shows_health_rates_and_counts(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    await redis.hset(keys.PROVIDER_HEALTH, "rev", "HTTP 401: the client key was refused")  # type: ignore[misc]
    await ProviderLimits(redis).pause("artistree", 120)
    await telling_deliveries(redis).disable("hook", "HTTP 410 at 2026-11-23T10:15:02Z")
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, state):
        await client.sign_in()
        clock = [1_000_000.0]
        state.clock = lambda: clock[0]
        first = await client.get("/ui/")
        assert "measuring…" in first.text
        assert re.search(r">unhealthy</span> <span class=\"detail\">HTTP 401: the client key was refused", first.text)
        assert re.search(r">rate-limited</span> <span class=\"detail\">paused for 1[12][0-9] s more", first.text)
        assert "No worker has a heartbeat" in first.text
        assert re.search(r"<dt>Disabled destinations</dt><dd><a [^>]*>1</a>", first.text)
        recorder = StatsRecorder()
        for _ in range(90):
            recorder.poll("artistree", "unchanged")
        recorder.event("artistree", "artistree.order.state_changed")
        for name, n in recorder.drain().items():
            await redis.hincrby(keys.STATS, name, n)  # type: ignore[misc]
        clock[0] += 30
        later = await client.get("/ui/")
        assert re.search(r"<dt>Polls / min</dt><dd>180\.0</dd>", later.text)
        assert re.search(r"<dt>Events / min</dt><dd>2\.0</dd>", later.text)
