"""A resource's timeline entries: a compact array in Redis, the same object for every reader."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
import redis.asyncio as aioredis

from core.due import DueAt
from core.events import build_events
from model.events import Event, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef
from store import keys
from store.history import note_entry
from store.snapshots import Commit, ResourceState, Store, WatchMeta, history_entry, pack_snapshot, read_history_entry
from worker.api import resource_view

REF = ResourceRef("artistree", "order", "3f2b8c1e-9d47-4a6b-b0e5-7c1d2a9f4e38")
NOW = 1_795_430_669.25


def _event(seq: int = 0) -> Event:
    info = ResourceInfo(title="Harbor Lights Poster v3", url="https://example.test/o", state="Action Required")
    draft = EventDraft("artistree.order.state_changed", Severity.CRITICAL,
                       "Order “Harbor Lights Poster v3”: In Progress → Action Required")
    (event,) = build_events(REF, info, [draft], base_seq=seq, now=NOW, snapshot=None)
    return event


def _as_before(event: Event) -> dict[str, object]:
    """The object the history list held before the compact entry, as readers saw it."""
    return {"id": event.id, "type": event.type, "seq": event.seq, "at": event.detected_at,
            "severity": event.severity.value, "summary": event.summary}


def test_an_entry_reads_back_as_the_object_readers_know() -> None:
    event = _event()
    raw = history_entry(REF.key, event)
    assert read_history_entry(raw, REF.key) == _as_before(event)
    assert len(raw) < len(orjson.dumps(_as_before(event))) - 50


def test_an_entry_leaves_out_what_its_rkey_says_and_an_entry_written_whole_reads_the_same() -> None:
    event = _event()
    stored = orjson.loads(history_entry(REF.key, event))
    assert stored[2] == ".state_changed" and stored[5] == event.id.removeprefix("evt_")
    whole = orjson.dumps([*stored[:2], event.type, *stored[3:5], event.id])  # as entries were written before
    assert read_history_entry(whole, REF.key) == read_history_entry(history_entry(REF.key, event), REF.key)
    assert read_history_entry(whole, REF.key) == _as_before(event)


def test_an_operational_event_of_a_subject_reads_back_whole() -> None:
    subject = "statehook:provider:rev"
    event = dataclasses.replace(_event(), type="statehook.provider.unhealthy")
    assert orjson.loads(history_entry(subject, event))[2] == ".unhealthy"
    assert read_history_entry(history_entry(subject, event), subject)["type"] == "statehook.provider.unhealthy"


@pytest.mark.parametrize("about", ["dig_0a1b2c3d4e5f", "win_0a1b2c3d4e5f", "evt_imported", ""])
def test_a_note_keeps_the_id_of_what_it_is_about_whatever_its_form(about: str) -> None:
    note = note_entry("replayed", NOW, "dead letter replayed to hook", seq=0, event_id=about, data={})
    assert read_history_entry(note, "statehook:digest:hook:r1")["id"] == about
    event = dataclasses.replace(_event(), id=about or "evt_0a1b")
    assert read_history_entry(history_entry(REF.key, event), REF.key)["id"] == (about or "evt_0a1b")


def test_a_type_of_another_provider_or_kind_is_kept_whole() -> None:
    event = dataclasses.replace(_event(), type="artistree.project.stats_changed")
    assert orjson.loads(history_entry(REF.key, event))[2] == "artistree.project.stats_changed"
    assert read_history_entry(history_entry(REF.key, event), REF.key)["type"] == "artistree.project.stats_changed"


def test_an_entry_keeps_the_id_of_its_event() -> None:
    """Ids name the change (epoch and digests), so they cannot be derived again from the entry."""
    info = ResourceInfo(title="t", url="https://example.test/o", state="Failed")
    draft = EventDraft("artistree.order.state_changed", Severity.CRITICAL, "s")
    (event,) = build_events(REF, info, [draft], base_seq=0, now=NOW, snapshot=None, change="epoch\x00a\x00b")
    assert read_history_entry(history_entry(REF.key, event), REF.key)["id"] == event.id


def test_an_entry_without_its_id_reads_with_the_id_derived_as_then() -> None:
    """Entries written before ids named the change: `[seq, at, type, severity, summary]`."""
    event = _event()
    raw = orjson.dumps(orjson.loads(history_entry(REF.key, event))[:5])
    assert read_history_entry(raw, REF.key) == _as_before(event)


@pytest.mark.parametrize("raw", [orjson.dumps(_as_before(_event())), b'"x"', b"[1, 2]", b"{not json",
                                 b'[1, 0, null, "info", "s", "x"]', b'[1, 0, "t", "info", "s", 123]'])
def test_anything_but_an_entry_array_is_unreadable(raw: bytes) -> None:
    """The object form of an entry was never stored: it is not read as one."""
    with pytest.raises((ValueError, TypeError)):
        read_history_entry(raw, REF.key)


def test_an_id_that_is_not_derived_from_the_resource_is_kept() -> None:
    event = dataclasses.replace(_event(), id="evt_imported")
    assert read_history_entry(history_entry(REF.key, event), REF.key)["id"] == "evt_imported"


def test_a_detection_time_in_another_format_is_kept_as_it_was() -> None:
    event = dataclasses.replace(_event(), detected_at="2026-11-23T10:40:44.5+00:00")
    assert read_history_entry(history_entry(REF.key, event), REF.key)["at"] == "2026-11-23T10:40:44.5+00:00"


async def test_store_history_and_the_resource_view_read_the_entries_a_commit_wrote(redis: aioredis.Redis) -> None:
    store = Store(redis)
    first, second = _event(0), _event(1)
    at = orjson.loads(history_entry(REF.key, first))[1]
    before = [first.seq, at, first.type, first.severity.value, first.summary]  # as written before ids named the change
    await redis.lpush(keys.old_timeline(REF.key), orjson.dumps(before))
    await store.add_watches([(REF.key, WatchMeta(interval=60))])
    commit = Commit(REF, None, ResourceState("e" * 24, 2, NOW), pack_snapshot(b"{}"), DueAt(NOW + 60), [second])
    assert await store.commit([commit]) == [True]
    assert await redis.zscore(keys.DUE, REF.key) == NOW + 60
    expected = [_as_before(second), _as_before(first)]
    assert await store.history(REF.key) == expected
    view = await resource_view(redis, REF.key)
    assert view is not None
    assert [{k: v for k, v in item.items() if k != "deliveries"} for item in view["history"]] == expected
