"""One key per resource: the commit, the notes and the reminders write its timeline into its
record beside the snapshot (store/lua/_record.lua), kept to its length, and a timeline an
earlier statehook kept in a list of its own is read and moved in."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from core.due import DueAt, KeepDue
from model.events import Severity
from model.operational import Subject
from store import keys, record_frame
from store.history import note_entry, read_history_entry
from store.operational import OperationalEvents
from store.snapshots import Commit, ResourceState, Store, WatchMeta, history_entry, pack_snapshot, unpack_snapshot
from store.timeline import TimelineWriter
from tests.kit import timeline
from tests.test_history_entry import NOW, REF, _event
from worker.api import resource_view

SNAP = pack_snapshot(b'{"order_state":"Action Required"}')


def _entry(seq: int) -> bytes:
    return history_entry(REF.key, _event(seq))


async def _commit(store: Store, seq: int, *, events: int, expected: ResourceState | None) -> ResourceState:
    new = ResourceState(f"{seq:024d}", seq + events, NOW + seq)
    made = await store.commit([Commit(REF, expected, new, SNAP, KeepDue(), [_event(seq + i) for i in range(events)])])
    assert made == [True]
    return new


async def test_a_commit_writes_its_events_into_the_record_newest_first_and_no_list(redis: aioredis.Redis) -> None:
    store = Store(redis, history_length=3)
    await store.add_watches([(REF.key, WatchMeta(interval=60))])
    state = await _commit(store, 0, events=0, expected=None)
    assert await redis.get(keys.snapshot(REF.key)) == SNAP  # a baseline: the plain form
    state = await _commit(store, 1, events=2, expected=state)
    await _commit(store, 3, events=2, expected=state)
    raw = await redis.get(keys.snapshot(REF.key))
    assert raw is not None and raw[0] == record_frame.MARK
    assert [orjson.loads(e)[0] for e in await timeline(redis, REF.key)] == [5, 4, 3]  # seqs 2..5, kept to 3
    assert unpack_snapshot(raw) == {"order_state": "Action Required"}
    assert not await redis.exists(keys.old_timeline(REF.key))


async def test_notes_and_commits_share_one_timeline_and_a_commit_keeps_the_notes(redis: aioredis.Redis) -> None:
    store, writer = Store(redis, history_length=5), TimelineWriter(redis)
    await store.add_watches([(REF.key, WatchMeta(interval=60))])
    state = await _commit(store, 0, events=1, expected=None)
    async with redis.pipeline(transaction=False) as pipe:
        await writer.queue(pipe, REF.key, note_entry("acknowledged", NOW, "by ops", seq=0, event_id="", data={}), 5)
        await pipe.execute()
    await _commit(store, 1, events=0, expected=state)  # a change without an event keeps the timeline
    kinds = [read_history_entry(e, REF.key)["type"] for e in await timeline(redis, REF.key)]
    assert kinds == ["acknowledged", "artistree.order.state_changed"]
    assert unpack_snapshot(await redis.get(keys.snapshot(REF.key))) == {"order_state": "Action Required"}


async def test_a_timeline_kept_in_the_old_list_is_read_and_moved_in_by_the_next_entry(redis: aioredis.Redis) -> None:
    store = Store(redis, history_length=3)
    await store.add_watches([(REF.key, WatchMeta(interval=60))])
    await redis.set(keys.snapshot(REF.key), SNAP)  # as an earlier statehook left it
    await redis.rpush(keys.old_timeline(REF.key), _entry(2), _entry(1), _entry(0))
    state = ResourceState("o" * 24, 3, NOW)
    await redis.hset(keys.STATE, REF.key, "o" * 24 + f"|3|{int(NOW)}")
    assert [orjson.loads(e)[0] for e in await timeline(redis, REF.key)] == [3, 2, 1]
    state = await _commit(store, 3, events=0, expected=state)  # no entry: nothing moves
    assert await redis.llen(keys.old_timeline(REF.key)) == 3
    assert [h["seq"] for h in await store.history(REF.key)] == [3, 2, 1]
    await _commit(store, 4, events=1, expected=state)
    assert not await redis.exists(keys.old_timeline(REF.key))
    assert [h["seq"] for h in await store.history(REF.key)] == [5, 3, 2]  # moved in, kept to 3


async def test_without_a_timeline_the_record_stays_the_snapshot(redis: aioredis.Redis) -> None:
    store = Store(redis, history_length=0)
    await store.add_watches([(REF.key, WatchMeta(interval=60))])
    await redis.rpush(keys.old_timeline(REF.key), _entry(0))
    new = ResourceState("n" * 24, 1, NOW)
    assert await store.commit([Commit(REF, None, new, SNAP, DueAt(NOW + 60), [_event(0)])]) == [True]
    assert await redis.get(keys.snapshot(REF.key)) == SNAP
    assert await timeline(redis, REF.key) == []
    assert not await redis.exists(keys.old_timeline(REF.key))


async def test_a_subject_that_is_not_polled_gets_a_record_with_a_timeline_only(redis: aioredis.Redis) -> None:
    writer = TimelineWriter(redis)
    async with redis.pipeline(transaction=True) as pipe:
        await writer.queue(pipe, "statehook:provider:rev", b'[1,1,"x","info","y","evt_1"]', 50)
        await pipe.execute()
    raw = await redis.get(keys.snapshot("statehook:provider:rev"))
    assert raw is not None and record_frame.split(raw) == record_frame.Record(None, [b'[1,1,"x","info","y","evt_1"]'],
                                                                            framed=True)
    assert unpack_snapshot(raw) is None


async def test_a_record_that_cannot_be_read_is_written_over_and_fails_no_commit(redis: aioredis.Redis) -> None:
    """A frame cut short, an entry cut short, a key of another type: each commit is made."""
    store = Store(redis, history_length=5)
    good = record_frame.join(SNAP, [_entry(1), _entry(0)])
    for stored in (b"\x00\x00", b"\x00\x00\x00\xff\xffshort", good[:-3], None):
        await redis.delete(keys.snapshot(REF.key), keys.STATE)
        if stored is None:
            await redis.hset(keys.snapshot(REF.key), "not", "a string")
        else:
            await redis.set(keys.snapshot(REF.key), stored)
        await _commit(store, 7, events=1, expected=None)
        raw = await redis.get(keys.snapshot(REF.key))
        assert raw is not None and unpack_snapshot(raw) == {"order_state": "Action Required"}, stored
        entries = [read_history_entry(e, REF.key)["seq"] for e in await timeline(redis, REF.key)]
        assert entries == ([8, 2] if stored == good[:-3] else [8]), stored  # what could be read is kept


async def test_an_old_timeline_key_of_another_type_is_counted_as_unreadable_not_an_error(redis: aioredis.Redis) -> None:
    store = Store(redis)
    await redis.set(keys.snapshot(REF.key), SNAP)
    await redis.set(keys.old_timeline(REF.key), b"not a list")
    assert await store.history(REF.key) == []
    assert int(await redis.hget(keys.STATS, "corrupt_records") or 0) == 1


async def test_the_resource_view_reads_past_an_old_timeline_key_of_another_type(redis: aioredis.Redis) -> None:
    await Store(redis).add_watches([(REF.key, WatchMeta(interval=60))])
    await redis.set(keys.snapshot(REF.key), record_frame.join(SNAP, [_entry(0)]))
    await redis.set(keys.old_timeline(REF.key), b"not a list")
    view = await resource_view(redis, REF.key)
    assert view is not None and [h["seq"] for h in view["history"]] == [1]


async def test_the_resource_view_reads_past_a_record_key_of_another_type(redis: aioredis.Redis) -> None:
    """A record key that holds a hash is one unreadable record (counted), not a 500."""
    await Store(redis).add_watches([(REF.key, WatchMeta(interval=60))])
    await redis.hset(keys.snapshot(REF.key), "not", "a string")
    view = await resource_view(redis, REF.key)
    assert view is not None and view["history"] == [] and view["snapshot"] is None
    assert int(await redis.hget(keys.STATS, "corrupt_records") or 0) == 1


async def test_a_timeline_entry_whose_time_is_out_of_range_is_unreadable_not_a_crash(redis: aioredis.Redis) -> None:
    too_late = orjson.dumps([2, 10**17, ".state_changed", "info", "far off", "ab"])
    with pytest.raises(ValueError, match="out of range"):
        read_history_entry(too_late, REF.key)
    await redis.set(keys.snapshot(REF.key), record_frame.join(SNAP, [too_late, _entry(0)]))
    assert [h["seq"] for h in await Store(redis).history(REF.key)] == [1]
    view = await resource_view(redis, REF.key)
    assert view is not None and [h["seq"] for h in view["history"]] == [1]


async def test_a_stray_old_timeline_key_does_not_hide_the_record_s_timeline(redis: aioredis.Redis) -> None:
    await redis.set(keys.snapshot(REF.key), record_frame.join(SNAP, [_entry(0)]))
    await redis.set(keys.old_timeline(REF.key), b"not a list")
    assert [h["seq"] for h in await Store(redis).history(REF.key)] == [1]


async def test_a_subject_with_a_timeline_alone_is_its_timeline_not_a_watched_resource(redis: aioredis.Redis) -> None:
    ops = OperationalEvents(redis, history_length=50, throttle=0)
    assert await resource_view(redis, "statehook:provider:rev") is None
    await ops.emit("statehook.provider.unhealthy", Subject("provider", "rev"), severity=Severity.CRITICAL,
                   summary="rev refuses")
    assert [h["type"] for h in await Store(redis).history("statehook:provider:rev")] == ["statehook.provider.unhealthy"]
    view = await resource_view(redis, "statehook:provider:rev")
    assert view is not None and (view["watch"], view["state"], view["snapshot"]) == (None, None, None)
    assert [h["type"] for h in view["history"]] == ["statehook.provider.unhealthy"]
