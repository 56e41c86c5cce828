"""The snapshot store: watches, due times, a poll batch's reads and its atomic commit.

Every Redis round trip here is batched (HMGET, MGET, pipelines): one per step of a poll
batch, never one per resource. The records are read and written by their codecs
(store/records.py: state and watch; store/history.py: snapshot and timeline entry), the
Lua scripts are store/lua/*.lua (store/scripts.py), and the commit is store/commit.py.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from model.resources import Snapshot
from store import keys, scripts, sweeps
from store.commit import BatchHealth, Commit, HealthReplies, queue_commit, queue_health, queue_updates, read_health
from store.history import history_entry, pack_snapshot, read_history_entry, unpack_snapshot
from store.records import CorruptRecord, ResourceState, WatchMeta, decode_meta, decode_state
from store.timeline import read_timelines

__all__ = ["BatchHealth", "Commit", "Committed", "CorruptRecord", "Loaded", "ResourceState", "Store", "WatchMeta",
           "history_entry", "lease_until", "pack_snapshot", "read_history_entry", "unpack_snapshot"]

log = logging.getLogger("statehook.store")

_KNOWN_METAS = 1024
"""distinct stored watches `Store.load` keeps decoded (forgotten all at once past this)"""


@dataclass(slots=True)
class Loaded:
    """What a poll batch reads of its resources before fetching them (`Store.load`)."""

    metas: list[WatchMeta | None]
    states: list[ResourceState | None]
    failures: list[int]
    epoch: str | None
    """the dataset's epoch; None when Redis lost its data (nothing is committed then)"""
    corrupt: set[str]
    """rkeys whose watch meta cannot be read: logged, counted and skipped"""
    booked: dict[str, float] = field(default_factory=dict)
    """rkey -> the provider rate slot it booked (tasks/rate_slots.py), for those that have one"""


def lease_until(until: float, lease: float) -> float:
    """The score a claim up to `until` leases its resources with: one value per claim, by
    which `Store.release_lease` finds them again."""
    return until + lease


def _slots(rkeys: Sequence[str], raw: Sequence[bytes | None]) -> dict[str, float]:
    """The booked slots of `rkeys` as stored (an unreadable one is as none: a new slot is taken)."""
    out = {}
    for rkey, value in zip(rkeys, raw, strict=True):
        if value:
            try:
                out[rkey] = float(value)
            except ValueError:
                pass
    return out


@dataclass(slots=True)
class Committed:
    """What a poll batch's round trip made (`Store.commit_batch`)."""

    made: list[bool]
    """whether each commit was made"""
    health: HealthReplies


