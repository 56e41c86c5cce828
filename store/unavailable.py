"""Which failures mean "Redis cannot serve now" (an outage), as against a wrong command.

Redis goes away in many ways: refused (restarting), hung (a stopped master: a socket
timeout), `LOADING` (reading its AOF back), `READONLY` (a demoted master), `NOREPLICAS`
(`min-replicas-to-write` not met), `MASTERDOWN` or `UNBLOCKED` (a failover in progress).
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["is_redis_down", "redis_problem", "redis_refusal", "refuses_writes", "reply_code"]

_PIPELINE = "caused error: "

_UNAVAILABLE_REPLIES = ("NOREPLICAS", "MASTERDOWN", "LOADING", "READONLY", "UNBLOCKED", "TRYAGAIN", "CLUSTERDOWN",
                        "MISCONF", "OOM", "BUSY")
"""Error replies that say "this Redis cannot serve you now", not "your command is wrong": OOM is
a Redis at maxmemory under noeviction (writes refused until memory is freed), BUSY a script
running past its time limit."""


def is_redis_down(exc: BaseException) -> bool:
    """Whether `exc` means Redis is unreachable or cannot take the command for now."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ReadOnlyError | TimeoutError | OutOfMemoryError):
        return True  # redis-py strips OOM's code from its message: it is known by its class
    if isinstance(exc, WatchError) and exc.__context__ is not None:  # a watched pipeline's connection died
        return is_redis_down(exc.__context__)
    if isinstance(exc, ResponseError):
        return reply_code(exc) in _UNAVAILABLE_REPLIES
    return False


_WRITE_REFUSALS = ("NOREPLICAS", "MISCONF", "OOM", "READONLY")
"""Replies of a Redis that still answers reads: min-replicas-to-write not met, a failed
snapshot under stop-writes-on-bgsave-error, maxmemory under noeviction, a demoted master."""


def refuses_writes(exc: BaseException) -> bool:
    """Whether `exc` is a Redis that refuses writes but may still answer reads: a read that
    succeeds meanwhile does not mean it is back."""
    if isinstance(exc, OutOfMemoryError | ReadOnlyError):
        return True
    if isinstance(exc, WatchError) and exc.__context__ is not None:
        return refuses_writes(exc.__context__)
    return isinstance(exc, ResponseError) and reply_code(exc) in _WRITE_REFUSALS


def reply_code(exc: BaseException) -> str:
    """The first word of an error reply (`NOREPLICAS`), also when redis-py has wrapped it as
    `Command # 1 (HSET …) of pipeline caused error: ('NOREPLICAS …',)`."""
    text = str(exc)
    _, found, rest = text.partition(_PIPELINE)
    if found:
        text = rest.lstrip("(\"'")
    return text.split(" ", 1)[0]


_NO_DATABASE = "DB index is out of range"


def redis_refusal(exc: BaseException) -> str | None:
    """What is wrong with the Redis URL when Redis refuses the connection it describes (its
    database is not one that Redis has: the SELECT of every new connection fails), in words
    that never quote the URL; None for any other failure. Not an outage: it will not pass."""
    if isinstance(exc, ResponseError) and _NO_DATABASE in str(exc):
        return "its database is not one this Redis has (the server's `databases` setting)"
    return None


def redis_problem(exc: BaseException) -> str:
    """The kind of a Redis failure, never its message (a message can carry a host, a password
    or, from a pipeline, the command and its values)."""
    if redis_refusal(exc):
        return "no such database"
    code = reply_code(exc)
    if isinstance(exc, ResponseError) and code.isupper() and code.isalpha():  # NOREPLICAS, MASTERDOWN…
        return code
    return type(exc).__name__
