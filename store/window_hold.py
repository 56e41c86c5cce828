"""Events muted by a maintenance window, held per (route, destination, end of the muting)
until the muting ends, then claimed once across all dispatchers and summarised (the
dispatcher turns them into one `statehook.window.summary` event per destination).

The same way as digests (store/digests.py): a member per held muting in a due set scored
by when it ends, the held events in a list per member, and a claim script that moves the
ended members' lists aside atomically and marks them flushed; the claim is that of the
digests (store/lua/claim_ended_digest_windows.lua, run on these keys). The end of a muting
is computed from the config by every dispatcher alike (core/time_intervals.py), so all of
them file one muting under one member. An event held after its muting was claimed (a
worker whose clock is late) is refused, and delivered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from store import keys

__all__ = ["HeldItem", "HeldWindow", "WindowHold"]

_LUA = Path(__file__).parent / "lua"
_HOLD = (_LUA / "hold_muted_event.lua").read_text()
_CLAIM_ENDED = (_LUA / "claim_ended_digest_windows.lua").read_text()
FLUSHED_TTL_MS = 7 * 86400 * 1000
KEEP_AFTER_END = 7 * 86400.0
"""Seconds a held list outlives the end of its muting when no dispatcher claims it."""


@dataclass(frozen=True, slots=True)
class HeldWindow:
    """One muting of one route for one destination; `route` is the route's key."""

    route: str
    end: float
    destination: str

    @property
    def member(self) -> str:
        return f"{self.route}|{round(self.end * 1000)}|{self.destination}"

    @classmethod
    def parse(cls, member: str | bytes) -> HeldWindow:
        text = member.decode() if isinstance(member, bytes) else member
        route, end_ms, destination = text.split("|", 2)
        return cls(route, int(end_ms) / 1000, destination)


@dataclass(frozen=True, slots=True)
class HeldItem:
    window: HeldWindow
    name: str
    """the window (time interval) that muted it"""
    event: dict[str, Any]
    """the event as delivered, without its snapshot"""
    at: float


class WindowHold:
    def __init__(self, redis: aioredis.Redis, *, grace: float = 0.2, reclaim_after: float = 30.0) -> None:
        self.redis = redis
        self.grace = grace
        self.reclaim_after = reclaim_after
        self._hold = redis.register_script(_HOLD)
        self._claim = redis.register_script(_CLAIM_ENDED)

    async def hold(self, items: Sequence[HeldItem]) -> list[bool]:
        """Hold each item, in one round trip; False for one whose muting was already summarised."""
        if not items:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                w = item.window
                doc = orjson.dumps({"w": item.name, "at": item.at, "e": item.event})
                ttl_ms = round((max(0.0, w.end - item.at) + KEEP_AFTER_END) * 1000)
                await self._hold(keys=[keys.WINDOW_DUE], args=[w.member, round(w.end * 1000), doc, keys.WINDOW_OPEN,
                                                               keys.WINDOW_FLUSHED, ttl_ms], client=pipe)
            return [bool(r) for r in await pipe.execute()]

    async def claim(self, now: float, limit: int = 100) -> list[HeldWindow]:
        """Mutings that have ended (and claims a dead worker left), now this caller's."""
        now_ms = round(now * 1000)
        members = await self._claim(
            keys=[keys.WINDOW_DUE, keys.WINDOW_CLAIMED],
            args=[now_ms, now_ms - round(self.grace * 1000), now_ms - round(self.reclaim_after * 1000),
                  keys.WINDOW_OPEN, keys.WINDOW_TAKEN, keys.WINDOW_FLUSHED, limit, FLUSHED_TTL_MS],
        )
        return [HeldWindow.parse(m) for m in members]

    async def collect(self, window: HeldWindow) -> list[tuple[str, dict[str, Any]]]:
        """The claimed muting's events as (window name, event), in the order they were held,
        each once (an outbox entry reclaimed after a crash is held twice)."""
        raw = await self.redis.lrange(keys.WINDOW_TAKEN + window.member, 0, -1)  # type: ignore[misc]
        seen: set[str] = set()
        out = []
        for item in raw:
            try:
                doc = orjson.loads(item)
                name, event = str(doc["w"]), dict(doc["e"])
                event_id = str(event["id"])
            except (ValueError, KeyError, TypeError):
                continue
            if event_id not in seen:
                seen.add(event_id)
                out.append((name, event))
        return out

    async def done(self, window: HeldWindow) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.WINDOW_TAKEN + window.member)
            pipe.zrem(keys.WINDOW_CLAIMED, window.member)
            await pipe.execute()

    async def pending(self) -> int:
        """Mutings still holding events."""
        return int(await self.redis.zcard(keys.WINDOW_DUE))