class Store:
    def __init__(self, redis: aioredis.Redis, *, history_length: int = 50) -> None:
        self.redis = redis
        self.history_length = history_length
        self._commit = scripts.register(redis, "commit_poll")
        self._lease = scripts.register(redis, "lease_due")
        self._release = scripts.register(redis, "release_lease")
        self._listed = scripts.register(redis, "match_listed")
        self._end_sweep = scripts.register(redis, "end_sweep")
        self._metas: dict[bytes, WatchMeta] = {}
        """watches decoded by `load`, by their stored bytes: most watched resources share a
        handful of them (`{"i":60.0}`), and a batch decoded each of its 200 again"""

    # ---- watches ------------------------------------------------------------------

    async def add_watches(self, items: Iterable[tuple[str, WatchMeta]], *, due_at: float | None = None) -> int:
        """Register watches; a resource already watched keeps its due time. Returns how many are new."""
        items = list(items)
        if not items:
            return 0
        when = time.time() if due_at is None else due_at
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in range(0, len(items), 1000):
                chunk = items[i : i + 1000]
                pipe.hset(keys.META, mapping={rkey: meta.to_json() for rkey, meta in chunk})
                pipe.zadd(keys.DUE, {rkey: when for rkey, _ in chunk}, nx=True)
            results = await pipe.execute()
        return sum(int(r) for r in results[1::2])

    async def remove_watches(self, rkeys: Sequence[str]) -> int:
        if not rkeys:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.DUE, *rkeys)
            pipe.hdel(keys.META, *rkeys)
            pipe.hdel(keys.ERRORS, *rkeys)
            pipe.zrem(keys.LATE, *rkeys)
            pipe.hdel(keys.BOOKED, *rkeys)
            sweeps = [keys.sweep(r, which) for r in rkeys if ":scan:" in r for which in ("cur", "prev")]
            if sweeps:
                pipe.delete(*sweeps)
            removed, *_ = await pipe.execute()
        return int(removed)

    async def watches(self, source: str | None = None) -> dict[str, WatchMeta]:
        raw = await self.redis.hgetall(keys.META)  # type: ignore[misc]
        out = {}
        bad: list[CorruptRecord] = []
        for k, v in raw.items():
            rkey = k.decode(errors="replace")
            try:
                meta = decode_meta(v, f"{keys.META}[{rkey}]")
            except CorruptRecord as exc:
                bad.append(exc)
                continue
            if meta is not None and (source is None or meta.source == source):
                out[rkey] = meta
        await self.count_corrupt(bad)
        return out

    async def poll_now(self, rkey: str) -> bool:
        """Make a watched resource due now (a hint from an inbound hook)."""
        return bool(await self.redis.zadd(keys.DUE, {rkey: time.time()}, xx=True, ch=True))

    async def claim_due_times(self, until: float, lease: float, limit: int) -> list[tuple[str, float]]:
        """Claims what is due by `until` (leasing it for `lease` seconds past `until`);
        returns (rkey, due time) in due order, so that a poll can wait for its time. What is
        claimed is late (`sh:late`, at the due time of its first claim) until it is polled."""
        raw = await self._lease(keys=[keys.DUE, keys.LATE], args=[until, lease_until(until, lease), limit])
        return [(raw[i].decode(), float(raw[i + 1])) for i in range(0, len(raw), 2)]

    async def release_lease(self, leased_until: float, due: float) -> int:
        """What a claim leased until `leased_until` (`lease_until`) and nothing has
        rescheduled since is due at `due`; returns how many. For a claim whose answer was
        lost (a hung Redis runs what was sent to it once it resumes): its resources would
        otherwise wait out their lease unpolled."""
        return int(await self._release(keys=[keys.DUE], args=[leased_until, due]))

    # ---- poll batch reads ------------------------------------------------------------

    async def load(self, rkeys: Sequence[str]) -> Loaded:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.META, list(rkeys))
            pipe.hmget(keys.STATE, list(rkeys))
            pipe.hmget(keys.ERRORS, list(rkeys))
            pipe.get(keys.EPOCH)
            pipe.hmget(keys.BOOKED, list(rkeys))
            raw_metas, raw_states, errors, epoch, booked = await pipe.execute()
        loaded = Loaded([], [], [int(e) if e and e.isdigit() else 0 for e in errors],
                        epoch.decode() if epoch else None, set(), _slots(rkeys, booked))
        bad: list[CorruptRecord] = []
        known = self._metas
        for rkey, raw in zip(rkeys, raw_metas, strict=True):
            meta = known.get(raw) if raw else None
            if meta is None:
                try:
                    meta = decode_meta(raw, f"{keys.META}[{rkey}]")
                except CorruptRecord as exc:
                    bad.append(exc)
                    loaded.corrupt.add(rkey)
                if meta is not None:
                    if len(known) >= _KNOWN_METAS:
                        known.clear()
                    known[raw] = meta
            loaded.metas.append(meta)
        loaded.states = await self._parse_states(rkeys, raw_states, bad)
        await self.count_corrupt(bad)
        return loaded

    async def _parse_states(self, rkeys: Sequence[str], raw: Sequence[bytes | None],
                            bad: list[CorruptRecord]) -> list[ResourceState | None]:
        """States of `rkeys`; an unreadable one is forgotten (the next look takes a baseline)."""
        states: list[ResourceState | None] = []
        forget = []
        for rkey, value in zip(rkeys, raw, strict=True):
            try:
                states.append(decode_state(value))
            except CorruptRecord as exc:  # the key is spelled out for an unreadable record only
                bad.append(CorruptRecord(f"{keys.STATE}[{rkey}]", exc.reason))
                states.append(None)
                forget.append(rkey)
        if forget:
            await self.redis.hdel(keys.STATE, *forget)  # type: ignore[misc]
        return states

    async def count_corrupt(self, bad: Sequence[CorruptRecord]) -> None:
        """Log each unreadable record with its key and count them (`corrupt_records`)."""
        if not bad:
            return
        for exc in bad:
            log.warning("unreadable record skipped: %s", exc, extra={"key": exc.key})
        await self.redis.hincrby(keys.STATS, "corrupt_records", len(bad))  # type: ignore[misc]

    async def states(self, rkeys: Sequence[str]) -> list[ResourceState | None]:
        if not rkeys:
            return []
        bad: list[CorruptRecord] = []
        states = await self._parse_states(rkeys, await self.redis.hmget(keys.STATE, list(rkeys)), bad)  # type: ignore[misc]
        await self.count_corrupt(bad)
        return states

    # ---- the dataset ---------------------------------------------------------------

    async def epoch(self) -> str | None:
        raw = await self.redis.get(keys.EPOCH)
        return raw.decode() if raw else None

    async def ensure_epoch(self) -> tuple[str, bool]:
        """This dataset's epoch, made now if it has none; True when this call made it."""
        made = secrets.token_hex(8)
        if await self.redis.set(keys.EPOCH, made, nx=True):
            return made, True
        current = await self.epoch()
        return (current, False) if current else await self.ensure_epoch()

    async def listed_unchanged(self, rkeys: Sequence[str], fingerprints: Sequence[str], *,
                               now: float | None = None, sweep: str | None = None) -> list[bool]:
        """Whether each resource's state holds that listing fingerprint (`core.fingerprint.
        fingerprint`) as its preview, and no stall needs a look at `now` (one due, or a record
        that tracks none yet): the cheap check of a scan. With `sweep` (a scan's rkey), the
        rkeys are added to that scan's sweep in progress in the same round trip. Redis compares
        (lua/match_listed.lua): the rkeys and fingerprints go as two
        newline-joined arguments and the answer is one string of 0s and 1s, because packing
        1,000 arguments and parsing 1,000 replies cost the worker more than the rest of the
        comparison (measured: ~3 ms of a page's ~25)."""
        if not rkeys:
            return []
        now = time.time() if now is None else now
        if any("\n" in k for k in rkeys):  # not seen in an id, but then the plain way
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(keys.STATE, list(rkeys))
                if sweep is not None:
                    pipe.rpush(keys.sweep(sweep, "cur"), sweeps.entry(rkeys))
                raw = (await pipe.execute())[0]
            return [_holds_preview(r, fp, now) for r, fp in zip(raw, fingerprints, strict=True)]
        names = [keys.STATE] if sweep is None else [keys.STATE, keys.sweep(sweep, "cur")]
        flags = await self._listed(keys=names, args=["\n".join(rkeys), "\n".join(fingerprints), repr(now)])
        if len(flags) != len(rkeys):  # an empty rkey or fingerprint would shift the answers
            raise ValueError(f"listed_unchanged: {len(flags)} answers for {len(rkeys)} resources")
        return [f == 49 for f in flags]  # b"1"

    async def snapshots(self, rkeys: Sequence[str]) -> list[Snapshot | None]:
        """Stored snapshots; an unreadable one is logged, counted and read as missing."""
        if not rkeys:
            return []
        raw = await self.redis.mget([keys.snapshot(r) for r in rkeys])
        out: list[Snapshot | None] = []
        bad: list[CorruptRecord] = []
        for rkey, value in zip(rkeys, raw, strict=True):
            try:
                out.append(unpack_snapshot(value, keys.snapshot(rkey)))
            except CorruptRecord as exc:
                bad.append(exc)
                out.append(None)
        await self.count_corrupt(bad)
        return out

    # ---- writes -------------------------------------------------------------------------

    async def commit(
        self,
        commits: Sequence[Commit],
        *,
        reschedule: Mapping[str, float] | None = None,
        clear_errors: Sequence[str] = (),
        errors: Sequence[str] = (),
        epoch: str | None = None,
        unhealthy: Mapping[str, str] | None = None,
        healthy: Iterable[str] = (),
    ) -> list[bool]:
        """`commit_batch` with a health of `unhealthy` (a provider and why) and `healthy`
        (providers that answered); returns whether each commit was made."""
        health = BatchHealth(answered=set(healthy), unauthorized=dict(unhealthy or {}))
        committed = await self.commit_batch(commits, reschedule=reschedule, clear_errors=clear_errors,
                                            errors=errors, epoch=epoch, health=health)
        return committed.made

    async def commit_batch(
        self,
        commits: Sequence[Commit],
        *,
        reschedule: Mapping[str, float] | None = None,
        clear_errors: Sequence[str] = (),
        errors: Sequence[str] = (),
        epoch: str | None = None,
        health: BatchHealth | None = None,
        polled: Sequence[str] = (),
        listed: Sequence[tuple[str, Sequence[str]]] = (),
        booked: Mapping[str, float] | None = None,
        unbooked: Sequence[str] = (),
        now: float | None = None,
    ) -> Committed:
        """Apply a poll batch's outcome in one round trip: each commit atomically (snapshot,
        state, due time and events, guarded by the expected state and by `epoch`, the
        dataset the batch read: after a data loss nothing read before it is committed), and
        the cheap updates beside them (store/commit.py: due times of unchanged resources,
        error counters, what was polled and listed, the providers' health)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for c in commits:
                await queue_commit(self._commit, pipe, c, history_length=self.history_length, epoch=epoch)
            queue_updates(pipe, reschedule=reschedule or {}, clear_errors=clear_errors, errors=errors,
                          polled=polled, listed=listed, booked=booked, unbooked=unbooked)
            before = len(pipe.command_stack)
            tags = queue_health(pipe, health or BatchHealth(), time.time() if now is None else now)
            results = await pipe.execute()
        return Committed([bool(r) for r in results[: len(commits)]], read_health(tags, results[before:]))

    async def mark_unhealthy(self, provider: str, reason: str) -> None:
        """Why `provider` is unhealthy (/healthz reads it; its next answered poll clears it)."""
        await self.redis.hset(keys.PROVIDER_HEALTH, provider, reason)  # type: ignore[misc]

    # ---- a scan's sweeps ---------------------------------------------------------------

    async def unlisted(self, scan: str, kept: str) -> list[str]:
        """Members of the scan's last full sweep that the one in progress did not list: the
        rkeys it no longer lists, and those kept from a sweep before (`kept` + rkey,
        tasks/scan_sweep.py) whose rkey it did not list either (store/sweeps.py)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lrange(keys.sweep(scan, "prev"), 0, -1)
            pipe.lrange(keys.sweep(scan, "cur"), 0, -1)
            prev, cur = await pipe.execute(raise_on_error=False)
        if isinstance(prev, ResponseError):  # a SET of rkeys: sweeps were stored so before
            old = await self.redis.smembers(keys.sweep(scan, "prev"))  # type: ignore[misc]
            prev = [sweeps.entry([m.decode(errors="replace")]).encode() for m in old]
        if isinstance(cur, Exception):
            raise cur
        return sweeps.unlisted(prev, cur, kept)

    async def end_sweep(self, scan: str, keep: Sequence[str] = ()) -> None:
        """The sweep in progress, with `keep` (ids not listed but not gone), becomes the last
        full one (lua/end_sweep.lua)."""
        await self._end_sweep(keys=[keys.sweep(scan, "cur"), keys.sweep(scan, "prev")],
                              args=[sweeps.entry(keep)] if keep else [])

    async def drop_sweep(self, scan: str) -> None:
        """A sweep that did not reach its end (its provider failed): what it listed so far is
        forgotten."""
        await self.redis.delete(keys.sweep(scan, "cur"))

    async def incr_stats(self, counts: dict[str, int]) -> None:
        if not counts:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, n in counts.items():
                pipe.hincrby(keys.STATS, name, n)
            await pipe.execute()

    async def stats(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in (await self.redis.hgetall(keys.STATS)).items()}  # type: ignore[misc]

    async def history(self, rkey: str, limit: int = 50) -> list[dict[str, Any]]:
        (raw,) = await read_timelines(self.redis, [rkey], limit)
        if isinstance(raw, CorruptRecord):
            await self.count_corrupt([raw])
            return []
        out, bad = [], []
        for entry in raw:
            try:
                out.append(read_history_entry(entry, rkey))
            except (ValueError, TypeError) as exc:
                bad.append(CorruptRecord(keys.snapshot(rkey), f"not a timeline entry: {type(exc).__name__}"))
        await self.count_corrupt(bad)
        return out


def _holds_preview(raw: bytes | None, fingerprint: str, now: float) -> bool:
    """lua/match_listed.lua's answer, in Python."""
    try:
        state = decode_state(raw)
    except CorruptRecord:
        return False
    if state is None or state.preview != fingerprint or state.entered_at is None:
        return False
    return state.stall_at is None or state.stall_at > now
