"""What Redis itself counts: commands and their CPU time (INFO commandstats), and a client
that counts its own commands, so that the benchmark's reads of its progress can be taken
out of a figure per poll."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

__all__ = ["CommandStats", "CountingRedis", "command_stats", "redis_cpu_s"]


@dataclass(frozen=True, slots=True)
class CommandStats:
    """Calls and microseconds per command (lower-case names). Commands that a Lua script
    runs are counted too, under their own names, besides the EVALSHA that ran them."""

    calls: dict[str, int]
    usec: dict[str, int]

    def __sub__(self, before: CommandStats) -> CommandStats:
        return CommandStats(
            {k: v - before.calls.get(k, 0) for k, v in self.calls.items() if v - before.calls.get(k, 0)},
            {k: v - before.usec.get(k, 0) for k, v in self.usec.items() if v - before.usec.get(k, 0)},
        )

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_usec(self) -> int:
        return sum(self.usec.values())

    def without(self, calls: dict[str, int]) -> CommandStats:
        """These figures less `calls` (commands someone else sent, counted by them)."""
        return CommandStats({k: v - calls.get(k, 0) for k, v in self.calls.items()}, dict(self.usec))


async def command_stats(redis: aioredis.Redis) -> CommandStats:
    info: dict[str, Any] = await redis.info("commandstats")
    calls, usec = {}, {}
    for key, value in info.items():
        name = key.removeprefix("cmdstat_").lower()
        calls[name] = int(value["calls"])
        usec[name] = int(value["usec"])
    return CommandStats(calls, usec)


async def redis_cpu_s(redis: aioredis.Redis) -> float:
    """CPU seconds Redis's main thread has used (INFO cpu, getrusage: microseconds). Unlike
    commandstats, it counts a script's work once (EVALSHA's time includes its commands')."""
    info: dict[str, Any] = await redis.info("cpu")
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])


class CountingRedis(aioredis.Redis):
    """A client that counts the commands it sends itself (not those of its pipelines)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: dict[str, int] = {}

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = str(args[0]).lower()
        self.sent[name] = self.sent.get(name, 0) + 1
        return await super().execute_command(*args, **options)

    def count(self, name: str, n: int = 1) -> None:
        """Commands sent another way (a pipeline), counted by hand."""
        self.sent[name] = self.sent.get(name, 0) + n
