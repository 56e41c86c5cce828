"""A scan's page requests take slots of the provider's rate schedule, like its fetches: an
unpaced 50-page sweep at 20 requests/s asked for its pages as fast as they came (the
rate-budget benchmark's simulator answered 429s)."""

from __future__ import annotations

import time

import aiohttp
import redis.asyncio as aioredis

from simulator.core import Simulator
from store import keys
from store.rates import parse_scheduled
from tasks.poll import PollOutcome
from tests.test_polling import make_poller, scan_watch


async def test_scan_pages_are_spaced_by_the_rate_limit(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    for _ in range(75):
        sim["artistree"].add_order()
    poller = make_poller(sim, redis, session, requests_per_second=10, page_size=5)  # 15 pages
    rkey = await scan_watch(poller)
    started = time.time()
    outcomes = await poller.poll([rkey])
    elapsed = time.time() - started
    assert outcomes[PollOutcome.BASELINE] == 75
    # the burst allowance (10 slots) lets the first pages go at once; the rest are 0.1 s apart
    assert elapsed >= 0.45, elapsed
    scheduled = parse_scheduled(await redis.get(keys.provider_rate("artistree")))
    assert scheduled >= started + 0.45  # the 15 pages (and the step after the last) took slots
