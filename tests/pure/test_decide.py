"""The poll decision (core/decide.py) with plain values: a state, what a poll saw, the watch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from core.decide import (
    Batch,
    Changed,
    Failed,
    Failure,
    Fetched,
    Gone,
    Parsed,
    RateLimited,
    Unauthorized,
    Unchanged,
    Watch,
    decide,
    needs_old_snapshot,
    observe,
    unchanged_body,
)
from core.due import KEEP_DUE, STOP_POLLING, DueAt
from core.events import change_of, event_id
from core.fingerprint import canonical, digest
from core.state import ResourceState
from model import errors
from model.events import Change, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef, Snapshot

REF = ResourceRef("artistree", "order", "o-1")
NOW = 1_800_000_000.0
EPOCH = "ep0ch"
TERMINAL_STATES = {"Failed", "Human Certified"}


@dataclass(frozen=True)
class Pacing:
    interval_active: float | None = None
    interval_idle: float | None = None
    terminal_interval: float = 3600.0
    terminal_tail: float = 0.0
    terminal_late_interval: float = 86400.0
    terminal_late_tail: float = 0.0
    stall_after: dict[str, float] = field(default_factory=dict)


@dataclass
class FakeSpec:
    """A provider's pure side: the state is `snapshot["state"]`, a change of it one event."""

    settings: Pacing = field(default_factory=Pacing)
    classified: list[list[Change]] = field(default_factory=list)

    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo:
        state = snapshot.get("state")
        return ResourceInfo(title=f"order {ref.id}", state=state, terminal=state in TERMINAL_STATES)

    def classify(self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]:
        self.classified.append(changes)
        if old.get("state") == new.get("state"):
            return []
        return [EventDraft("t.state_changed", Severity.INFO, f"{old.get('state')} → {new.get('state')}")]

    def discovered(self, ref: ResourceRef, snapshot: Snapshot) -> EventDraft:
        return EventDraft("t.discovered", Severity.INFO, "discovered")

    def gone(self, ref: ResourceRef, snapshot: Snapshot) -> EventDraft:
        return EventDraft("t.gone", Severity.WARNING, "gone")

    def stalled(self, ref: ResourceRef, snapshot: Snapshot, *, state: str, since: float,
                seconds: float) -> EventDraft:
        return EventDraft("t.stalled", Severity.WARNING, f"{state} for {seconds:.0f} s",
                          {"state": state, "since": since, "for": int(seconds)})


def _batch(spec: FakeSpec | None = None) -> Batch:
    return Batch(spec or FakeSpec(), NOW, EPOCH)


def _state_of(snapshot: Snapshot, **fields: object) -> ResourceState:
    """A record as the store writes it now: in its state since its last change, no stall time."""
    base = ResourceState(digest(canonical(snapshot)), 3, NOW - 100, entered_at=NOW - 100)
    return replace(base, **fields)  # type: ignore[arg-type]


OPEN = {"state": "In Progress"}
FAILED = {"state": "Failed"}


# ---- unchanged ----------------------------------------------------------------------------


def test_the_same_digest_is_unchanged_and_due_after_the_interval() -> None:
    state = _state_of(OPEN)
    assert decide(state, observe(REF, OPEN), Watch(60), _batch()) == Unchanged(DueAt(NOW + 60))


def test_an_unchanged_poll_records_a_new_fingerprint_and_the_terminal_flag() -> None:
    state = _state_of(OPEN, preview="lold")
    decision = decide(state, observe(REF, OPEN, "lnew"), Watch(60), _batch())
    assert decision == Unchanged(DueAt(NOW + 60), replace(state, preview="lnew", terminal=False))


def test_the_same_fingerprint_and_flag_record_nothing() -> None:
    state = _state_of(OPEN, preview="lsame", terminal=False)
    assert decide(state, observe(REF, OPEN, "lsame"), Watch(60), _batch()) == Unchanged(DueAt(NOW + 60))


def test_an_unchanged_terminal_resource_past_its_tail_stops_polling() -> None:
    state = _state_of(FAILED)
    assert decide(state, observe(REF, FAILED), Watch(60), _batch()) == Unchanged(STOP_POLLING)


def test_an_unchanged_terminal_resource_in_its_tail_keeps_a_slow_poll() -> None:
    spec = FakeSpec(Pacing(terminal_tail=86_400, terminal_interval=3600))
    assert decide(_state_of(FAILED), observe(REF, FAILED), Watch(60), _batch(spec)) == Unchanged(DueAt(NOW + 3600))


