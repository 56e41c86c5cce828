"""What one resource's poll means, and what to write for it. Pure.

The poller (tasks/poll.py) reads a batch's records, fetches, and hands each resource's
observation to `decide` with the state its last commit recorded; the answer says what
to write (a new state record and events, or nothing), when to poll next (a `core.due`
value) and how to count the poll. The poller then writes every answer in one round trip.

The cases, as the poller has them:
- a fetched body whose fingerprint matches the one recorded, with the terminal flag known:
  unchanged without a parse (`unchanged_body`);
- the same snapshot digest: `Unchanged`, recording a new fingerprint or terminal flag, or
  `Stalled` when it has been in its state past its stall time (core/stall.py);
- a new digest: `Changed` (events from the provider's classify), or a baseline when
  there is no state or no stored snapshot (a `discovered` event if the watch asks);
  a change of state starts a new entry into it (and re-arms the stall);
- NotFound of a resource seen before: `Gone`, and polling stops;
- a failure: `RateLimited` (the provider pauses), `Unauthorized` (the provider is
  unhealthy) or `Failed` (this resource backs off).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from core.backoff import poll_backoff
from core.diff import diff
from core.due import KEEP_DUE, STOP_POLLING, Due, DueAt, DueSoon, StopPolling
from core.events import build_events, change_of
from core.fingerprint import canonical, digest
from core.schedule import Pacing, next_poll_at
from core.stall import Stall, cap_due, fire, is_due, recorded, stall_after, track
from core.state import ResourceState
from model import errors
from model.errors import ProviderError
from model.events import Change, Event, EventDraft
from model.resources import ResourceInfo, ResourceRef, Snapshot

__all__ = [
    "GONE_BODY",
    "GONE_DIGEST",
    "Batch",
    "Changed",
    "Decision",
    "Failed",
    "Failure",
    "Fetched",
    "Gone",
    "Observed",
    "Parsed",
    "RateLimited",
    "Settings",
    "Spec",
    "Stalled",
    "Unauthorized",
    "Unchanged",
    "Watch",
    "decide",
    "is_gone",
    "needs_old_snapshot",
    "observe",
    "unchanged_body",
]


class Settings(Pacing, Protocol):
    """A provider's settings, as the decision reads them: its pacing and its stall times."""

    @property
    def stall_after(self) -> Mapping[str, float]: ...


class Spec(Protocol):
    """What the decision asks of a provider (providers.base.Provider has these)."""

    @property
    def settings(self) -> Settings: ...
    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo: ...
    def classify(self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]: ...
    def discovered(self, ref: ResourceRef, snapshot: Snapshot) -> EventDraft: ...
    def gone(self, ref: ResourceRef, snapshot: Snapshot) -> EventDraft: ...
    def stalled(self, ref: ResourceRef, snapshot: Snapshot, *, state: str, since: float,
                seconds: float) -> EventDraft: ...


@dataclass(frozen=True, slots=True)
class Batch:
    """What every resource of a poll batch shares."""

    spec: Spec
    now: float
    epoch: str
    """the dataset the batch read: part of every event id (`core.events.change_of`)"""


@dataclass(frozen=True, slots=True)
class Watch:
    """How the resource is watched."""

    interval: float
    discovered: bool = False
    """a first sight is a `discovered` event, not a silent baseline"""
    scheduled: bool = True
    """False for an item of a scan: its due time is the scan's, and is left alone"""
    failures: int = 0
    """consecutive failed polls before this one"""
    stall_after: Mapping[str, float] | None = None
    """the watch's own stall times by state (`*`: any), before the provider's"""
    scan: str = ""
    """the rkey of the scan that watches an item of it ("" for a resource watched itself):
    its events name it (`resource.scan`), so that a reminder lasts while the scan does"""


