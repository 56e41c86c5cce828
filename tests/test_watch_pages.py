"""A page of the watch listing holds at most `limit` watches, also when one HSCAN call
returns more (a small hash answers whole); the cursor then goes on inside that call, and
following it lists every watch once, also while watches are added and removed meanwhile."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from store.reads import Reads, Unreadable
from store.snapshots import Store, WatchMeta
from store.watch_cursor import WatchCursor


async def _watch(redis: aioredis.Redis, rkeys: list[str], source: str = "api") -> None:
    await Store(redis).add_watches([(k, WatchMeta(interval=60, source=source)) for k in rkeys])


async def _all_pages(reads: Reads, limit: int, **filters: str) -> tuple[list[str], int]:
    seen: list[str] = []
    cursor: WatchCursor | None = WatchCursor()
    pages = 0
    while cursor is not None:
        page = await reads.watch_page(Unreadable(), provider=filters.get("provider"), source=filters.get("source"),
                                      cursor=WatchCursor.parse(cursor.token()), limit=limit)
        assert len(page.watches) <= limit
        seen += [w.rkey for w in page.watches]
        cursor, pages = page.cursor, pages + 1
    return seen, pages


@pytest.mark.parametrize("n", [16, 3000])  # a listpack hash (one HSCAN call answers it whole), a hashtable
@pytest.mark.parametrize("limit", [1, 7, 100])
async def test_pages_hold_at_most_limit_and_list_every_watch_once(redis: aioredis.Redis, n: int, limit: int) -> None:
    rkeys = [f"rev:order:TC{i:05d}" for i in range(n)]
    await _watch(redis, rkeys)
    seen, pages = await _all_pages(Reads(redis), limit)
    assert sorted(seen) == rkeys  # each once
    assert pages >= n // limit


async def test_a_source_filter_counts_only_what_it_keeps(redis: aioredis.Redis) -> None:
    await _watch(redis, [f"rev:order:A{i}" for i in range(10)], source="cli")
    await _watch(redis, [f"rev:order:B{i}" for i in range(10)])
    seen, _ = await _all_pages(Reads(redis), 3, source="cli")
    assert sorted(seen) == sorted(f"rev:order:A{i}" for i in range(10))


async def test_a_watch_present_throughout_is_listed_while_others_come_and_go(redis: aioredis.Redis) -> None:
    kept = [f"rev:order:K{i:02d}" for i in range(40)]
    await _watch(redis, kept)
    reads, seen = Reads(redis), []
    cursor: WatchCursor | None = WatchCursor()
    step = 0
    while cursor is not None:
        page = await reads.watch_page(Unreadable(), provider=None, source=None, cursor=cursor, limit=3)
        seen += [w.rkey for w in page.watches]
        cursor, step = page.cursor, step + 1
        await _watch(redis, [f"rev:order:N{step:02d}"])  # added meanwhile
        await Store(redis).remove_watches([f"rev:order:N{step - 1:02d}"])  # and removed
    assert set(kept) <= set(seen)


def test_a_cursor_token_reads_back_the_same() -> None:
    for cursor in (WatchCursor(), WatchCursor(12), WatchCursor(12, 100, "rev:order:TC1"),
                   WatchCursor(3, 4096, "artistree:order:ü/…")):
        assert WatchCursor.parse(cursor.token()) == cursor
    for token in ("", "-1", "1.", "1.0.QQ", "01", "x", "1.2.Q=", "1" * 20):
        with pytest.raises(ValueError):
            WatchCursor.parse(token)
