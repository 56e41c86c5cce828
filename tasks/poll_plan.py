"""What a poll batch will write, gathered from its decisions before the one commit round trip.

`Plan.add` turns a resource's decision (core/decide.py) into the batch's writes: a commit
(state, snapshot, due time, events), a due time, an error counter, a provider's pause or
health (store/commit.py: BatchHealth), and the outcome it is counted as. No I/O: the poller
(tasks/poll.py) writes the plan.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.decide import (
    Changed,
    Decision,
    Failed,
    Failure,
    Gone,
    Observed,
    Parsed,
    RateLimited,
    Stalled,
    Unauthorized,
    Unchanged,
    Watch,
)
from core.due import KEEP_DUE, DueAt, StopPolling
from core.state import ResourceState
from store.snapshots import BatchHealth, Commit, pack_snapshot
from tasks.rate_slots import Placement

__all__ = ["Plan", "PollOutcome", "ScanWrites", "Seen", "UnhealthyLog"]

log = logging.getLogger("statehook.poll")


class PollOutcome(enum.StrEnum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    STALLED = "stalled"
    BASELINE = "baseline"
    GONE = "gone"
    NOT_FOUND = "not_found"
    MALFORMED = "malformed"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    CONFLICT = "conflict"
    ERROR = "error"
    UNWATCHED = "unwatched"
    PAUSED = "paused"
    DEFERRED = "deferred"
    """its rate slot is beyond the batch's horizon: booked, and due at it (tasks/rate_slots.py)"""
    CORRUPT = "corrupt"


@dataclass(slots=True)
class Seen:
    """One resource of a batch, as decided: what was recorded of it, and what was seen."""

    state: ResourceState | None
    observed: Observed
    watch: Watch