def test_a_scan_item_leaves_its_due_time_and_keeps_its_terminal_flag() -> None:
    state = _state_of(OPEN, preview="lold", terminal=True)
    decision = decide(state, observe(REF, OPEN, "lnew"), Watch(60, scheduled=False), _batch())
    assert decision == Unchanged(KEEP_DUE, replace(state, preview="lnew"))


# ---- changed and first seen ---------------------------------------------------------------


def test_a_new_digest_is_a_change_classified_against_the_stored_snapshot() -> None:
    state, spec = _state_of(OPEN), FakeSpec()
    seen = replace(observe(REF, FAILED, "lf"), old=OPEN)
    decision = decide(state, seen, Watch(60), _batch(spec))
    assert isinstance(decision, Changed) and not decision.baseline
    assert spec.classified == [[Change("/state", "In Progress", "Failed")]]
    (event,) = decision.events
    assert (event.type, event.seq) == ("t.state_changed", 4)
    assert event.id == event_id(REF.key, 4, "t.state_changed", change_of(EPOCH, state.digest, seen.digest))
    assert decision.record == ResourceState(seen.digest, 4, NOW, "lf", True, entered_at=NOW)  # a new state
    assert decision.due == STOP_POLLING  # terminal, and no tail


def test_a_change_without_events_keeps_the_sequence_and_resets_changed_at() -> None:
    new = {"state": "In Progress", "note": "x"}
    decision = decide(_state_of(OPEN), replace(observe(REF, new), old=OPEN), Watch(60), _batch())
    assert isinstance(decision, Changed) and decision.events == []
    assert decision.record == ResourceState(digest(canonical(new)), 3, NOW, "", None, entered_at=NOW - 100)
    assert decision.due == DueAt(NOW + 60)


def test_a_first_sight_is_a_silent_baseline_unless_the_watch_discovers() -> None:
    silent = decide(None, observe(REF, OPEN), Watch(60), _batch())
    assert isinstance(silent, Changed) and silent.baseline and silent.events == []
    assert silent.record.seq == 0
    discovered = decide(None, observe(REF, OPEN), Watch(60, discovered=True), _batch())
    assert isinstance(discovered, Changed) and [e.type for e in discovered.events] == ["t.discovered"]
    assert discovered.record.seq == 1


def test_a_state_whose_snapshot_is_missing_is_a_baseline_that_keeps_counting() -> None:
    spec = FakeSpec()
    decision = decide(_state_of(OPEN), observe(REF, FAILED), Watch(60), _batch(spec))  # old: None
    assert isinstance(decision, Changed) and decision.baseline and decision.record.seq == 3
    assert spec.classified == []


def test_a_changed_scan_item_leaves_its_due_time_and_records_no_terminal_flag() -> None:
    decision = decide(None, observe(REF, FAILED, "lf"), Watch(60, scheduled=False), _batch())
    assert isinstance(decision, Changed)
    assert decision.due == KEEP_DUE and decision.record.terminal is None and decision.record.preview == "lf"


def test_the_old_snapshot_is_needed_only_for_a_new_digest() -> None:
    assert needs_old_snapshot(_state_of(OPEN), observe(REF, FAILED))
    assert not needs_old_snapshot(_state_of(OPEN), observe(REF, OPEN))
    assert not needs_old_snapshot(None, observe(REF, OPEN))


# ---- gone and failures ---------------------------------------------------------------------


def test_not_found_of_a_resource_seen_before_is_gone() -> None:
    state = _state_of(OPEN)
    decision = decide(state, Fetched(REF, errors.NotFound("404")), Watch(60), _batch())
    assert isinstance(decision, Gone) and decision.due == STOP_POLLING
    assert decision.canonical == b'{"gone":true}'
    assert [(e.type, e.seq, e.snapshot) for e in decision.events] == [("t.gone", 4, None)]
    assert decision.record == ResourceState(digest(b'{"gone":true}'), 4, NOW)


def test_not_found_of_a_resource_found_gone_before_is_no_news() -> None:
    first = decide(_state_of(OPEN), Fetched(REF, errors.NotFound("404")), Watch(60), _batch())
    assert isinstance(first, Gone)
    again = decide(first.record, Fetched(REF, errors.NotFound("404")), Watch(60), _batch())
    assert isinstance(again, Gone) and again.events == [] and again.record == first.record


def test_not_found_of_a_resource_never_seen_is_a_failure() -> None:
    decision = decide(None, Fetched(REF, errors.NotFound("404")), Watch(60), _batch())
    assert decision == Failed(Failure.NOT_FOUND, DueAt(NOW + 60), "404")


