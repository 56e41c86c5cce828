"""The worker registry: which workers are alive, the one record of liveness that the API's
/healthz, its metrics, `statehook healthcheck` and the workers' share of each provider's
concurrency all read.

Each worker beats every `health_interval` (worker/runtime.py). A beat is one script
(lua/worker_beat.lua) over two keys: `sh:workers`, a sorted set of worker ids scored by
when each beat runs out (its count is how many workers share the concurrency, in the same
round trip whatever the keyspace holds), and `sh:workers:beat`, a hash of each worker's
last beat (`{"at", "interval", "pid"}`), which says how old it is. The script drops the
workers whose beat ran out from both; a worker that stops leaves at once (`leave`).

ARQ still writes its own health-check key (worker/settings.py); nothing reads it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from store import keys

__all__ = ["WorkerBeat", "WorkerRegistry", "beat_lasts", "read_beat"]

log = logging.getLogger("statehook.store")

_BEAT = (Path(__file__).parent / "lua" / "worker_beat.lua").read_text()


def beat_lasts(interval: float) -> float:
    """How long a beat counts: until two more were missed, and a second."""
    return interval * 2 + 1


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """A live worker's last beat: when it was (`at`), every how many seconds it beats."""

    worker: str
    at: float
    interval: float
    pid: int | None = None

    def age(self, now: float) -> float:
        return max(0.0, now - self.at)

    def fresh(self, now: float) -> bool:
        """Beaten within its interval (plus 10 %, at least one second, for the write)."""
        return self.age(now) <= self.interval + max(1.0, self.interval * 0.1)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def read_beat(worker: str, raw: bytes | str) -> WorkerBeat | None:
    """`{"at": unix time, "interval": seconds, "pid": n}` (`interval` 30 s when missing);
    None for a value that is not one. Pure."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    at, interval, pid = _seconds(data.get("at")), _seconds(data.get("interval", 30.0)), data.get("pid")
    if at is None or interval is None:
        return None
    return WorkerBeat(worker, at, interval, pid if isinstance(pid, int) and not isinstance(pid, bool) else None)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class WorkerRegistry:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._beat = redis.register_script(_BEAT)

    async def beat(self, worker_id: str, interval: float, *, pid: int | None = None,
                   now: float | None = None) -> int:
        """Records a beat of `worker_id` (it counts for `beat_lasts(interval)`) and returns how
        many workers are live (at least 1)."""
        now = time.time() if now is None else now
        record = orjson.dumps({"at": now, "interval": interval, "pid": pid})
        live = await self._beat(keys=[keys.WORKERS, keys.WORKER_BEATS],
                                args=[worker_id, record, now + beat_lasts(interval), now])
        return max(1, int(live))

    async def leave(self, worker_id: str) -> None:
        """A worker that stops stops counting at once."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.WORKERS, worker_id)
            pipe.hdel(keys.WORKER_BEATS, worker_id)
            await pipe.execute()

    async def beats(self, now: float | None = None) -> list[WorkerBeat]:
        """The last beat of every worker whose beat has not run out, by worker id. A beat that
        cannot be read is logged with its key and left out."""
        now = time.time() if now is None else now
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(keys.WORKERS, f"({now!r}", "+inf")
            pipe.hgetall(keys.WORKER_BEATS)
            live, records = await pipe.execute()
        by_worker = {_text(k): v for k, v in records.items()}
        out = []
        for worker in sorted(_text(w) for w in live):
            raw = by_worker.get(worker)
            if raw is None:
                continue
            beat = read_beat(worker, raw)
            if beat is None:
                key = f"{keys.WORKER_BEATS}[{worker}]"
                log.warning("unreadable record skipped: %s: not a heartbeat", key, extra={"key": key})
                continue
            out.append(beat)
        return out
