"""Writing to a resource's timeline outside the commit script (which writes the committed
events): statehook's own operational events and the notes about an event (store/history.py
spells both entries). One place keeps the list to its length."""

from __future__ import annotations

from redis.asyncio.client import Pipeline

from store import keys

__all__ = ["queue_timeline_entry"]


def queue_timeline_entry(pipe: Pipeline, rkey: str, entry: bytes, history_length: int) -> None:
    """Queue `entry` at the head of `rkey`'s timeline on `pipe`, the list kept to
    `history_length` entries like the commit script keeps it (0: no timeline)."""
    if history_length > 0:
        pipe.lpush(keys.history(rkey), entry)
        pipe.ltrim(keys.history(rkey), 0, history_length - 1)
