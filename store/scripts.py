"""The store's Lua scripts, one file each in store/lua/, read once per process.

A line `--#include NAME` is replaced by the text of store/lua/NAME.lua: the Lua a few
scripts share (`_record.lua`, the resource record's one writer) is written once.

`register` gives a script bound to a client: redis-py sends it by its SHA (EVALSHA) and
loads it into a Redis that does not know it yet, so a restarted or failed-over server
needs nothing from us.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

__all__ = ["register", "source"]


_INCLUDE = re.compile(r"^--#include (\w+)$", re.MULTILINE)


@functools.cache
def source(name: str) -> str:
    """The text of store/lua/<name>.lua, its includes in place."""
    text = resources.files("store").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda m: source(m.group(1)), text)


def register(redis: aioredis.Redis, name: str) -> AsyncScript:
    return redis.register_script(source(name))
