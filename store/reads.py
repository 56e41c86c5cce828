"""What the HTTP API and the CLI read of the watches, a resource's records and the stats
(the outbox, attempts, dead letters and disabled destinations: store/outbox.py and
store/deliveries.py), and the one write of an inbound hook (a resource made due now).

A stored record that cannot be read is left out of the answer and noted in an `Unreadable`
that the caller reports once the whole answer is read: logged with its key and counted
(`corrupt_records`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from model.operational import OPERATIONAL_PROVIDER
from model.resources import ResourceRef, Snapshot
from store import keys, record_frame
from store.deliveries import DeadLetter
from store.records import decode_state
from store.snapshots import CorruptRecord, ResourceState, Store, WatchMeta, read_history_entry, unpack_snapshot
from store.timeline import read_timelines, timeline_of
from store.unavailable import is_redis_down, redis_problem
from store.watch_cursor import WatchCursor

__all__ = ["ProviderHealth", "Reads", "ResourceRecords", "ResourceRow", "Unreadable", "WatchEntry", "WatchPage",
           "read_stats"]

log = logging.getLogger("statehook.store")

T = TypeVar("T")

SEARCH_COUNT = 4096
"""the most a filtered listing's HSCAN asks for in one call"""
SCAN_BUDGET = 8192
"""the most watch-hash entries one page asks HSCAN to look at (its COUNTs added up): a filter
that few watches match answers with what it found so far and the cursor reached"""


