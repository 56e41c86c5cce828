"""What Slack delivery keeps in Redis: the key of each webhook's (or channel's) send schedule
in the shared rate schedule (store/rates.py), and the thread each resource's messages answer in.

The webhook URL and the bot token are secrets: a key holds a hash of them, never them.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import redis.asyncio as aioredis

from store import keys

__all__ = ["THREAD_TTL", "SlackThreads", "ThreadClaim", "pacing_key"]

THREAD_TTL = 30 * 86400
"""A resource quiet for this long starts a new thread."""
PENDING = "pending"
"""Held in a thread's key while its first message is being sent."""
CLAIM_TRIES = 100
CLAIM_PAUSE = 0.05


def _hash(*parts: str) -> str:
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=10).hexdigest()


def _text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def pacing_key(*target: str) -> str:
    """The schedule of one webhook (its URL) or one channel (its name and the bot token)."""
    return keys.slack_rate(_hash(*target))


@dataclass(frozen=True, slots=True)
class ThreadClaim:
    """`ts`: the thread to answer in; `root`: this send starts the thread (and must record
    its `ts` or release the claim). Neither: send outside a thread."""

    ts: str | None
    root: bool


class SlackThreads:
    """The `ts` of the thread a resource's messages answer in, per destination and channel."""

    def __init__(self, redis: aioredis.Redis, *, ttl: float = THREAD_TTL) -> None:
        self.redis = redis
        self.ttl = ttl

    @staticmethod
    def key(destination: str, channel: str, rkey: str) -> str:
        return keys.slack_thread(destination, _hash(channel), rkey)

    async def claim(self, key: str, pending_for: float) -> ThreadClaim:
        """The thread's ts, or a claim to start it. Two events of a new resource sent at
        once must not start two threads: the second waits (up to `CLAIM_TRIES` pauses) for
        the first to record its ts; a claim not released is let go after `pending_for`."""
        for _ in range(CLAIM_TRIES):
            if await self.redis.set(key, PENDING, nx=True, px=round(pending_for * 1000)):
                return ThreadClaim(None, True)
            value = _text(await self.redis.get(key))
            if value is not None and value != PENDING:
                return ThreadClaim(value, False)
            if value is not None:
                await asyncio.sleep(CLAIM_PAUSE)
        return ThreadClaim(None, False)

    async def started(self, key: str, ts: str) -> None:
        """The thread's first message was posted as `ts`."""
        await self.redis.set(key, ts, ex=round(self.ttl))

    async def used(self, key: str) -> None:
        """A message answered in the thread: it lives on."""
        await self.redis.expire(key, round(self.ttl))

    async def forget(self, key: str) -> None:
        """Slack no longer knows the thread."""
        await self.redis.delete(key)

    async def release(self, key: str) -> None:
        """The thread's first message failed: another send may start it."""
        if _text(await self.redis.get(key)) == PENDING:
            await self.redis.delete(key)
