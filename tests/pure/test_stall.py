"""Stalled resources with plain values: the stall time of a state (core/stall.py), the poll
decision that fires once per entry into a state (core/decide.py), and the state record's
stall fields (store/records.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.decide import Batch, Changed, Stalled, Unchanged, Watch, decide, observe, unchanged_body
from core.due import KEEP_DUE, DueAt
from core.stall import cap_due, human_duration, stall_after, track
from core.state import ResourceState
from store.records import CorruptRecord, decode_state, encode_state
from tests.pure.test_decide import EPOCH, FAILED, NOW, OPEN, REF, FakeSpec, Pacing, _batch, _state_of

HOUR = 3600.0
SPEC = FakeSpec(Pacing(stall_after={"In Progress": 2 * HOUR, "*": 24 * HOUR}))
D = "0123456789abcdef01234567"

def _later(seconds: float) -> Batch:
    return replace(_batch(SPEC), now=NOW + seconds)


# ---- the stall time of a state ------------------------------------------------------------


@pytest.mark.parametrize(("state", "terminal", "watch", "expected"), [
    ("In Progress", False, None, 2 * HOUR),                   # the provider's, by name
    ("in progress ", False, None, 2 * HOUR),                  # without case or spaces
    ("Reviewed", False, None, 24 * HOUR),                     # the provider's `*`
    ("In Progress", False, {"In Progress": 60.0}, 60.0),      # the watch's first
    ("Reviewed", False, {"In Progress": 60.0}, 24 * HOUR),    # the watch names another state
    ("In Progress", False, {"*": 90.0}, 90.0),                # one duration for the watch: every state
    ("In Progress", False, {"*": 0.0}, None),                 # 0 is off, and the provider's is not asked
    ("Failed", True, None, None),                             # a terminal state never stalls
    (None, False, None, None),                                # nor a resource without a state
    ("", False, None, None),
])
def test_the_stall_time_of_a_state(state: str | None, terminal: bool, watch: dict[str, float] | None,
                                   expected: float | None) -> None:
    provider = {"In Progress": 2 * HOUR, "*": 24 * HOUR}
    assert stall_after(state, terminal=terminal, watch=watch, provider=provider) == expected


def test_a_provider_without_a_stall_time_for_the_state_never_stalls_it() -> None:
    assert stall_after("Reviewed", terminal=False, watch=None, provider={"In Progress": 60.0}) is None


def test_an_entry_is_kept_in_the_same_state_and_new_otherwise() -> None:
    state = _state_of(OPEN, entered_at=NOW - 500, stalled=True)
    assert track(state, same_state=True, now=NOW, threshold=HOUR) == track(state, same_state=True, now=NOW + 9,
                                                                           threshold=HOUR)
    kept = track(state, same_state=True, now=NOW, threshold=HOUR)
    assert (kept.entered_at, kept.stall_at, kept.stalled) == (NOW - 500, None, True)
    new = track(state, same_state=False, now=NOW + 0.7, threshold=HOUR)
    assert (new.entered_at, new.stall_at, new.stalled) == (NOW, NOW + HOUR, False)  # whole seconds, re-armed


def test_a_record_written_before_stalls_were_tracked_counts_from_its_last_change() -> None:
    legacy = ResourceState(D, 3, NOW - 500)
    assert track(legacy, same_state=True, now=NOW, threshold=HOUR).stall_at == NOW - 500 + HOUR


def test_the_due_time_is_capped_at_the_stall_moment() -> None:
    assert cap_due(NOW + 86400, NOW + 60) == NOW + 60
    assert cap_due(NOW + 30, NOW + 60) == NOW + 30
    assert cap_due(NOW + 30, None) == NOW + 30


@pytest.mark.parametrize(("seconds", "words"), [
    (0, "0 s"), (45, "45 s"), (60, "1 min"), (3 * 3600, "3 h"), (5 * 3600 + 600, "5 h 10 min"),
    (2 * 86400 + 3 * 3600 + 59, "2 d 3 h"), (172_800.9, "2 d"),
])
def test_a_duration_in_words(seconds: float, words: str) -> None:
    assert human_duration(seconds) == words


# ---- the decision -----------------------------------------------------------------------------


def test_a_resource_in_its_state_past_its_stall_time_is_stalled_once() -> None:
    state = _state_of(OPEN, entered_at=NOW - 3 * HOUR, stall_at=NOW - HOUR)
    decision = decide(state, observe(REF, OPEN), Watch(60), _batch(SPEC))
    assert isinstance(decision, Stalled)
    (event,) = decision.events
    assert (event.type, event.seq, event.severity) == ("t.stalled", 4, "warning")
    assert event.data == {"state": "In Progress", "since": NOW - 3 * HOUR, "for": int(3 * HOUR)}
    assert decision.record == replace(state, seq=4, stall_at=None, stalled=True)
    assert decision.due == DueAt(NOW + 60)
    # the next poll in the same state: nothing more
    again = decide(decision.record, observe(REF, OPEN), Watch(60), _later(HOUR))
    assert again == Unchanged(DueAt(NOW + HOUR + 60))


def test_a_stall_fires_at_the_first_poll_past_it_however_late() -> None:
    """A resource polled rarely: the stall is seen at the first poll past its moment."""
    state = _state_of(OPEN, entered_at=NOW - 30 * HOUR, stall_at=NOW - 28 * HOUR)
    decision = decide(state, observe(REF, OPEN), Watch(60), _batch(SPEC))
    assert isinstance(decision, Stalled) and decision.events[0].data["for"] == int(30 * HOUR)


def test_a_resource_before_its_stall_time_is_not_stalled_and_is_due_by_then() -> None:
    state = _state_of(OPEN, entered_at=NOW - HOUR, stall_at=NOW + HOUR)
    assert decide(state, observe(REF, OPEN), Watch(86_400), _batch(SPEC)) == Unchanged(DueAt(NOW + HOUR))
    assert decide(state, observe(REF, OPEN), Watch(60), _batch(SPEC)) == Unchanged(DueAt(NOW + 60))


def test_a_change_of_state_rearms_the_stall() -> None:
    stalled = _state_of(OPEN, entered_at=NOW - 3 * HOUR, stalled=True)
    reviewed = {"state": "Reviewed"}
    moved = decide(stalled, replace(observe(REF, reviewed), old=OPEN), Watch(60), _batch(SPEC))
    assert isinstance(moved, Changed) and [e.type for e in moved.events] == ["t.state_changed"]
    assert (moved.record.entered_at, moved.record.stall_at, moved.record.stalled) == (NOW, NOW + 24 * HOUR, False)
    back = decide(moved.record, replace(observe(REF, OPEN), old=reviewed), Watch(60), _later(60))
    assert isinstance(back, Changed)
    assert (back.record.entered_at, back.record.stall_at) == (NOW + 60, NOW + 60 + 2 * HOUR)
    later = decide(back.record, observe(REF, OPEN), Watch(60), _later(60 + 2 * HOUR))
    assert isinstance(later, Stalled)  # a second entry into In Progress: a second stall


def test_a_change_within_the_state_keeps_its_entry_and_fires_a_due_stall_with_it() -> None:
    state = _state_of(OPEN, entered_at=NOW - 3 * HOUR, stall_at=NOW - HOUR)
    noted = {"state": "In Progress", "note": "x"}
    decision = decide(state, replace(observe(REF, noted), old=OPEN), Watch(60), _batch(SPEC))
    assert isinstance(decision, Changed) and [e.type for e in decision.events] == ["t.stalled"]
    assert decision.record.entered_at == NOW - 3 * HOUR and decision.record.stalled


def test_a_terminal_resource_is_never_stalled() -> None:
    state = _state_of(FAILED, entered_at=NOW - 300 * HOUR)
    decision = decide(state, observe(REF, FAILED), Watch(60), _batch(SPEC))
    assert isinstance(decision, Unchanged) and decision.record is None


def test_a_first_sight_enters_its_state_now() -> None:
    decision = decide(None, observe(REF, OPEN), Watch(60), _batch(SPEC))
    assert isinstance(decision, Changed) and decision.events == []
    assert (decision.record.entered_at, decision.record.stall_at) == (NOW, NOW + 2 * HOUR)


def test_the_watch_stall_time_comes_before_the_providers() -> None:
    decision = decide(None, observe(REF, OPEN), Watch(60, stall_after={"*": 600.0}), _batch(SPEC))
    assert isinstance(decision, Changed) and decision.record.stall_at == NOW + 600


def test_a_record_without_stall_tracking_is_tracked_from_its_next_parse() -> None:
    legacy = ResourceState(_state_of(OPEN).digest, 3, NOW - 100, "lbody", False)
    assert unchanged_body(legacy, "lbody", Watch(60), SPEC.settings, NOW) is None  # parsed once
    decision = decide(legacy, observe(REF, OPEN, "lbody"), Watch(60), _batch(SPEC))
    assert decision == Unchanged(DueAt(NOW + 60), replace(legacy, entered_at=NOW - 100, stall_at=NOW - 100 + 2 * HOUR))
    assert decision.record is not None
    assert unchanged_body(decision.record, "lbody", Watch(60), SPEC.settings, NOW) == DueAt(NOW + 60)


def test_the_body_fast_path_parses_when_a_stall_is_due_and_is_due_by_its_moment() -> None:
    armed = _state_of(OPEN, preview="lbody", terminal=False, stall_at=NOW + 30)
    assert unchanged_body(armed, "lbody", Watch(60), SPEC.settings, NOW) == DueAt(NOW + 30)
    assert unchanged_body(armed, "lbody", Watch(60), SPEC.settings, NOW + 30) is None


def test_a_stalled_scan_item_leaves_its_due_time_to_the_scan() -> None:
    state = _state_of(OPEN, preview="lx", entered_at=NOW - 3 * HOUR, stall_at=NOW - HOUR)
    decision = decide(state, observe(REF, OPEN, "lx"), Watch(60, scheduled=False), _batch(SPEC))
    assert isinstance(decision, Stalled) and decision.due == KEEP_DUE
    assert decision.record.terminal is None  # a scan item records no terminal flag


def test_the_stalled_event_id_is_the_same_when_the_same_poll_is_made_again() -> None:
    state = _state_of(OPEN, entered_at=NOW - 3 * HOUR, stall_at=NOW - HOUR)
    first = decide(state, observe(REF, OPEN), Watch(60), _batch(SPEC))
    second = decide(state, observe(REF, OPEN), Watch(60), _batch(SPEC))
    assert isinstance(first, Stalled) and isinstance(second, Stalled)
    assert first.events[0].id == second.events[0].id
    assert EPOCH  # the id names the dataset too (core.events.change_of)


# ---- the record -----------------------------------------------------------------------------


@pytest.mark.parametrize("stored", [
    f"{D}|4|1700000000|lfp0123456789abcdef0123|o|1699990000|~1700090000",  # armed
    f"{D}|4|1700000000|lfp0123456789abcdef0123|o|1699990000|!",            # fired
    f"{D}|4|1700000000|lfp0123456789abcdef0123|t|1700000000|-",            # none applies (terminal)
    f"{D}|4|1700000000|||1700000000|~1700003600",                          # no fingerprint, no flag
])
def test_every_stall_form_reads_back_to_the_same_string(stored: str) -> None:
    state = decode_state(stored)
    assert state is not None and state.entered_at is not None and encode_state(state) == stored


def test_the_stall_fields_are_named_as_stored() -> None:
    state = decode_state(f"{D}|4|1700000000|lfp|o|1699990000|~1700090000")
    assert state == ResourceState(D, 4, 1_700_000_000, "lfp", False, 1_699_990_000, 1_700_090_000, False)
    fired = decode_state(f"{D}|4|1700000000||t|1699990000|!")
    assert fired is not None and fired.stalled and fired.stall_at is None and fired.terminal is True


@pytest.mark.parametrize("raw", [f"{D}|4|1700000000|lfp|o|x|-", f"{D}|4|1700000000|lfp|o|1|~x",
                                 f"{D}|4|1700000000|lfp|o|1|?", f"{D}|4|1700000000|lfp|o|1"])
def test_a_stall_field_that_is_not_one_is_a_corrupt_record(raw: str) -> None:
    with pytest.raises(CorruptRecord):
        decode_state(raw, "sh:state[k]")