# ---- what a poll saw ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    """A fetched resource, normalized."""

    ref: ResourceRef
    snapshot: Snapshot
    canonical: bytes
    digest: str
    preview: str = ""
    """the fingerprint of what was fetched or listed ("" when none was taken)"""
    old: Snapshot | None = None
    """the snapshot stored before, read when the digest differs (`needs_old_snapshot`)"""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetch that failed."""

    ref: ResourceRef
    error: ProviderError
    old: Snapshot | None = None
    """the snapshot stored before, read for a resource found gone (`needs_old_snapshot`): the
    gone event names its last state"""


Observed = Parsed | Fetched


def observe(ref: ResourceRef, snapshot: Snapshot, preview: str = "") -> Parsed:
    """`snapshot` with its canonical bytes and digest."""
    body = canonical(snapshot)
    return Parsed(ref, snapshot, body, digest(body), preview)


GONE_BODY = canonical({"gone": True})
"""what the snapshot of a resource found gone becomes"""
GONE_DIGEST = digest(GONE_BODY)


def is_gone(state: ResourceState | None) -> bool:
    """Whether the last commit recorded the resource gone (a second NotFound is no news)."""
    return state is not None and state.digest == GONE_DIGEST


def needs_old_snapshot(state: ResourceState | None, observed: Observed) -> bool:
    """Whether `decide` needs the stored snapshot: to classify a change against it, or to
    name the last state of a resource found gone."""
    if isinstance(observed, Fetched):
        return isinstance(observed.error, errors.NotFound) and state is not None and not is_gone(state)
    return state is not None and state.digest != observed.digest


# ---- what to write ------------------------------------------------------------------------


class Failure(enum.StrEnum):
    """How a failed poll is counted (the names of tasks.poll.PollOutcome)."""

    MALFORMED = "malformed"
    UNAVAILABLE = "unavailable"
    NOT_FOUND = "not_found"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Unchanged:
    due: Due
    record: ResourceState | None = None
    """the state to record when the fingerprint or the terminal flag is new (the snapshot
    is written again with it); None: nothing to record"""


@dataclass(frozen=True, slots=True)
class Changed:
    record: ResourceState
    events: list[Event]
    due: Due
    baseline: bool
    """the first look (no state, or no stored snapshot): no classify, at most `discovered`"""


@dataclass(frozen=True, slots=True)
class Stalled:
    """Unchanged, and in its state past its stall time: one `*.stalled` event."""

    record: ResourceState
    events: list[Event]
    due: Due


@dataclass(frozen=True, slots=True)
class Gone:
    record: ResourceState
    canonical: bytes
    """what the snapshot becomes: `{"gone": true}`"""
    events: list[Event]
    due: StopPolling = STOP_POLLING


@dataclass(frozen=True, slots=True)
class RateLimited:
    due: DueAt
    pause: float
    """seconds every worker leaves the provider alone"""


@dataclass(frozen=True, slots=True)
class Unauthorized:
    due: DueAt
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    kind: Failure
    due: DueAt
    reason: str


Decision = Unchanged | Stalled | Changed | Gone | RateLimited | Unauthorized | Failed


def unchanged_body(state: ResourceState | None, fingerprint: str, watch: Watch, pacing: Pacing,
                   now: float) -> DueAt | None:
    """The next due time of a resource whose fetched body has the fingerprint of its last
    poll: unchanged without a parse. None when that cannot be decided without one (no
    fingerprint, terminal flag or stall tracking recorded yet, a different body, a stall
    that is due, or polling should stop)."""
    if state is None or state.terminal is None or not fingerprint or state.preview != fingerprint:
        return None
    if state.entered_at is None or (state.stall_at is not None and now >= state.stall_at):
        return None
    if _stall_of_another_watch(state, watch):
        return None
    at = next_poll_at(now, interval=watch.interval, terminal=state.terminal, changed_at=state.changed_at,
                      settings=pacing)
    return None if at is None else DueAt(cap_due(at, state.stall_at))


def _stall_of_another_watch(state: ResourceState, watch: Watch) -> bool:
    """The recorded stall moment is later than any stall time of this watch allows: it was
    recorded under other stall times (a scan that also lists the resource records the
    provider's). A parse then sets it by this watch's own (its first poll after). Told only
    for a watch whose stall times cover every state (`*`): else the provider's may apply."""
    if "*" not in (watch.stall_after or {}) or state.stall_at is None or state.entered_at is None:
        return False
    return state.stall_at - state.entered_at > max((watch.stall_after or {}).values()) + 1


def decide(state: ResourceState | None, observed: Observed, watch: Watch, batch: Batch) -> Decision:
    """What the poll of one resource means; `state` is what its last commit recorded."""
    if isinstance(observed, Fetched):
        return _failed(state, observed, watch, batch)
    try:
        if state is not None and state.digest == observed.digest:
            return _unchanged(state, observed, watch, batch)
        return _changed(state, observed, watch, batch)
    except errors.MalformedPayload as exc:  # the provider's reading of it failed (describe, classify)
        return _failed(state, Fetched(observed.ref, exc), watch, batch)


def _unchanged(state: ResourceState, seen: Parsed, watch: Watch, batch: Batch) -> Unchanged | Stalled:
    spec, now = batch.spec, batch.now
    info = spec.describe(seen.ref, seen.snapshot)
    terminal = info.terminal if watch.scheduled else state.terminal
    stall = track(state, same_state=True, now=now, threshold=_threshold(info, watch, spec))
    drafts, stall = _stall_drafts(stall, seen, info, batch)
    # remember the fingerprint, so that the next look needs no fetch or no parse
    new = recorded(replace(state, preview=seen.preview, terminal=terminal) if seen.preview else state, stall)
    due = _due(watch, spec, now, info.terminal, state.changed_at, stall)
    if drafts:
        events = build_events(seen.ref, info, drafts, base_seq=state.seq, now=now, snapshot=seen.snapshot,
                              change=change_of(batch.epoch, state.digest, seen.digest), scan=watch.scan)
        return Stalled(replace(new, seq=state.seq + len(events)), events, due)
    return Unchanged(due, None if new == state else new)


def _changed(state: ResourceState | None, seen: Parsed, watch: Watch, batch: Batch) -> Changed:
    spec, now = batch.spec, batch.now
    info = spec.describe(seen.ref, seen.snapshot)
    baseline = state is None or seen.old is None
    if state is None or seen.old is None:
        drafts = [spec.discovered(seen.ref, seen.snapshot)] if watch.discovered else []
        same_state = False
    else:
        drafts = spec.classify(seen.ref, seen.old, seen.snapshot, diff(seen.old, seen.snapshot))
        same_state = spec.describe(seen.ref, seen.old).state == info.state
    stall = track(state, same_state=same_state, now=now, threshold=_threshold(info, watch, spec))
    more, stall = _stall_drafts(stall, seen, info, batch)
    base_seq = state.seq if state else 0
    change = change_of(batch.epoch, state.digest if state else "", seen.digest)
    events = build_events(seen.ref, info, drafts + more, base_seq=base_seq, now=now, snapshot=seen.snapshot,
                          change=change, scan=watch.scan)
    record = recorded(ResourceState(seen.digest, base_seq + len(events), now, seen.preview,
                                    info.terminal if watch.scheduled and seen.preview else None), stall)
    due = DueSoon(now) if not watch.scheduled and not baseline and events else _due(
        watch, spec, now, info.terminal, now, stall)
    return Changed(record, events, due, baseline)


def _threshold(info: ResourceInfo, watch: Watch, spec: Spec) -> float | None:
    return stall_after(info.state, terminal=info.terminal, watch=watch.stall_after, provider=spec.settings.stall_after)


def _stall_drafts(stall: Stall, seen: Parsed, info: ResourceInfo, batch: Batch) -> tuple[list[EventDraft], Stall]:
    """The stalled event when the stall is due (and the tracking with it fired), else none."""
    if not is_due(stall, batch.now):
        return [], stall
    draft = batch.spec.stalled(seen.ref, seen.snapshot, state=str(info.state), since=stall.entered_at,
                               seconds=batch.now - stall.entered_at)
    return [draft], fire(stall)


def _due(watch: Watch, spec: Spec, now: float, terminal: bool, changed_at: float, stall: Stall) -> Due:
    """The next due time (no later than the stall moment); a scan item's is the scan's."""
    if not watch.scheduled:
        return KEEP_DUE
    at = next_poll_at(now, interval=watch.interval, terminal=terminal, changed_at=changed_at, settings=spec.settings)
    return STOP_POLLING if at is None else DueAt(cap_due(at, stall.stall_at))


_FAILURES: dict[type[ProviderError], Failure] = {
    errors.MalformedPayload: Failure.MALFORMED,
    errors.Unavailable: Failure.UNAVAILABLE,
    errors.NotFound: Failure.NOT_FOUND,
}


def _failed(state: ResourceState | None, seen: Fetched, watch: Watch, batch: Batch) -> Decision:
    exc, now = seen.error, batch.now
    if isinstance(exc, errors.NotFound) and state is not None:
        if is_gone(state):  # found gone before (by the id's poll or by its scan): no second event
            return Gone(state, GONE_BODY, [])
        return _gone(state, seen, batch)
    if isinstance(exc, errors.RateLimited):
        return RateLimited(DueAt(now + exc.retry_after), exc.retry_after)
    if isinstance(exc, errors.Unauthorized):
        return Unauthorized(DueAt(now + watch.interval), str(exc))
    kind = _FAILURES.get(type(exc), Failure.ERROR)
    return Failed(kind, DueAt(now + max(watch.interval, poll_backoff(watch.failures + 1))), str(exc))


def _gone(state: ResourceState, seen: Fetched, batch: Batch) -> Gone:
    """The gone event names the resource and its last state as its stored snapshot has them
    (none stored: by its rkey alone)."""
    ref, last = seen.ref, seen.old or {}
    info = batch.spec.describe(ref, last)
    events = build_events(ref, info, [batch.spec.gone(ref, last)], base_seq=state.seq, now=batch.now, snapshot=None,
                          change=change_of(batch.epoch, state.digest, GONE_DIGEST))
    return Gone(ResourceState(GONE_DIGEST, state.seq + len(events), batch.now), GONE_BODY, events)
