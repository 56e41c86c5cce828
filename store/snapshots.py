"""The snapshot store: watches, due times, snapshots and the atomic commit.

Every Redis round trip here is batched (HMGET, MGET, pipelines): one per step of a poll
batch, never one per resource.
"""

from __future__ import annotations

import calendar
import logging
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from core.events import event_id, utc_iso
from model.events import Event
from model.resources import ResourceRef, Snapshot
from model.values import MAX_DURATION, MIN_DURATION
from store import keys, snapshot_codec

__all__ = ["Commit", "CorruptRecord", "Loaded", "ResourceState", "Store", "WatchMeta", "history_entry",
           "read_history_entry"]

log = logging.getLogger("statehook.store")


class CorruptRecord(ValueError):
    """A stored value that cannot be read (written by hand, by another program, or damaged)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason

# KEYS: state hash, snapshot key, outbox, due zset, history list, epoch
# ARGV: rkey, expected token, new token, snapshot, due ('' = stop polling, '-' = leave), history
#       length, number of events n, n event JSONs, n history entries, epoch ('*' = any)
_COMMIT = """
local epoch = ARGV[#ARGV]
if epoch ~= '*' and redis.call('GET', KEYS[6]) ~= epoch then return 0 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (cur or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[4], ARGV[1])
elseif ARGV[5] ~= '-' then
  redis.call('ZADD', KEYS[4], 'XX', ARGV[5], ARGV[1])
end
local keep = tonumber(ARGV[6])
local n = tonumber(ARGV[7])
for i = 1, n do
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[7 + i])
  if keep > 0 then redis.call('LPUSH', KEYS[5], ARGV[7 + n + i]) end
end
if n > 0 and keep > 0 then redis.call('LTRIM', KEYS[5], 0, keep - 1) end
return 1
"""

# KEYS: due zset. ARGV: until, lease until, limit. Claims what is due by `until` by moving it
# to the lease; returns rkey, due time, rkey, due time, ... The lease is set by one ZADD per
# 500 members (Lua's unpack has a stack limit): a ZADD per member cost Redis ~5 µs a poll.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local args = {}
for i = 1, #due, 2 do
  args[#args + 1] = ARGV[2]
  args[#args + 1] = due[i]
  if #args == 1000 or i + 1 == #due then
    redis.call('ZADD', KEYS[1], 'XX', unpack(args))
    args = {}
  end
end
return due
"""


# KEYS: state hash. ARGV: newline-joined rkeys, newline-joined fingerprints. Returns one
# character per rkey: "1" when its state's fourth field equals its fingerprint, else "0".
_LISTED = """
local rkeys, fps = {}, {}
for k in string.gmatch(ARGV[1], '[^\\n]+') do rkeys[#rkeys + 1] = k end
for f in string.gmatch(ARGV[2], '[^\\n]+') do fps[#fps + 1] = f end
local states = redis.call('HMGET', KEYS[1], unpack(rkeys))
local out = {}
for i = 1, #rkeys do
  local v = states[i]
  local same = '0'
  if v then
    local a = string.find(v, '|', 1, true)
    local b = a and string.find(v, '|', a + 1, true)
    local c = b and string.find(v, '|', b + 1, true)
    if c then
      local d = string.find(v, '|', c + 1, true)
      if string.sub(v, c + 1, d and d - 1 or -1) == fps[i] then same = '1' end
    end
  end
  out[i] = same
end
return table.concat(out)
"""


@dataclass(frozen=True, slots=True)
class WatchMeta:
    interval: float
    discovered: bool = False
    scan: dict[str, str] | None = None
    source: str = "api"

    def to_json(self) -> bytes:
        """Only what differs from the defaults (`from_json` fills them in): a plain watch is
        `{"i":60.0}`, 10 bytes in every watched resource's field rather than 41."""
        d: dict[str, Any] = {"i": self.interval}
        if self.discovered:
            d["d"] = True
        if self.scan is not None:
            d["s"] = self.scan
        if self.source != "api":
            d["src"] = self.source
        return orjson.dumps(d)

    @classmethod
    def from_json(cls, raw: bytes | str | None, key: str = keys.META) -> WatchMeta | None:
        """Raises CorruptRecord (naming `key`) for a value that is not a watch's meta."""
        if not raw:
            return None
        try:
            d = orjson.loads(raw)
            interval = float(d["i"])
            scan = d.get("s")
            source = d.get("src", "api")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptRecord(key, f"not a watch: {type(exc).__name__}") from None
        if not (math.isfinite(interval) and MIN_DURATION <= interval <= MAX_DURATION):
            raise CorruptRecord(key, "not a watch: its interval is out of bounds")
        if scan is not None and not (isinstance(scan, dict) and all(isinstance(v, str) for v in scan.values())):
            raise CorruptRecord(key, "not a watch: its scan is not a table of strings")
        if not isinstance(source, str):
            raise CorruptRecord(key, "not a watch: its source is not a string")
        return cls(interval=interval, discovered=bool(d.get("d")), scan=scan, source=source)


