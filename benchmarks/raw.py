"""The client's ceiling: a bare aiohttp GET loop, `concurrency` requests in flight, one
shared session, the body read and nothing else. statehook's poll rate is judged against it.
Beside it, for scans: the list pages fetched one after another and parsed with orjson,
the least a naive scan does, to show what this machine does at the moment of the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp
import orjson

__all__ = ["raw_get_loop", "raw_list_parse"]


async def raw_get_loop(urls: Sequence[str], *, concurrency: int, token: str = "bench-token") -> float:
    """GETs every URL once; returns requests per second."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        it = iter(urls)

        async def lane() -> None:
            nonlocal failures
            for url in it:
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    failures += resp.status != 200

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"raw loop: {failures} answers were not 200")
    return len(urls) / elapsed


async def raw_list_parse(list_url: str, orders: int, *, token: str = "bench-token") -> float:
    """GETs the list pages in order (each names the next) and `orjson.loads` each one;
    returns orders per second."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    seen = 0
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        params: dict[str, str] = {}
        while True:
            async with session.get(list_url, params=params, headers=headers) as resp:
                page = orjson.loads(await resp.read())
            seen += len(page["orders"])
            if not page.get("next_page_token"):
                break
            params = {"page_token": page["next_page_token"]}
        elapsed = time.perf_counter() - started
    if seen != orders:
        raise RuntimeError(f"raw list parse: {seen} orders listed, {orders} expected")
    return seen / elapsed
