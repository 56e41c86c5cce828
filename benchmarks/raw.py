"""The client's ceiling: a bare aiohttp GET loop, `concurrency` requests in flight, one
shared session, the body read and nothing else. statehook's poll rate is judged against it.
Beside it, for scans: the list pages fetched one after another and parsed with orjson,
the least a naive scan does, to show what this machine does at the moment of the run.
And for scale-out: the same loop in two processes at once, which shows how much a second
process gains on this machine at all (the cores are shared with nginx and Redis, and a
VM's two vCPUs slow each other down when both are busy).

`python -m benchmarks.raw URL_FILE CONCURRENCY` is one such process: it loads what it
needs, says "ready", waits for a line on stdin, runs the loop and prints its start and end
as wall-clock times, so that the parent times the processes together without their
start-up."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import orjson

__all__ = ["raw_get_loop", "raw_get_processes", "raw_list_parse"]


async def raw_get_loop(urls: Sequence[str], *, concurrency: int, token: str = "bench-token") -> float:
    """GETs every URL once; returns requests per second."""
    _, elapsed = await _timed_get_loop(urls, concurrency=concurrency, token=token)
    return len(urls) / elapsed


async def _timed_get_loop(urls: Sequence[str], *, concurrency: int, token: str = "bench-token") -> tuple[float, float]:
    """(wall-clock start, seconds) of one GET of every URL."""
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

        wall, started = time.time(), time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"raw loop: {failures} answers were not 200")
    return wall, elapsed


async def raw_get_processes(urls: Sequence[str], *, processes: int, concurrency: int) -> float:
    """The raw loop in `processes` processes at once, each GETting its share of `urls` with
    its share of `concurrency` (as the workers of the scale-out scenario share
    `max_concurrency`); returns requests per second from the first start to the last end."""
    with tempfile.TemporaryDirectory(prefix="statehook-raw-") as tmp:
        procs = []
        try:
            for i in range(processes):
                path = Path(tmp) / f"urls.{i}"
                path.write_text("\n".join(urls[i::processes]))
                procs.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "benchmarks.raw", str(path), str(max(1, concurrency // processes)),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                ))
            for p in procs:
                assert p.stdout is not None
                if await p.stdout.readline() != b"ready\n":
                    raise RuntimeError("a raw loop process did not start")
            for p in procs:
                assert p.stdin is not None
                p.stdin.write(b"go\n")
            outs = await asyncio.gather(*(p.communicate() for p in procs))
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
    if any(p.returncode for p in procs):
        raise RuntimeError("a raw loop process failed")
    spans = [tuple(map(float, out.split())) for out, _ in outs]
    return len(urls) / (max(end for _, end in spans) - min(start for start, _ in spans))


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


def _child(url_file: str, concurrency: int) -> None:
    urls = Path(url_file).read_text().split()
    print("ready", flush=True)
    sys.stdin.readline()
    wall, elapsed = asyncio.run(_timed_get_loop(urls, concurrency=concurrency))
    print(f"{wall!r} {wall + elapsed!r}", flush=True)


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