_TERMINAL_FLAGS = {"t": True, "o": False}


@dataclass(frozen=True, slots=True)
class ResourceState:
    """The commit guard: what a resource's stored snapshot is, as of the last commit."""

    digest: str
    seq: int
    changed_at: float
    preview: str = ""
    """a fingerprint of what was last seen before parsing: a preview scan's summary digest,
    or a listed item's or a fetched body's bytes (volatile values blanked)"""
    terminal: bool | None = None
    """whether the snapshot is in a terminal state, when a poll recorded it: lets a poll
    whose body fingerprint matches reschedule without parsing"""

    @property
    def token(self) -> str:
        base = f"{self.digest}|{self.seq}|{int(self.changed_at)}"
        if self.terminal is not None:
            return f"{base}|{self.preview}|{'t' if self.terminal else 'o'}"
        return f"{base}|{self.preview}" if self.preview else base

    @classmethod
    def parse(cls, raw: bytes | str | None, key: str = keys.STATE) -> ResourceState | None:
        """Raises CorruptRecord (naming `key`) for a value that is not a state token."""
        if not raw:
            return None
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            digest, seq, changed_at, *rest = text.split("|")
            terminal = _TERMINAL_FLAGS.get(rest[1]) if len(rest) > 1 else None
            state = cls(digest, int(seq), float(changed_at), rest[0] if rest else "", terminal)
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptRecord(key, f"not a state token: {type(exc).__name__}") from None
        if not digest or state.seq < 0 or not math.isfinite(state.changed_at):
            raise CorruptRecord(key, "not a state token")
        return state


@dataclass(slots=True)
class Commit:
    ref: ResourceRef
    expected: ResourceState | None
    new: ResourceState
    snapshot: bytes
    due_at: float | str | None
    """a time; None to stop polling; "-" to leave the due set alone (scanned resources)"""
    events: list[Event]


def pack_snapshot(canonical_bytes: bytes) -> bytes:
    """What a snapshot's key holds (`store.snapshot_codec`: deflated with a preset dictionary)."""
    return snapshot_codec.pack(canonical_bytes)


def unpack_snapshot(raw: bytes | None, key: str = "snapshot") -> Snapshot | None:
    """Raises CorruptRecord (naming `key`) for a value that is not a packed snapshot."""
    if raw is None:
        return None
    try:
        snap: Snapshot = orjson.loads(snapshot_codec.unpack(raw))
    except Exception as exc:  # zlib.error, a JSON error, a codec's own check: all one thing here
        raise CorruptRecord(key, f"not a snapshot: {type(exc).__name__}") from None
    if not isinstance(snap, dict):
        raise CorruptRecord(key, "not a snapshot: not an object")
    return snap


