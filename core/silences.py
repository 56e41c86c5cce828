"""Which silence mutes an event for a destination, what a new silence would have muted
among recent events, and the checks a new or extended silence passes. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from model.silences import MATCHER_KEYS, RoutingFacts, Silence, SilenceMatch, SilenceState
from model.values import format_seconds, parse_duration

__all__ = [
    "LATEST",
    "ActiveSilences",
    "Preview",
    "matches",
    "mutes_everything",
    "parse_matchers",
    "parse_when",
    "preview",
    "range_problem",
    "time_problem",
]


def _any(given: list[str] | None, value: str | None) -> bool:
    return given is None or (value is not None and value in given)


def matches(match: SilenceMatch, facts: RoutingFacts, destination: str) -> bool:
    """Whether `match` mutes the event of `facts` for `destination`."""
    if not _any(match.destination, destination) or not _any(match.provider, facts.provider):
        return False
    if match.type is not None and not any(fnmatchcase(facts.type, glob) for glob in match.type):
        return False
    if not _any(match.rkey, facts.rkey) or not _any(match.id, facts.resource_id):
        return False
    if match.severity is not None and facts.severity not in match.severity:
        return False
    if match.state is not None and (
            facts.state is None or facts.state.casefold() not in {s.casefold() for s in match.state}):
        return False
    if match.tags is not None and not set(match.tags) & set(facts.tags):
        return False
    return _any(match.project, facts.project)


class ActiveSilences:
    """The silences a dispatcher holds in memory; `muting` asks the clock each time, so a
    silence starts and expires on time between two refreshes."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self.silences = sorted(silences, key=lambda s: (s.created_at, s.id))

    def __len__(self) -> int:
        return len(self.silences)

    def muting(self, facts: RoutingFacts, destination: str, now: float) -> Silence | None:
        """The first silence (oldest first) active at `now` that mutes this delivery."""
        for s in self.silences:
            if s.starts_at <= now < s.ends_at and matches(s.match, facts, destination):
                return s
        return None

    def live(self, now: float) -> ActiveSilences:
        """Without the expired ones (what is worth keeping between refreshes)."""
        return ActiveSilences(s for s in self.silences if s.state(now) is not SilenceState.EXPIRED)


@dataclass(frozen=True)
class Preview:
    """What a silence would have muted among recent events: each (event, destination)."""

    muted: list[tuple[RoutingFacts, str]]
    events: int
    """events looked at"""
    muted_events: int
    """events muted on every destination they were routed to"""

    @property
    def everything(self) -> bool:
        """It mutes every event looked at, on each of its destinations (and there were some)."""
        return self.events > 0 and self.muted_events == self.events


def preview(match: SilenceMatch, recent: Iterable[RoutingFacts]) -> Preview:
    muted: list[tuple[RoutingFacts, str]] = []
    events = whole = 0
    for facts in recent:
        events += 1
        hit = [d for d in facts.destinations if matches(match, facts, d)]
        muted.extend((facts, d) for d in hit)
        if hit and len(hit) == len(facts.destinations):
            whole += 1
    return Preview(muted, events, whole)


def mutes_everything(match: SilenceMatch, found: Preview) -> str | None:
    """Why a silence needs `force`, in one line; None when it does not."""
    if not match.given():
        return "it has no matcher, so it mutes every event on every destination"
    if found.everything:
        return f"it matches every event of the last 24 h ({found.events}) on every destination they went to"
    return None


def parse_matchers(items: Sequence[str]) -> SilenceMatch:
    """`key=value` items (a key given twice matches either value) as matchers; ValueError
    naming the unknown key or the malformed item."""
    given: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"matcher {item[:80]!r} is not key=value")
        if key not in MATCHER_KEYS:
            raise ValueError(f"unknown matcher key {key[:40]!r} (known: {', '.join(MATCHER_KEYS)})")
        if not value.strip():
            raise ValueError(f"matcher {key} has no value")
        given.setdefault(key, []).append(value.strip())
    return SilenceMatch.model_validate(given)


_ISO_Z = re.compile(r"z$", re.IGNORECASE)


def parse_when(text: str, now: float) -> float:
    """A Unix time from `now`, `2h` (from now), `1h30m`, or an ISO 8601 time (UTC when it
    names no offset); ValueError in one line."""
    text = text.strip()
    if text.lower() == "now":
        return now
    try:
        seconds = parse_duration(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"{text[:64]!r} is not a finite duration")
        return now + seconds
    try:
        when = datetime.fromisoformat(_ISO_Z.sub("+00:00", text))
    except ValueError:
        raise ValueError(f"{text[:64]!r} is neither a duration (2h, 30m, 1d) nor an ISO 8601 time") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
"""the last second a time can be shown at (datetime's range): a silence's times are at most this"""


def range_problem(starts_at: float, ends_at: float) -> str | None:
    """Why these times cannot be shown: one is past datetime's range (or NaN). None when they can."""
    if not (starts_at <= LATEST and ends_at <= LATEST):  # NaN too
        return "its start or end is after 9999-12-31T23:59:59Z, the latest time a silence can have"
    return None


def time_problem(starts_at: float, ends_at: float, now: float, max_duration: float) -> str | None:
    """Why these times cannot be a silence's, in one line; None when they can. A time past
    what can be shown is told first, whatever the clock and the maximum say."""
    if (beyond := range_problem(starts_at, ends_at)) is not None:
        return beyond
    if ends_at <= now:
        return "its end is in the past"
    if ends_at <= starts_at:
        return "its end is not after its start"
    if ends_at - max(starts_at, now) > max_duration:
        return f"it would last longer than the maximum of {format_seconds(max_duration)} (silences.max_duration)"
    return None