@pytest.mark.parametrize(("error", "kind"), [
    (errors.Unavailable("500"), Failure.UNAVAILABLE),
    (errors.MalformedPayload("<html>"), Failure.MALFORMED),
    (errors.ProviderError("400"), Failure.ERROR),
])
def test_failures_back_off_past_the_interval_with_each_failure(error: errors.ProviderError, kind: Failure) -> None:
    first, third = Watch(1, failures=0), Watch(1, failures=2)
    assert decide(None, Fetched(REF, error), first, _batch()) == Failed(kind, DueAt(NOW + 5), str(error))
    assert decide(None, Fetched(REF, error), third, _batch()) == Failed(kind, DueAt(NOW + 20), str(error))
    assert decide(None, Fetched(REF, error), Watch(60, failures=2), _batch()).due == DueAt(NOW + 60)


def test_a_429_pauses_for_its_retry_after() -> None:
    decision = decide(_state_of(OPEN), Fetched(REF, errors.RateLimited("429", retry_after=30)), Watch(60), _batch())
    assert decision == RateLimited(DueAt(NOW + 30), 30)


def test_unauthorized_polls_again_after_the_interval() -> None:
    decision = decide(_state_of(OPEN), Fetched(REF, errors.Unauthorized("401 after refresh")), Watch(60), _batch())
    assert decision == Unauthorized(DueAt(NOW + 60), "401 after refresh")


# ---- the fingerprint fast path ------------------------------------------------------------


def test_a_matching_body_fingerprint_is_due_without_a_parse() -> None:
    state = _state_of(OPEN, preview="lbody", terminal=False)
    assert unchanged_body(state, "lbody", Watch(60), Pacing(), NOW) == DueAt(NOW + 60)


@pytest.mark.parametrize("state", [
    None,
    _state_of(OPEN, preview="lbody"),  # no terminal flag recorded yet
    _state_of(OPEN, preview="lother", terminal=False),
    _state_of(FAILED, preview="lbody", terminal=True),  # would stop polling: decided with a parse
])
def test_otherwise_the_body_is_parsed(state: ResourceState | None) -> None:
    assert unchanged_body(state, "lbody", Watch(60), Pacing(), NOW) is None


def test_a_stall_recorded_under_other_stall_times_than_the_watchs_is_parsed_again() -> None:
    """A scan that also lists the order recorded the provider's 24 h; the id watch's own
    `stall_after` of 12 s was then never applied (found by a fresh-user trial)."""
    state = replace(_state_of(OPEN, preview="lbody", terminal=False), entered_at=NOW - 5, stall_at=NOW - 5 + 86400)
    own = Watch(60, stall_after={"*": 12.0})
    assert unchanged_body(state, "lbody", own, Pacing(), NOW) is None
    assert unchanged_body(replace(state, stall_at=NOW + 7), "lbody", own, Pacing(), NOW) == DueAt(NOW + 7)
    assert unchanged_body(state, "lbody", Watch(60), Pacing(), NOW) == DueAt(NOW + 60)  # no stall times of its own
    some = Watch(60, stall_after={"Failed": 12.0})  # not every state's: the provider's may be the one recorded
    assert unchanged_body(state, "lbody", some, Pacing(), NOW) == DueAt(NOW + 60)


def test_an_empty_fingerprint_never_matches() -> None:
    assert unchanged_body(_state_of(OPEN, terminal=False), "", Watch(60), Pacing(), NOW) is None


def test_observe_gives_the_canonical_bytes_and_their_digest() -> None:
    seen = observe(REF, {"b": 1, "a": 2}, "lp")
    assert seen == Parsed(REF, {"b": 1, "a": 2}, b'{"a":2,"b":1}', digest(b'{"a":2,"b":1}'), "lp")


def test_a_terminal_flag_that_changed_is_recorded_under_the_same_fingerprint() -> None:
    state = _state_of(FAILED, preview="lsame", terminal=False)
    decision = decide(state, observe(REF, FAILED, "lsame"), Watch(60), _batch())
    assert decision == Unchanged(STOP_POLLING, replace(state, terminal=True))


def test_an_unchanged_resource_idle_since_its_last_change_polls_at_the_idle_interval() -> None:
    spec = FakeSpec(Pacing(interval_idle=600))
    idle, active = _state_of(OPEN, changed_at=NOW - 5000), _state_of(OPEN, changed_at=NOW - 100)
    assert decide(idle, observe(REF, OPEN), Watch(60), _batch(spec)) == Unchanged(DueAt(NOW + 600))
    assert decide(active, observe(REF, OPEN), Watch(60), _batch(spec)) == Unchanged(DueAt(NOW + 60))