def _glob_literal(text: str) -> str:
    """`text` matched literally in a Redis glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


class Unreadable:
    """The stored records a read could not parse: each is left out of the answer, then
    logged with its key and counted (`corrupt_records`, `Store.count_corrupt`) by `report`."""

    def __init__(self) -> None:
        self.records: list[CorruptRecord] = []

    def read(self, key: str, parse: Callable[..., T], *args: Any) -> T | None:
        """`parse(*args)`, or None (and the record noted) when it cannot be read."""
        try:
            return parse(*args)
        except CorruptRecord as exc:
            self.records.append(CorruptRecord(key, exc.reason))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            self.records.append(CorruptRecord(key, f"unreadable: {type(exc).__name__}"))
        return None

    async def report(self, redis: aioredis.Redis) -> None:
        """Log and count what was skipped. Counting is best effort: a Redis that serves
        reads but refuses writes (READONLY during a failover) does not fail the read."""
        if not self.records:
            return
        try:
            await Store(redis).count_corrupt(self.records)
        except Exception as exc:
            if not is_redis_down(exc):
                raise
            log.warning("api: %d unreadable record(s) not counted: Redis refused (%s)", len(self.records),
                        redis_problem(exc))


def read_stats(raw: Mapping[bytes, bytes]) -> dict[str, int]:
    """The stats hash as counters; a field that is not an integer is logged and left out."""
    stats = {}
    for k, v in raw.items():
        name = k.decode(errors="replace")
        try:
            stats[name] = int(v)
        except ValueError:
            log.warning("unreadable record skipped: %s[%s]: not a counter", keys.STATS, name,
                        extra={"key": f"{keys.STATS}[{name}]"})
    return stats


@dataclass(frozen=True, slots=True)
class WatchEntry:
    rkey: str
    meta: WatchMeta
    due_at: float | None


@dataclass(frozen=True, slots=True)
class WatchPage:
    watches: list[WatchEntry]
    cursor: WatchCursor | None
    """to pass back for the next page; None: this was the last"""


@dataclass(slots=True)
class ResourceRecords:
    """What is stored of one resource; a record that cannot be read is None (or missing
    from `timeline`)."""

    meta: WatchMeta | None
    state: ResourceState | None
    consecutive_errors: int
    due_at: float | None
    snapshot: Snapshot | None
    timeline: list[dict[str, Any]]
    """newest first: id, type, seq, at, severity, summary"""


def _timeline_entry(raw: bytes | str, rkey: str) -> dict[str, Any]:
    item = read_history_entry(raw, rkey)
    if not isinstance(item.get("id"), str):
        raise TypeError("a timeline entry without an id")
    return item


class Reads:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def watch_page(self, bad: Unreadable, *, provider: str | None, source: str | None, cursor: WatchCursor,
                         limit: int, contains: str | None = None) -> WatchPage:
        """At most `limit` watches (HSCAN, store/watch_cursor.py), of one provider and one
        source if given, and whose rkey holds `contains` if given. While too few match,
        HSCAN reads more per call (up to SEARCH_COUNT), and at most SCAN_BUDGET entries in
        all: a page may then hold fewer than `limit` watches, even none, with a cursor to go
        on from."""
        match = f"{provider}:*" if provider else None
        if contains:
            match = f"{provider + ':' if provider else ''}*{_glob_literal(contains)}*"
        found: list[tuple[str, WatchMeta]] = []
        scan, count, after = cursor.scan, cursor.count or limit, cursor.after
        asked = 0
        while True:
            following, entries = await self.redis.hscan(keys.META, scan, match=match, count=count)
            asked += count
            batch = sorted((k.decode(errors="replace"), v) for k, v in entries.items())
            if after is not None:  # the page before ended inside this call's entries
                batch = [(k, v) for k, v in batch if k > after]
                after = None
            for i, (rkey, raw) in enumerate(batch):
                if len(found) == limit:
                    return await self._watch_page(found, WatchCursor(scan, count, batch[i - 1][0]))
                meta = bad.read(f"{keys.META}[{rkey}]", WatchMeta.from_json, raw)
                if meta is not None and (source is None or meta.source == source):
                    found.append((rkey, meta))
            if following == 0:
                return await self._watch_page(found, None)
            scan = int(following)
            if len(found) >= limit or asked >= SCAN_BUDGET:
                return await self._watch_page(found, WatchCursor(scan))
            if match and len(entries) < max(1, limit // 2):
                count = min(SEARCH_COUNT, count * 2)

    async def _watch_page(self, found: list[tuple[str, WatchMeta]], cursor: WatchCursor | None) -> WatchPage:
        dues = await self.redis.zmscore(keys.DUE, [rkey for rkey, _ in found]) if found else []
        return WatchPage([WatchEntry(rkey, meta, due) for (rkey, meta), due in zip(found, dues, strict=True)],
                         cursor)

    async def watched(self, rkeys: Sequence[str]) -> int:
        """How many of `rkeys` are watched."""
        if not rkeys:
            return 0
        return sum(1 for m in await self.redis.hmget(keys.META, list(rkeys)) if m is not None)  # type: ignore[misc]

    async def due_times(self, rkeys: Sequence[str]) -> list[float | None]:
        """When each of `rkeys` is due (None: not in the due set)."""
        return list(await self.redis.zmscore(keys.DUE, list(rkeys))) if rkeys else []

    async def is_watched(self, rkey: str) -> bool:
        return bool(await self.redis.hexists(keys.META, rkey))  # type: ignore[misc]

    async def due_now(self, store: Store, rkey: str) -> None:
        """Make a watched resource due now; a finished one, which left the due set, is put
        back in it (a notification about it re-arms the poll)."""
        if not await store.poll_now(rkey):
            await self.redis.zadd(keys.DUE, {rkey: time.time()})

    async def resource(self, bad: Unreadable, rkey: str, *, history: int = 50) -> ResourceRecords | None:
        """None if `rkey` is neither watched nor ever polled; a destination or provider
        (`statehook:…`) has its operational timeline and nothing else."""
        async with self.redis.pipeline(transaction=True) as pipe:  # the record and its old list as of one moment
            pipe.hget(keys.META, rkey)
            pipe.hget(keys.STATE, rkey)
            pipe.hget(keys.ERRORS, rkey)
            pipe.zscore(keys.DUE, rkey)
            pipe.get(keys.snapshot(rkey))
            pipe.lrange(keys.old_timeline(rkey), 0, history - 1)
            meta_raw, state_raw, errors, due, snap_raw, old_raw = replies = await pipe.execute(raise_on_error=False)
        if isinstance(snap_raw, ResponseError):  # the record's key holds another type: unreadable, not an error
            bad.records.append(CorruptRecord(keys.snapshot(rkey), f"not a record: {redis_problem(snap_raw)}"))
            snap_raw = None
        if failed := [r for r in replies[:-2] if isinstance(r, Exception)]:
            raise failed[0]
        operational = rkey.startswith(OPERATIONAL_PROVIDER + ":")  # a destination's or a provider's timeline
        if meta_raw is None and state_raw is None and not _holds_snapshot(snap_raw) and not (
                operational and (snap_raw or old_raw)):
            return None
        meta = bad.read(f"{keys.META}[{rkey}]", WatchMeta.from_json, meta_raw)
        state = bad.read(f"{keys.STATE}[{rkey}]", decode_state, state_raw)
        snapshot = bad.read(keys.snapshot(rkey), unpack_snapshot, snap_raw)
        try:
            entries = timeline_of(rkey, snap_raw, old_raw, history)
        except CorruptRecord as exc:
            bad.records.append(exc)
            entries = []
        timeline = [bad.read(f"{keys.snapshot(rkey)} (timeline)", _timeline_entry, x, rkey) for x in entries]
        return ResourceRecords(
            meta=meta,
            state=state,
            consecutive_errors=int(errors) if errors and errors.isdigit() else 0,
            due_at=due,
            snapshot=snapshot,
            timeline=[item for item in timeline if item is not None],
        )

    async def stats(self) -> dict[str, int]:
        """The shared counters (store/stats.py names them)."""
        return read_stats(await self.redis.hgetall(keys.STATS))  # type: ignore[misc]

    async def watch_counts(self, now: float) -> tuple[int, int]:
        """(resources due by `now`, resources watched)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcount(keys.DUE, "-inf", now)
            pipe.hlen(keys.META)
            due, watched = await pipe.execute()
        return int(due), int(watched)

    # ---- what `statehook events tail` and `statehook show` read ------------------------------

    async def resource_count(self) -> int:
        """How many resources have a commit state."""
        return int(await self.redis.hlen(keys.STATE))  # type: ignore[misc]

    async def resource_keys(self) -> list[str]:
        return [k.decode() for k in await self.redis.hkeys(keys.STATE)]  # type: ignore[misc]

    async def timeline_heads(self, rkeys: Sequence[str]) -> list[bytes | None]:
        """The newest timeline entry of each resource (None: no timeline), one round trip."""
        return [t[0] if t else None for t in await self.timelines(rkeys, 1)]

    async def timelines(self, rkeys: Sequence[str], limit: int) -> list[list[bytes]]:
        """The `limit` newest timeline entries of each resource, newest first, one round trip;
        an unreadable record is logged, counted and read as no timeline."""
        read = await read_timelines(self.redis, rkeys, limit)
        if bad := [t for t in read if isinstance(t, CorruptRecord)]:
            await Store(self.redis).count_corrupt(bad)
        return [t if isinstance(t, list) else [] for t in read]

    async def newest_outbox(self, count: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """The `count` newest outbox entries, oldest first."""
        return list(reversed(await self.redis.xrevrange(keys.OUTBOX, count=count)))

    async def outbox_after(self, last: bytes, *, count: int, block_ms: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Outbox entries committed after `last`, waiting up to `block_ms` for the first."""
        response = await self.redis.xread({keys.OUTBOX: last}, block=block_ms, count=count)
        return [entry for _stream, entries in response or () for entry in entries]

    async def schedule_facts(self, rkey: str) -> tuple[bytes | None, float]:
        """A resource's raw commit state and how long its provider stays paused (seconds)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.STATE, rkey)
            pipe.pttl(keys.pause(ResourceRef.parse(rkey).provider))
            raw, pause_ms = await pipe.execute()
        return raw, pause_ms / 1000 if pause_ms and pause_ms > 0 else 0.0

    # ---- what the console reads (worker/console/) ------------------------------------------

    async def provider_health(self, providers: Sequence[str]) -> list[ProviderHealth]:
        """Each provider's health: why it is unhealthy (401/403 seen by a poll) and how long
        it stays paused by a 429, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.PROVIDER_HEALTH)
            for provider in providers:
                pipe.pttl(keys.pause(provider))
            unhealthy, *pauses = await pipe.execute()
        reasons = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in unhealthy.items()}
        return [ProviderHealth(p, reasons.get(p), ms / 1000 if ms and ms > 0 else 0.0)
                for p, ms in zip(providers, pauses, strict=True)]

    async def resource_rows(self, bad: Unreadable, rkeys: Sequence[str]) -> list[ResourceRow]:
        """Each resource's commit state, snapshot and consecutive errors, in one round trip
        (a page of the console's watch list)."""
        if not rkeys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.STATE, list(rkeys))
            pipe.mget([keys.snapshot(r) for r in rkeys])
            pipe.hmget(keys.ERRORS, list(rkeys))
            states, snaps, errors = await pipe.execute()
        rows = []
        for rkey, state_raw, snap_raw, err in zip(rkeys, states, snaps, errors, strict=True):
            state = bad.read(f"{keys.STATE}[{rkey}]", decode_state, state_raw) if state_raw is not None else None
            snapshot = bad.read(keys.snapshot(rkey), unpack_snapshot, snap_raw) if snap_raw is not None else None
            rows.append(ResourceRow(rkey, state, snapshot, int(err) if err and err.isdigit() else 0))
        return rows

    async def dead_letter_page(self, bad: Unreadable, *, start: str = "-", end: str = "+",
                               count: int = 100) -> tuple[list[DeadLetter], str | None]:
        """Dead letters from `start` to `end` (stream ids, inclusive; "(id" excludes), oldest
        first, at most `count`; and the id of the last entry read (None: none was), where the
        next page starts. An entry that cannot be read is left out and noted in `bad`."""
        entries = await self.redis.xrange(keys.DLQ, min=start, max=end, count=count)
        out = []
        for raw_id, fields in entries:
            entry_id = raw_id.decode()
            letter = bad.read(f"{keys.DLQ}[{entry_id}]", _dead_letter, entry_id, fields)
            if letter is not None:
                out.append(letter)
        return out, entries[-1][0].decode() if entries else None


def _holds_snapshot(raw: bytes | None) -> bool:
    """Whether a record holds a snapshot (one that cannot be read counts: it is reported)."""
    try:
        return raw is not None and record_frame.snapshot_of(raw) is not None
    except ValueError:
        return True


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    provider: str
    unhealthy: str | None
    """the last 401/403's reason while the provider is unhealthy"""
    paused_for: float
    """seconds a 429's Retry-After still holds every worker off (0: not paused)"""


@dataclass(frozen=True, slots=True)
class ResourceRow:
    rkey: str
    state: ResourceState | None
    snapshot: Snapshot | None
    consecutive_errors: int


def _dead_letter(entry_id: str, fields: Mapping[bytes, bytes]) -> DeadLetter:
    """A dead letter's entry as `DeadLetter`; raises KeyError, ValueError or TypeError for one
    that is not (the console skips it rather than failing the page)."""
    d = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
    event = orjson.loads(d["event"])
    status = d.get("status") or ""
    return DeadLetter(
        id=entry_id, event_id=str(event["id"]), type=str(event["type"]), resource=str(event["resource"]["key"]),
        destination=d["destination"], reason=d["reason"], status=int(status) if status else None,
        attempts=int(d.get("attempts") or 0), at=d.get("at", ""),
    )
