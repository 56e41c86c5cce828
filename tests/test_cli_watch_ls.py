"""`statehook watch ls` reads a page of watches, not all of them: at a million watches the
HGETALL it made took 8 s (benchmarks/growth.py)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import reads
from store.snapshots import Store, WatchMeta
from tests.test_api import api_config, few_among_many
from tests.test_cli import cli, path_of


async def _calls(redis: aioredis.Redis, command: str) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_ls_reads_a_page_and_counts_the_rest(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    c = path_of(api_config(tmp_path, redis_url, sim, receiver))
    store = Store(redis)
    await store.add_watches([(f"rev:order:R{i:05d}", WatchMeta(interval=60.0)) for i in range(3000)])
    await store.add_watches([(f"artistree:order:A{i:05d}", WatchMeta(interval=60.0, source="cli"))
                             for i in range(2000)])
    before = await _calls(redis, "hgetall")

    listing = orjson.loads((await cli("watch", "ls", "-c", c, "--limit", "10", "--json")).output)
    assert listing["total"] == 5000 and len(listing["watches"]) == 10
    rkeys = [w["rkey"] for w in listing["watches"]]
    assert rkeys == sorted(rkeys)

    listing = orjson.loads((await cli("watch", "ls", "-c", c, "--provider", "rev", "--limit", "10",
                                      "--json")).output)
    assert len(listing["watches"]) == 10 and listing["total"] is None
    assert all(w["rkey"].startswith("rev:") for w in listing["watches"])
    result = await cli("watch", "ls", "-c", c, "--source", "cli", "--limit", "5")
    assert result.exit_code == 0 and "5 watch(es) shown, more may match (--limit 0 lists all)" in result.output
    assert await _calls(redis, "hgetall") == before

    listing = orjson.loads((await cli("watch", "ls", "-c", c, "--provider", "rev", "--limit", "0",
                                      "--json")).output)
    assert listing["total"] == 3000 and len(listing["watches"]) == 3000


async def test_ls_pages_on_until_it_has_its_limit_when_a_page_reads_only_part_of_the_hash(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    c = path_of(api_config(tmp_path, redis_url, sim, receiver))
    await few_among_many(redis)
    monkeypatch.setattr(reads, "SCAN_BUDGET", 500)  # a page of store.reads ends before the hash does
    listing = orjson.loads((await cli("watch", "ls", "-c", c, "--provider", "artistree", "--limit", "1",
                                      "--json")).output)
    assert [w["rkey"] for w in listing["watches"]] == ["artistree:order:A1"]
    listing = orjson.loads((await cli("watch", "ls", "-c", c, "--provider", "artistree", "--limit", "5",
                                      "--json")).output)
    assert [w["rkey"] for w in listing["watches"]] == ["artistree:order:A1"] and listing["total"] == 1
    listing = orjson.loads((await cli("watch", "ls", "-c", c, "--provider", "rev", "--limit", "700",
                                      "--json")).output)
    assert len(listing["watches"]) == len({w["rkey"] for w in listing["watches"]}) == 700
