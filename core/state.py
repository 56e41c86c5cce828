"""What a resource's last commit recorded of it: the value the poll decision reads and
makes (core/decide.py). Pure; its stored form and codec are store/records.py."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResourceState"]


@dataclass(frozen=True, slots=True)
class ResourceState:
    """The commit guard: what a resource's stored snapshot is, as of the last commit."""

    digest: str
    """of the snapshot's canonical JSON (`core.fingerprint.digest`)"""
    seq: int
    """the sequence number of the resource's last event (0: none yet)"""
    changed_at: float
    """when the snapshot last changed (unix seconds; stored to the second)"""
    preview: str = ""
    """a fingerprint of what was last seen before parsing: a preview scan's summary digest,
    or a listed item's or a fetched body's bytes (volatile values blanked)"""
    terminal: bool | None = None
    """whether the snapshot is in a terminal state, when a poll recorded it: lets a poll
    whose body fingerprint matches reschedule without parsing"""
    entered_at: float | None = None
    """when the resource entered its current state (unix seconds, to the second); None in a
    record written before stalls were tracked (read as `changed_at`, and tracked from the
    next parse: core/stall.py)"""
    stall_at: float | None = None
    """when the resource counts as stalled if it is still in that state (armed); None when
    no stall time applies (terminal, no state, off) or the stall has fired"""
    stalled: bool = False
    """the stalled event fired for this entry into the state (a change of state re-arms it)"""

    @property
    def since(self) -> float:
        """When the current state was entered, as well as the record knows."""
        return self.changed_at if self.entered_at is None else self.entered_at
