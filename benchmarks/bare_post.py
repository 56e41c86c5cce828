"""The deliveries' reference: a bare loop that signs each body (standardwebhooks, as the
webhook destination signs) and POSTs it to the same receiver with the same concurrency as
statehook's delivery batches, in a process of its own as a worker is. Nothing else: no
outbox, no routing, no job, no delivery mark, no attempt record.

`python -m benchmarks.bare_post BODIES URL SECRET CONCURRENCY` reads the bodies (one JSON
event per line), says "ready", waits for a line on stdin, sends them all and prints the
seconds it took."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from standardwebhooks.webhooks import Webhook

__all__ = ["bare_posts_per_s"]


async def _post_all(bodies: Sequence[bytes], url: str, secret: str, concurrency: int) -> float:
    signer = Webhook(secret)
    failures = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        it = iter(bodies)

        async def lane() -> None:
            nonlocal failures
            for body in it:
                msg_id = orjson.loads(body)["id"]
                now = datetime.fromtimestamp(int(time.time()), tz=UTC)
                headers = {"content-type": "application/json", "webhook-id": msg_id,
                           "webhook-timestamp": str(int(now.timestamp())),
                           "webhook-signature": signer.sign(msg_id, now, body.decode())}
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    failures += not 200 <= resp.status < 300

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"bare POST loop: {failures} answers were not 2xx")
    return elapsed


async def bare_posts_per_s(bodies: Sequence[bytes], url: str, secret: str, concurrency: int) -> float:
    """The loop in a child process, timed there (its start-up left out)."""
    with tempfile.TemporaryDirectory(prefix="statehook-post-") as tmp:
        path = Path(tmp) / "bodies"
        path.write_bytes(b"\n".join(bodies))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.bare_post", str(path), url, secret, str(concurrency),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdin is not None
        if await proc.stdout.readline() != b"ready\n":
            proc.kill()
            raise RuntimeError("the bare POST loop did not start")
        proc.stdin.write(b"go\n")
        out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError("the bare POST loop failed")
    return len(bodies) / float(out)


def _child(path: str, url: str, secret: str, concurrency: int) -> None:
    bodies = Path(path).read_bytes().split(b"\n")
    print("ready", flush=True)
    sys.stdin.readline()
    print(repr(asyncio.run(_post_all(bodies, url, secret, concurrency))), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
