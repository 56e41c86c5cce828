"""Whether the Redis statehook points at keeps its data across a restart, and the client the
API and the operator's commands open.

Watches added through the API or the CLI live only in Redis (the config file's are
registered again by every worker), and so do the snapshots, the outbox and the delivery
state. A Redis without AOF loses them at a restart: `persistence_warning` says so in one
line, for `statehook check` and for a worker at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from store.unavailable import is_redis_down, redis_problem, redis_refusal
from worker.redis_client import RedisTimeouts, redis_client

__all__ = ["API_TIMEOUTS", "CHECK_TIMEOUTS", "api_redis", "persistence_warning", "redis_down", "redis_problem",
           "redis_warnings"]

API_TIMEOUTS = RedisTimeouts(connect=1.0, command=1.0, health_check=0.0, retries=1)
"""A request to the API fails within about 3 s when Redis is hung (SIGSTOP: the connect
succeeds, nothing answers), rather than waiting for it. No health check before reusing an
idle connection: with redis-py 5.3, a health check on a hung server, combined with a retry,
recurses (the PING's reconnect runs the health check again) and a call took minutes; the
one retry already replaces a connection that a Redis restart broke."""

CHECK_TIMEOUTS = RedisTimeouts(connect=2.0, command=2.0, health_check=0.0, retries=0)

NO_AOF = ("Redis keeps no append-only file (appendonly no): a restart or a failover to an empty replica loses "
          "the watches added through the API or the CLI (they live only in Redis), every snapshot and the "
          "events not yet delivered; set appendonly yes (docs/reliability.md)")
CANNOT_TELL = ("could not tell whether Redis keeps its data across a restart (CONFIG GET refused, as managed "
               "Redis often does): make sure it persists (AOF), as watches added through the API or the CLI "
               "live only in Redis (docs/reliability.md)")


def api_redis(url: str, timeouts: RedisTimeouts = API_TIMEOUTS) -> ArqRedis:
    """The API's client for a `redis://`, `rediss://`, `unix://` or `redis+sentinel://` URL:
    no I/O here (the API starts and listens while Redis is down, and connects when a request
    needs it), connect and socket timeouts, keepalive and one quick retry (API_TIMEOUTS).
    Built by worker/redis_client.py's `redis_client`, the workers' builder."""
    return redis_client(url, timeouts)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


async def persistence_warning(redis: Any) -> str | None:
    """One line when Redis has no AOF (`CONFIG GET appendonly` is "no"), or cannot tell
    (CONFIG refused or renamed); None when AOF is on. An unreachable Redis raises what the
    client raised (the caller decides: a worker waits, `check` warns)."""
    try:
        reply = await redis.config_get("appendonly")
    except ResponseError as exc:
        if redis_down(exc):
            raise
        return CANNOT_TELL
    values = {_text(k).lower(): _text(v).lower() for k, v in (reply or {}).items()}
    if "appendonly" not in values:
        return CANNOT_TELL
    return None if values["appendonly"] == "yes" else NO_AOF




def redis_down(exc: BaseException) -> bool:
    """`store.unavailable.is_redis_down` (pipeline-wrapped replies included), or a Redis that
    refuses the URL's database: for the API and the CLI, a Redis that cannot serve (a 503,
    one line), not a traceback. A worker's own loops do not wait for it: it stops start-up."""
    return is_redis_down(exc) or redis_refusal(exc) is not None


async def redis_warnings(url: str, *, timeout: float = 5.0) -> list[str]:
    """What `statehook check` says of the Redis at `url`: nothing when it answers and keeps
    an AOF; one line when it keeps none, when it cannot tell, or when Redis does not answer
    within `timeout` seconds."""
    try:
        client = api_redis(url, CHECK_TIMEOUTS)
    except ValueError:  # the message may quote the URL
        return ["redis_url is not a Redis URL statehook can open (redis://, rediss://, unix://, "
                "redis+sentinel://host:port,host:port/service/db)"]
    try:
        warning = await asyncio.wait_for(persistence_warning(client), timeout)
    except Exception as exc:
        if not is_redis_down(exc):  # a refused database included: `check` stops on it
            raise
        return [f"Redis unreachable ({redis_problem(exc)}): could not tell whether it keeps its data across a "
                "restart"]
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.aclose(), 1.0)
    return [warning] if warning else []
