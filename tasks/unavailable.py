"""Which failures mean "Redis cannot serve now" (an outage), as against a wrong command.

Redis goes away in many ways: refused (restarting), hung (a stopped master: a socket
timeout), `LOADING` (reading its AOF back), `READONLY` (a demoted master), `NOREPLICAS`
(`min-replicas-to-write` not met), `MASTERDOWN` or `UNBLOCKED` (a failover in progress).
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["is_redis_down"]

_UNAVAILABLE_REPLIES = ("NOREPLICAS", "MASTERDOWN", "LOADING", "READONLY", "UNBLOCKED", "TRYAGAIN", "CLUSTERDOWN",
                        "MISCONF")
"""Error replies that say "this Redis cannot serve you now", not "your command is wrong"."""


def is_redis_down(exc: BaseException) -> bool:
    """Whether `exc` means Redis is unreachable or cannot take the command for now."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ReadOnlyError | TimeoutError):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).startswith(_UNAVAILABLE_REPLIES)
    return False
