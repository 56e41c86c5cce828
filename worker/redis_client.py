"""The one way statehook's processes open Redis: `redis_client(url)`.

Every connection has a connect timeout, a socket timeout (a hung server fails a command
rather than freezing the process), TCP keepalive and a health check before reuse of an
idle connection, for a plain Redis and for a Sentinel-managed master alike (ARQ's own
Sentinel pool passes none of these on, so the client is built here and handed to ARQ).
Nothing is sent at construction: a process starts while Redis is down and connects when
it first needs to. A command whose connection was refused or reset is retried a few times
over about a second, a command that timed out is not; what outlasts that is an outage,
which the caller handles (worker/outage.py). Commands are packed by hiredis
(worker/redis_packing.py).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError

from store.redis_url import SENTINEL_SCHEMES, parse_sentinel_url
from worker.redis_packing import with_hiredis_packing

__all__ = ["RedisTimeouts", "redis_client"]


@dataclass(frozen=True, slots=True)
class RedisTimeouts:
    connect: float = 3.0
    command: float = 5.0
    """past this, a command on a silent server fails (longer than any blocking read statehook makes)"""
    health_check: float = 0.0
    """ping an idle connection before reuse after this long (0: never). Off: on a hung
    server redis-py's health check, combined with its retries, waited far past the socket
    timeout; TCP keepalive finds dead connections instead"""
    retries: int = 3


def _keepalive_options() -> dict[int, int]:
    options = {}
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            options[getattr(socket, name)] = value
    return options


def redis_client(url: str, timeouts: RedisTimeouts = RedisTimeouts(), *, max_connections: int | None = None
                 ) -> ArqRedis:
    """An ARQ-capable client for `redis://`, `rediss://`, `unix://` or a Sentinel URL."""
    common: dict[str, object] = {
        "socket_connect_timeout": timeouts.connect,
        "socket_timeout": timeouts.command,
        "socket_keepalive": True,
        "socket_keepalive_options": _keepalive_options(),
        "health_check_interval": timeouts.health_check,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), timeouts.retries),
        # a refused or reset connection is tried again at once (a restart, a failover); a
        # timeout is not: a hung server would make every try wait out the socket timeout again
        "retry_on_error": [RedisConnectionError, BusyLoadingError],
        "max_connections": max_connections,
    }
    pool: ConnectionPool
    if url.startswith(SENTINEL_SCHEMES):
        target = parse_sentinel_url(url)
        sentinel_side = {k: v for k, v in common.items() if k.startswith("socket_")}
        manager = Sentinel(target.sentinels, sentinel_kwargs=sentinel_side, **common)
        pool = SentinelConnectionPool(
            target.service, manager, db=target.db, username=target.username, password=target.password,
            ssl=target.ssl, **{**manager.connection_kwargs, "is_master": True, "check_connection": False},
        )
    else:
        if "unix" in url.split("://", 1)[0]:
            common.pop("socket_keepalive")
            common.pop("socket_keepalive_options")
        pool = ConnectionPool.from_url(url, **common)
    pool.connection_class = with_hiredis_packing(pool.connection_class)  # no connection exists yet
    return ArqRedis(pool)
