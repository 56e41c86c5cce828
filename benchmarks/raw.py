"""The client's ceiling: a bare aiohttp GET loop, `concurrency` requests in flight, one
shared session, the body read and nothing else. statehook's poll rate is judged against it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp

__all__ = ["raw_get_loop"]


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
