"""What the growth scenario reads besides the costs: where Redis's bytes go per key kind,
and how long an operator waits for `statehook watch ls`, a page of `GET /v1/watches` and
`GET /metrics` at each size (the API served in this process, the CLI as its own process)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from benchmarks.scenarios import Bench
from benchmarks.stack import ROOT, write_config
from store import keys

__all__ = ["bytes_by_kind", "reads"]

TOKEN = "bench-api-token"


async def bytes_by_kind(redis: aioredis.Redis, sample: Sequence[str], n: int) -> dict[str, float]:
    """Bytes per watched order in each structure: the three shared ones (`MEMORY USAGE` of
    the whole, sampled by Redis, over `n`) and the snapshot keys (mean over `sample`)."""
    out = {}
    for name, key in (("state", keys.STATE), ("meta", keys.META), ("due", keys.DUE)):
        out[name] = int(await redis.memory_usage(key, samples=2000) or 0) / n
    out["snapshot_key"] = statistics.mean([int(await redis.memory_usage(keys.snapshot(k)) or 0) for k in sample])
    out["snapshot_value"] = statistics.mean([len(await redis.get(keys.snapshot(k)) or b"") for k in sample])
    return out


async def reads(b: Bench, redis: aioredis.Redis, url: str, n: int) -> dict[str, Any]:
    config = write_config(b.config.with_name(f"reads-{n}.toml"), redis_url=url, base_url=b.base_url,
                          token_url=f"{b.base_url}/oauth2/token", api={"token": TOKEN})
    out: dict[str, Any] = {"watch_ls_ms": _cli_ms(config, "watch", "ls", "--limit", "100", "--json")}
    out.update(await _api_ms(config))
    return out


def _cli_ms(config: Any, *args: str) -> float:
    """Wall time of one `statehook …` run (its start-up included: the same at every size)."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from worker.cli import main; main()", *args, "-c", str(config)],
                          cwd=ROOT, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=300)
    elapsed = (time.perf_counter() - t) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"statehook {' '.join(args)} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


async def _api_ms(path: Any, pages: int = 5, scrapes: int = 3) -> dict[str, float]:
    """Median times of `pages` pages of GET /v1/watches (following the cursor) and of
    `scrapes` GET /metrics, through the API served here."""
    from config import load_config
    from worker.api import start_api

    runner, base = await start_api(load_config(path), host="127.0.0.1", port=0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    page_ms, metrics_ms, listed = [], [], 0
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            cursor: str | None = None
            for _ in range(pages):
                params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
                t = time.perf_counter()
                async with http.get(f"{base}/v1/watches", params=params) as resp:
                    body = await resp.json()
                    resp.raise_for_status()
                page_ms.append((time.perf_counter() - t) * 1000)
                listed += len(body["watches"])
                cursor = body.get("cursor")
                if not cursor:
                    break
            for _ in range(scrapes):
                t = time.perf_counter()
                async with http.get(f"{base}/metrics") as resp:
                    await resp.read()
                    resp.raise_for_status()
                metrics_ms.append((time.perf_counter() - t) * 1000)
    finally:
        await runner.cleanup()
    return {"watches_page_ms": statistics.median(page_ms), "watches_listed": listed,
            "metrics_ms": statistics.median(metrics_ms)}
