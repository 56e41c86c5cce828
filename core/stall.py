"""When a resource that stays in one state counts as stalled. Pure.

A non-terminal resource that stays in one state longer than its stall time is stalled: one
`{provider}.{kind}.stalled` event per entry into the state, re-armed by a change of state.
The stall time comes from the watch (`stall_after` of a `[[watches]]` entry) or else from
its provider's settings, per state, with `*` for any state a table does not name; 0 is off.
The state record (core/state.py) keeps when the state was entered and when the stall is due
(`stall_at`), so that a poll whose body is unchanged knows without a parse whether it must
look, and a resource polled rarely is due by its stall moment (`cap_due`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from core.state import ResourceState

__all__ = ["ANY_STATE", "Stall", "cap_due", "fire", "human_duration", "is_due", "recorded", "stall_after", "track"]

ANY_STATE = "*"
"""The key of a stall table that applies to every state the table does not name."""


def stall_after(state: object, *, terminal: bool, watch: Mapping[str, float] | None,
                provider: Mapping[str, float]) -> float | None:
    """Seconds a resource may stay in `state` before it is stalled; None: never (terminal, no
    state, or off). Looked up in the watch's table, then the provider's: each by the state's
    name (without case), then `*`. The first table that answers decides, 0 meaning off."""
    if terminal or not isinstance(state, str) or not state.strip():
        return None
    name = state.strip().casefold()
    for table in (watch or {}, provider):
        folded = {k.strip().casefold(): v for k, v in table.items()}
        value = folded.get(name, folded.get(ANY_STATE))
        if value is not None:
            return float(value) if value > 0 else None
    return None


@dataclass(frozen=True, slots=True)
class Stall:
    """A resource's stall tracking as of this poll (the three stall fields of its record)."""

    entered_at: float
    stall_at: float | None
    stalled: bool


def track(state: ResourceState | None, *, same_state: bool, now: float, threshold: float | None) -> Stall:
    """The tracking of a resource seen now: its entry into the state kept when it is in the
    state the record knows (and the stall fired or not), a new entry otherwise. The stall
    moment follows the threshold given (so a changed `stall_after` applies at the next parse);
    times are whole seconds, as stored, so that an unchanged resource records nothing new."""
    if state is not None and same_state:
        entered, stalled = float(int(state.since)), state.stalled
    else:
        entered, stalled = float(int(now)), False
    stall_at = None if stalled or threshold is None else float(math.ceil(entered + threshold))
    return Stall(entered, stall_at, stalled)


def is_due(stall: Stall, now: float) -> bool:
    """The resource has been in its state for its stall time, and the stall has not fired."""
    return stall.stall_at is not None and not stall.stalled and now >= stall.stall_at


def fire(stall: Stall) -> Stall:
    return replace(stall, stall_at=None, stalled=True)


def recorded(state: ResourceState, stall: Stall) -> ResourceState:
    """`state` with `stall`'s fields."""
    return replace(state, entered_at=stall.entered_at, stall_at=stall.stall_at, stalled=stall.stalled)


def cap_due(at: float, stall_at: float | None) -> float:
    """A due time no later than the stall moment: a resource polled every day whose stall
    time is an hour away is looked at in an hour, and the stall is seen when it comes."""
    return at if stall_at is None else min(at, stall_at)


def human_duration(seconds: float) -> str:
    """`2 d 3 h`, `5 h 10 min`, `12 min`, `45 s`: the largest two units, for summaries."""
    total = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size} {unit}")
            total %= size
        if len(parts) == 2 or (parts and total == 0):
            break
    return " ".join(parts)
