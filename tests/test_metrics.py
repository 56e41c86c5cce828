"""Metrics: the exposition of the shared counters (pure), and /metrics moving while a real
worker polls, commits and delivers."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from model.resources import ResourceRef
from simulator.core import Fault, Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from store.stats import StatsRecorder
from tests import test_api
from tests.conftest import wait_for
from tests.kit import running_worker
from tests.test_api import AUTH, api_config, call, serving
from worker import metrics
from worker.metrics import Gauges, families

# the simulator (Artistree and Rev) and the webhook receiver of the API tests
sim_providers = test_api.sim_providers


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def expose(stats: dict[str, int], gauges: Gauges) -> str:
    from prometheus_client.exposition import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics._Fixed(families(stats, gauges)))
    return generate_latest(registry).decode()


def test_latency_observations_land_in_their_bucket() -> None:
    recorder = StatsRecorder()
    for seconds in (0.01, 0.01, 0.2):
        recorder.observe("poll", "rev", seconds)
    assert recorder.drain() == {"lat:poll:rev:1": 2, "lat:poll:rev:5": 1, "lat:poll:rev:sum_us": 220_000}
    assert recorder.drain() == {}


def test_the_exposition_names_labels_and_accumulates_buckets() -> None:
    stats = {
        "polls:rev:unchanged": 7, "polls:rev:changed": 2, "polls:artistree:baseline": 3,
        "events:rev": 2, "events_type:rev.order.state_changed": 2,
        "deliveries_ok": 2, "deliveries:ops-hook:ok": 2, "deliveries:ops-hook:retried": 1,
        "lat:poll:rev:0": 4, "lat:poll:rev:3": 5, "lat:poll:rev:sum_us": 250_000,
        "lat:deliver:ops-hook:2": 3, "lat:deliver:ops-hook:sum_us": 60_000,
    }
    got = samples(expose(stats, Gauges(due_backlog=4, watched=10, outbox_backlog=1, dead_letters=2, workers=2)))
    assert got[("statehook_polls_total", (("outcome", "unchanged"), ("provider", "rev")))] == 7
    assert got[("statehook_polls_total", (("outcome", "baseline"), ("provider", "artistree")))] == 3
    assert got[("statehook_events_total", (("provider", "rev"), ("type", "rev.order.state_changed")))] == 2
    assert got[("statehook_deliveries_total", (("destination", "ops-hook"), ("outcome", "retried")))] == 1
    rev = (("provider", "rev"),)
    assert got[("statehook_poll_latency_seconds_bucket", (("le", "0.005"), *rev))] == 4
    assert got[("statehook_poll_latency_seconds_bucket", (("le", "0.025"), *rev))] == 4
    assert got[("statehook_poll_latency_seconds_bucket", (("le", "0.05"), *rev))] == 9
    assert got[("statehook_poll_latency_seconds_bucket", (("le", "+Inf"), *rev))] == 9
    assert got[("statehook_poll_latency_seconds_count", rev)] == 9
    assert got[("statehook_poll_latency_seconds_sum", rev)] == 0.25
    assert got[("statehook_delivery_latency_seconds_count", (("destination", "ops-hook"),))] == 3
    assert got[("statehook_due_backlog", ())] == 4
    assert got[("statehook_dead_letters", ())] == 2
    assert got[("statehook_workers", ())] == 2


async def test_metrics_move_when_work_happens(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    good = sim["artistree"].add_order(state="In Progress")["order_id"]
    bad = sim["artistree"].add_order(state="In Progress")["order_id"]
    sim.faults.add("artistree", f"/v1/orders/{bad}", Fault(status=503))
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http):
        status, text = await call(http, "GET", "/metrics")
        assert status == 200
        before = samples(text)
        assert not any(name == "statehook_polls_total" for name, _ in before)
        assert before[("statehook_workers", ())] == 0

        async with running_worker(config):
            status, _ = await call(http, "POST", "/v1/watches", headers=AUTH,
                                   json={"provider": "artistree", "ids": [good, bad], "interval": "0.2s"})
            assert status == 201
            await wait_for(lambda: redis.hexists(keys.STATE, ResourceRef("artistree", "order", good).key))
            sim["artistree"].set_state(good, "Failed")
            await wait_for(lambda: len(receiver.delivered) == 1, what="a delivery")

            async def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
                _, text = await call(http, "GET", "/metrics")
                return samples(text)

            async def counted() -> bool:
                got = await scraped()
                return got.get(("statehook_deliveries_total", (("destination", "hook"), ("outcome", "ok")))) == 1

            await wait_for(counted, what="the delivery counted")
            after = await scraped()

    artistree = (("provider", "artistree"),)
    assert after[("statehook_polls_total", (("outcome", "baseline"), *artistree))] >= 1
    assert after[("statehook_polls_total", (("outcome", "changed"), *artistree))] == 1
    assert after[("statehook_polls_total", (("outcome", "unavailable"), *artistree))] >= 1
    assert after[("statehook_events_total", (*artistree, ("type", "artistree.order.state_changed")))] == 1
    assert after[("statehook_poll_latency_seconds_count", artistree)] >= 3
    assert after[("statehook_poll_batch_seconds_count", artistree)] >= 2
    assert after[("statehook_delivery_latency_seconds_count", (("destination", "hook"),))] == 1
    assert after[("statehook_watched_resources", ())] == 2
    assert after[("statehook_workers", ())] == 1
    assert after[("statehook_dead_letters", ())] == 0


async def test_scrape_time_gauges_read_redis(redis: aioredis.Redis) -> None:
    import time

    now = time.time()
    await redis.zadd(keys.DUE, {"rev:order:A": now - 5, "rev:order:B": now - 1, "rev:order:C": now + 600})
    await redis.xadd(keys.DLQ, {"event": b"{}", "destination": "hook"})
    await redis.hset(keys.DISABLED, "old-hook", "410 Gone")
    gauges = await metrics.read_gauges(redis, now)
    assert (gauges.due_backlog, gauges.dead_letters, gauges.destinations_disabled) == (2, 1, 1)


def test_an_unreadable_counter_is_left_out_not_raised() -> None:
    """(An unreadable heartbeat: tests/pure/test_registry.py.)"""
    from store.reads import read_stats

    assert read_stats({b"polls:rev:changed": b"3", b"odd": b"many", b"half": b"1.5"}) == {"polls:rev:changed": 3}
