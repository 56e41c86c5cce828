"""Commands packed by hiredis (C) instead of redis-py's asyncio packer (Python).

redis-py's sync connections pack with `hiredis.pack_command` whenever hiredis is installed;
its asyncio connections always pack argument by argument in Python, a visible part of a
poll batch's CPU, since a batch sends several arguments per resource (docs/performance.md).
`with_hiredis_packing(cls)` is `cls` with the sync client's packer, redis-py's
`HiredisRespSerializer`. hiredis accepts what redis-py's encoder accepts (bytes,
memoryview, str as UTF-8, int, float spelled as `repr` spells it) and refuses the same
(None, bool, other types), and the refusal is redis-py's `DataError`, as before.
"""

from __future__ import annotations

from typing import Any, TypeVar

from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer

__all__ = ["with_hiredis_packing"]

C = TypeVar("C", bound=type[AbstractConnection])


_SYNC_PACKER = HiredisRespSerializer()
"""redis-py's own: it splits a command name with literal arguments ("CONFIG GET") as the
asyncio packer does, and turns hiredis's TypeError into DataError."""


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        return _SYNC_PACKER.pack(*args)


_MADE: dict[type, type] = {}


def with_hiredis_packing(cls: C) -> C:
    """`cls`, a redis-py asyncio connection class, whose commands hiredis packs (one class per `cls`)."""
    if issubclass(cls, _HiredisPacking):
        return cls
    if cls not in _MADE:
        _MADE[cls] = type(f"Hiredis{cls.__name__}", (_HiredisPacking, cls), {})
    return _MADE[cls]  # type: ignore[return-value]
