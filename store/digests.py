"""Digest windows: what a route with `digest = "5m"` selects for a destination during one
window is gathered into a single `statehook.digest` event, delivered like any other event
(retries, dead letters, replay, recorded attempts), which email renders as one message.

Windows are aligned to the clock (a 5-minute window is 10:00–10:05, 10:05–10:10, …), so
that every worker files an event under the same window and a digest has a deterministic
id. The dispatcher adds events (`DigestBuffer.add`) and, on every step, claims the windows
that have ended (`claim`), turns each into a digest event (`collect`) and enqueues its
delivery with a deterministic job id before releasing it (`done`). A claim that a dead
worker never released is taken again after `reclaim_after`; the job id makes that safe.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from model.events import DIGEST_TYPE, Event, Severity
from store import keys

__all__ = [
    "DIGEST_EVENTS_KEPT",
    "DigestBuffer",
    "DigestWindow",
    "digest_event",
    "digest_id",
    "window_start",
]

DIGEST_EVENTS_KEPT = 200
"""Events carried in one digest; the count says how many there were in all."""

PREFIX = keys.DIGEST_PREFIX
DUE, CLAIMED, OPEN, TAKEN, FLUSHED = (keys.DIGEST_DUE, keys.DIGEST_CLAIMED, keys.DIGEST_OPEN, keys.DIGEST_TAKEN,
                                      keys.DIGEST_FLUSHED)

_FILE = (Path(__file__).parent / "lua" / "file_in_digest_window.lua").read_text()
_CLAIM_ENDED = (Path(__file__).parent / "lua" / "claim_ended_digest_windows.lua").read_text()


def window_start(now: float, window: float) -> float:
    return math.floor(now / window) * window


def digest_id(route: str, destination: str, start: float, window: float) -> str:
    h = hashlib.blake2b(f"{route}\x00{destination}\x00{start:.3f}\x00{window:.3f}".encode(), digest_size=12)
    return f"dig_{h.hexdigest()}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(start: float, end: float) -> str:
    a, b = datetime.fromtimestamp(start, tz=UTC), datetime.fromtimestamp(end, tz=UTC)
    fmt = "%H:%M:%S" if (start % 60 or end % 60) else "%H:%M"
    if a.date() == b.date():
        return f"{a:%Y-%m-%d} {a.strftime(fmt)}–{b.strftime(fmt)} UTC"
    return f"{a:%Y-%m-%d} {a.strftime(fmt)} – {b:%Y-%m-%d} {b.strftime(fmt)} UTC"


def digest_event(
    route: str, route_name: str | None, destination: str, start: float, window: float, events: Sequence[dict[str, Any]]
) -> Event:
    """One event carrying a window's events (without their snapshots). Pure."""
    end = start + window
    kept = [{**e, "snapshot": None} for e in events[:DIGEST_EVENTS_KEPT]]
    severity = max((Severity(e["severity"]) for e in events), key=lambda s: s.rank, default=Severity.INFO)
    n = len(events)
    name = route_name or f"route {route}"
    return Event(
        id=digest_id(route, destination, start, window),
        type=DIGEST_TYPE,
        provider="statehook",
        resource={"kind": "digest", "id": f"{destination}:{route}", "key": f"statehook:digest:{destination}:{route}",
                  "url": None, "title": f"Digest of {name}"},
        seq=int(start),
        detected_at=_iso(end),
        severity=severity,
        summary=f"{n} event{'' if n == 1 else 's'} ({_label(start, end)})",
        data={
            "route": route,
            "route_name": route_name,
            "destination": destination,
            "window": {"start": _iso(start), "end": _iso(end), "seconds": window, "label": _label(start, end)},
            "count": n,
            "omitted": n - len(kept),
            "events": kept,
        },
        snapshot=None,
    )


@dataclass(frozen=True, slots=True)
class DigestWindow:
    """One (route, destination, window) whose events are gathered; `route` is the route's key."""

    route: str
    window: float
    start: float
    destination: str

    @property
    def member(self) -> str:
        return f"{self.route}|{round(self.window * 1000)}|{round(self.start * 1000)}|{self.destination}"

    @classmethod
    def parse(cls, member: str | bytes) -> DigestWindow:
        text = member.decode() if isinstance(member, bytes) else member
        route, window_ms, start_ms, destination = text.split("|", 3)
        return cls(route, int(window_ms) / 1000, int(start_ms) / 1000, destination)


class DigestBuffer:
    def __init__(self, redis: aioredis.Redis, *, grace: float = 0.2, reclaim_after: float = 30.0) -> None:
        self.redis = redis
        self.grace = grace
        self.reclaim_after = reclaim_after
        self._add = redis.register_script(_FILE)
        self._claim = redis.register_script(_CLAIM_ENDED)

    async def add(
        self, route: str, destination: str, event_json: bytes, window: float, now: float | None = None
    ) -> DigestWindow:
        now = time.time() if now is None else now
        start = window_start(now, window)
        ttl_ms = round((window * 3 + 86400) * 1000)
        member = await self._add(
            keys=[DUE],
            args=[route, round(window * 1000), round(start * 1000), destination, event_json, OPEN, FLUSHED, ttl_ms],
        )
        if not member:
            raise RuntimeError(f"no open digest window for route {route} and {destination}")
        return DigestWindow.parse(member)

    async def claim(self, now: float | None = None, limit: int = 100) -> list[DigestWindow]:
        """Windows that have ended (plus claims left by a dead worker), now this caller's."""
        now = time.time() if now is None else now
        now_ms = round(now * 1000)
        members = await self._claim(
            keys=[DUE, CLAIMED],
            args=[now_ms, now_ms - round(self.grace * 1000), now_ms - round(self.reclaim_after * 1000),
                  OPEN, TAKEN, FLUSHED, limit, 7 * 86400 * 1000],
        )
        return [DigestWindow.parse(m) for m in members]

    async def collect(self, window: DigestWindow, route_name: str | None = None) -> Event | None:
        raw = await self.redis.lrange(TAKEN + window.member, 0, -1)  # type: ignore[misc]
        seen: set[str] = set()
        events = []
        for item in raw:
            doc = orjson.loads(item)
            if doc["id"] not in seen:  # an outbox entry reclaimed after a crash is filed twice
                seen.add(doc["id"])
                events.append(doc)
        if not events:
            return None
        return digest_event(window.route, route_name, window.destination, window.start, window.window, events)

    async def done(self, window: DigestWindow) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(TAKEN + window.member)
            pipe.zrem(CLAIMED, window.member)
            await pipe.execute()

    async def pending(self) -> int:
        """Windows still gathering events."""
        return int(await self.redis.zcard(DUE))
