"""Silences in Redis, shared by every worker and the API: one hash (`sh:silences`, id →
JSON) and a version counter raised by every change, so that a dispatcher keeps the set in
memory and reads it again only when the counter moved (or after `refresh_every`).

Ids are random (`sil_` and 16 hex digits), not a sequence: knowing one silence says nothing
about another's id. Expired silences are kept `RETENTION` (5 days, as Alertmanager keeps
them) for `ls --all`, then removed when a silence is written."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from pydantic import ValidationError

from core.silences import ActiveSilences
from model.silences import Silence
from store import keys

__all__ = ["RETENTION", "SilenceCache", "SilenceStore", "new_silence_id"]

log = logging.getLogger("statehook.silences")

RETENTION = 5 * 86400.0
"""Seconds an expired silence is kept (listed with `--all`) before it is removed."""


def new_silence_id() -> str:
    return f"sil_{secrets.token_hex(8)}"


class SilenceStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def put(self, silence: Silence, now: float) -> None:
        """Create or replace `silence` (and drop the silences expired longer than RETENTION)."""
        stale = [s.id for s in await self.all() if s.id != silence.id and s.ends_at < now - RETENTION]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.SILENCES, silence.id, silence.model_dump_json())
            if stale:
                pipe.hdel(keys.SILENCES, *stale)
            pipe.incr(keys.SILENCES_VERSION)
            await pipe.execute()

    async def get(self, silence_id: str) -> Silence | None:
        raw = await self.redis.hget(keys.SILENCES, silence_id)  # type: ignore[misc]
        return None if raw is None else _parse(silence_id, raw)

    async def all(self) -> list[Silence]:
        """Every stored silence, oldest first; one that cannot be read is logged and left out."""
        found = await self.redis.hgetall(keys.SILENCES)  # type: ignore[misc]
        out = [s for k, v in found.items() if (s := _parse(k, v)) is not None]
        return sorted(out, key=lambda s: (s.created_at, s.id))

    async def version(self) -> int:
        raw = await self.redis.get(keys.SILENCES_VERSION)
        try:
            return int(raw or 0)
        except ValueError:
            return -1


def _parse(key: bytes | str, raw: bytes | str) -> Silence | None:
    try:
        return Silence.model_validate_json(raw)
    except (ValidationError, ValueError):
        name = key.decode(errors="replace") if isinstance(key, bytes) else key
        log.warning("silence %s in %s cannot be read: left out", name[:80], keys.SILENCES)
        return None


class SilenceCache:
    """A dispatcher's copy of the silences: `current(now)` reads the version counter (one
    GET) and the hash only when the counter moved or `refresh_every` has passed."""

    def __init__(self, store: SilenceStore, *, refresh_every: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.refresh_every = refresh_every
        self.monotonic = monotonic
        self.active = ActiveSilences()
        self._version: int | None = None
        self._loaded_at = 0.0
        self.loads = 0

    async def current(self, now: float) -> ActiveSilences:
        version = await self.store.version()
        stale = self.monotonic() - self._loaded_at >= self.refresh_every
        if version != self._version or stale:
            self.active = ActiveSilences(await self.store.all()).live(now)
            self._version = version
            self._loaded_at = self.monotonic()
            self.loads += 1
        return self.active