class UnhealthyLog:
    """One error line per provider and watch interval while it answers 401, not one per poll."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def note(self, provider: str, reason: str, now: float, interval: float) -> None:
        if now - self._last.get(provider, 0.0) >= interval:
            self._last[provider] = now
            log.error("provider %s is unhealthy: %s", provider, reason)


@dataclass(slots=True)
class Plan:
    """What a batch will write, gathered before the single commit round trip."""

    epoch: str
    """the dataset the batch read (`Store.load`): its commits are guarded by it, and it is
    part of every event id"""
    commits: list[Commit] = field(default_factory=list)
    outcomes_of_commits: list[PollOutcome] = field(default_factory=list)
    """counted once the commit is made (CONFLICT when it is refused)"""
    reschedule: dict[str, float] = field(default_factory=dict)
    clear_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outcomes: Counter[PollOutcome] = field(default_factory=Counter)
    pause: dict[str, float] = field(default_factory=dict)
    health: BatchHealth = field(default_factory=BatchHealth)
    polled: list[str] = field(default_factory=list)
    """the batch's resources: no longer late once the batch is written"""
    listed: list[tuple[str, list[str]]] = field(default_factory=list)
    """(scan rkey, the ids one of its pages listed), a page each, in the order the pages came (the sweep in
    progress): a page's entry equal to the one of the sweep before is the cheap case of `store.sweeps.unlisted`"""
    booked: dict[str, float] = field(default_factory=dict)
    """rkey -> the rate slot it waits for, past the batch's horizon (tasks/rate_slots.py)"""
    unbooked: list[str] = field(default_factory=list)
    """resources fetched in the slot they had booked"""

    def commit(self, commit: Commit, outcome: PollOutcome) -> None:
        self.commits.append(commit)
        self.outcomes_of_commits.append(outcome)

    def has_writes(self) -> bool:
        return self.has_writes_beyond_answers() or bool(self.health)

    def has_writes_beyond_answers(self) -> bool:
        """Whether the plan holds writes other than which providers answered."""
        h = self.health
        return bool(self.commits or self.reschedule or self.clear_errors or self.errors or self.polled or self.listed
                    or self.booked or self.unbooked or self.pause or h.unauthorized or h.failed or h.limited)

    def book(self, rkeys: Sequence[str], placed: Placement, had: Mapping[str, float]) -> None:
        """The writes of a batch's rate slots (tasks/rate_slots.py): the resources whose slot
        is beyond the horizon are due again at it, booked; those fetched now use up theirs."""
        for i, slot in placed.later:
            self.booked[rkeys[i]] = self.reschedule[rkeys[i]] = slot
        self.outcomes[PollOutcome.DEFERRED] += len(placed.later)
        self.unbooked.extend(rkeys[i] for i, _ in placed.now if rkeys[i] in had)

    def clear_writes(self) -> None:
        for batch in (self.commits, self.outcomes_of_commits, self.clear_errors, self.errors, self.polled,
                      self.unbooked, self.listed):
            batch.clear()
        for table in (self.reschedule, self.booked):
            table.clear()
        self.health.clear()

    def add(self, provider: str, seen: Seen, decision: Decision, now: float, unhealthy_log: UnhealthyLog) -> None:
        """The writes of one resource's decision."""
        ref, state = seen.observed.ref, seen.state
        match decision:
            case Unchanged(due=due, record=record):
                if record is None and not isinstance(due, StopPolling):
                    self.outcomes[PollOutcome.UNCHANGED] += 1
                else:  # the snapshot written again with what is new, or with polling stopped
                    assert isinstance(seen.observed, Parsed) and state is not None
                    self.commit(Commit(ref, state, record or state, pack_snapshot(seen.observed.canonical),
                                       due if isinstance(due, StopPolling) else KEEP_DUE, []), PollOutcome.UNCHANGED)
                if isinstance(due, DueAt):
                    self.reschedule[ref.key] = due.at
            case Changed(record=record, events=events, due=due, baseline=baseline):
                assert isinstance(seen.observed, Parsed)
                self.commit(Commit(ref, state, record, pack_snapshot(seen.observed.canonical), due, events),
                            PollOutcome.BASELINE if baseline else PollOutcome.CHANGED)
            case Stalled(record=record, events=events, due=due):
                assert isinstance(seen.observed, Parsed)
                self.commit(Commit(ref, state, record, pack_snapshot(seen.observed.canonical), due, events),
                            PollOutcome.STALLED)
            case Gone(record=record, canonical=body, events=events, due=due):
                self.commit(Commit(ref, state, record, pack_snapshot(body), due, events), PollOutcome.GONE)
            case _:
                self._add_failure(provider, seen, decision, now, unhealthy_log)

    def _add_failure(self, provider: str, seen: Seen, decision: Decision, now: float,
                     unhealthy_log: UnhealthyLog) -> None:
        rkey = seen.observed.ref.key
        match decision:
            case RateLimited(due=due, pause=pause):
                self.outcomes[PollOutcome.RATE_LIMITED] += 1
                self.pause[provider] = max(self.pause.get(provider, 0.0), pause)
                self.health.limited[provider] = self.pause[provider]
            case Unauthorized(due=due, reason=reason):
                self.outcomes[PollOutcome.UNAUTHORIZED] += 1
                self.health.unauthorized[provider] = reason
                unhealthy_log.note(provider, reason, now, seen.watch.interval)
            case Failed(kind=kind, due=due, reason=reason):
                outcome = PollOutcome(kind.value)
                self.outcomes[outcome] += 1
                if kind is not Failure.NOT_FOUND:  # an id that never existed says nothing of the provider
                    self.health.failed[provider] += 1
                    self.health.last_error[provider] = reason
                self.errors.append(rkey)
                log.warning("poll %s: %s: %s", rkey, outcome.value, reason, extra={"rkey": rkey})
            case _:
                raise AssertionError(f"not a failure: {decision!r}")
        self.reschedule[rkey] = due.at


@dataclass(slots=True)
class ScanWrites:
    """When a sweep writes its plan between pages: at the first page, at a page with writes of
    its own, and otherwise at least every third of `lease` (5 s at most). Each of these writes
    renews the scan's lease (its due time, `lease` seconds on), so that the scheduler does not
    claim a sweep longer than the lease again while it runs. Each one also carries the
    provider's answers, which keeps its health current through a long sweep. Pure."""

    scan: str
    lease: float
    _next: float | None = None

    def due(self, plan: Plan, now: float) -> bool:
        if self._next is not None and now < self._next and not plan.has_writes_beyond_answers():
            return False
        self._next = now + min(5.0, self.lease / 3)
        plan.reschedule.setdefault(self.scan, now + self.lease)
        return True