def history_entry(rkey: str, event: Event) -> bytes:
    """A resource's timeline entry for `event`, as the history list stores it: the JSON array
    `[seq, at, type, severity, summary, id]`, `at` in epoch seconds. About 80 bytes less
    than the object `read_history_entry` returns, in every entry of every resource's list.
    (Entries written before ids named the change have no id: `read_history_entry` derives
    it as it was derived then.)"""
    at: int | str = event.detected_at
    try:
        epoch = calendar.timegm(time.strptime(event.detected_at, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        pass
    else:
        if utc_iso(epoch) == event.detected_at:
            at = epoch
    return orjson.dumps([event.seq, at, event.type, event.severity.value, event.summary, event.id])


def read_history_entry(raw: bytes | str, rkey: str) -> dict[str, Any]:
    """A timeline entry of `rkey` as readers see it: id, type, seq, at (ISO), severity,
    summary. Reads both the array of `history_entry` and the object stored before it."""
    item = orjson.loads(raw)
    if isinstance(item, dict):
        return item
    seq, at, event_type, severity, summary, *rest = item
    return {
        "id": rest[0] if rest else event_id(rkey, seq, event_type),
        "type": event_type,
        "seq": seq,
        "at": utc_iso(at) if isinstance(at, int) else at,
        "severity": severity,
        "summary": summary,
    }


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


class Store:
    def __init__(self, redis: aioredis.Redis, *, history_length: int = 50) -> None:
        self.redis = redis
        self.history_length = history_length
        self._commit = redis.register_script(_COMMIT)
        self._claim = redis.register_script(_CLAIM)
        self._listed = redis.register_script(_LISTED)

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
            removed, _, _ = await pipe.execute()
        return int(removed)

    async def watches(self, source: str | None = None) -> dict[str, WatchMeta]:
        raw = await self.redis.hgetall(keys.META)  # type: ignore[misc]
        out = {}
        bad: list[CorruptRecord] = []
        for k, v in raw.items():
            rkey = k.decode(errors="replace")
            try:
                meta = WatchMeta.from_json(v, f"{keys.META}[{rkey}]")
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
        returns (rkey, due time) in due order, so that a poll can wait for its time."""
        raw = await self._claim(keys=[keys.DUE], args=[until, until + lease, limit])
        return [(raw[i].decode(), float(raw[i + 1])) for i in range(0, len(raw), 2)]

    # ---- poll batch reads ------------------------------------------------------------

    async def load(self, rkeys: Sequence[str]) -> Loaded:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.META, list(rkeys))
            pipe.hmget(keys.STATE, list(rkeys))
            pipe.hmget(keys.ERRORS, list(rkeys))
            pipe.get(keys.EPOCH)
            raw_metas, raw_states, errors, epoch = await pipe.execute()
        loaded = Loaded([], [], [int(e) if e and e.isdigit() else 0 for e in errors],
                        epoch.decode() if epoch else None, set())
        bad: list[CorruptRecord] = []
        for rkey, raw in zip(rkeys, raw_metas, strict=True):
            try:
                loaded.metas.append(WatchMeta.from_json(raw, f"{keys.META}[{rkey}]"))
            except CorruptRecord as exc:
                bad.append(exc)
                loaded.metas.append(None)
                loaded.corrupt.add(rkey)
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
                states.append(ResourceState.parse(value, f"{keys.STATE}[{rkey}]"))
            except CorruptRecord as exc:
                bad.append(exc)
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

    async def listed_unchanged(self, rkeys: Sequence[str], fingerprints: Sequence[str]) -> list[bool]:
        """Whether each resource's state holds that listing fingerprint as its preview: the
        cheap check of a scan. Redis compares: the rkeys and fingerprints go as two
        newline-joined arguments and the answer is one string of 0s and 1s, because packing
        1,000 arguments and parsing 1,000 replies cost the worker more than the rest of the
        comparison (measured: ~3 ms of a page's ~25)."""
        if not rkeys:
            return []
        if any("\n" in k for k in rkeys):  # not seen in an id, but then the plain way
            raw = await self.redis.hmget(keys.STATE, list(rkeys))  # type: ignore[misc]
            return [r is not None and r.split(b"|", 4)[3:4] == [fp.encode()]
                    for r, fp in zip(raw, fingerprints, strict=True)]
        flags = await self._listed(keys=[keys.STATE], args=["\n".join(rkeys), "\n".join(fingerprints)])
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
        reschedule: dict[str, float] | None = None,
        clear_errors: Sequence[str] = (),
        errors: Sequence[str] = (),
        epoch: str | None = None,
    ) -> list[bool]:
        """Apply a poll batch's outcome in one round trip: each commit atomically (snapshot,
        state, due time and events, guarded by the expected state and by `epoch`, the
        dataset the batch read: after a data loss nothing read before it is committed), and
        the cheap updates (due times of unchanged resources, error counters) beside them."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for c in commits:
                history = [history_entry(c.ref.key, e) for e in c.events]
                due = "" if c.due_at is None else (c.due_at if isinstance(c.due_at, str) else repr(c.due_at))
                await self._commit(
                    keys=[keys.STATE, keys.snapshot(c.ref.key), keys.OUTBOX, keys.DUE, keys.history(c.ref.key),
                          keys.EPOCH],
                    args=[
                        c.ref.key,
                        c.expected.token if c.expected else "",
                        c.new.token,
                        c.snapshot,
                        due,
                        self.history_length,
                        len(c.events),
                        *[e.to_json() for e in c.events],
                        *history,
                        "*" if epoch is None else epoch,
                    ],
                    client=pipe,
                )
            if reschedule:
                pipe.zadd(keys.DUE, reschedule, xx=True)
            if clear_errors:
                pipe.hdel(keys.ERRORS, *clear_errors)
            for rkey in errors:
                pipe.hincrby(keys.ERRORS, rkey, 1)
            results = await pipe.execute()
        return [bool(r) for r in results[: len(commits)]]

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
        raw = await self.redis.lrange(keys.history(rkey), 0, limit - 1)  # type: ignore[misc]
        out, bad = [], []
        for entry in raw:
            try:
                out.append(read_history_entry(entry, rkey))
            except (ValueError, TypeError) as exc:
                bad.append(CorruptRecord(keys.history(rkey), f"not a timeline entry: {type(exc).__name__}"))
        await self.count_corrupt(bad)
        return out
