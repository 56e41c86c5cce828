"""When the config's named time intervals hold, and when a route is muted by them. Pure.

`holds(interval, t)` is Alertmanager's ContainsTime: the instant's local wall time in the
interval's location is checked field by field, so a range of wall-clock times follows the
zone's daylight saving (a 02:00–03:00 range never holds on the night the clocks skip that
hour, and holds twice as long on the night they repeat it).

`Muting` is one route's `mute_during` and `active_during`: muted while any `mute_during`
interval holds or, if `active_during` is given, while none of those holds. `until(t)` is
when the muting that holds at `t` ends: the instant a summary of it is due. It is found
exactly, not by sampling: between two consecutive candidate instants (a local midnight,
a start or end time of the day in either fold, a change of the zone's offset) no field
can change, so the first candidate where the answer differs is the change."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from model.time_intervals import (
    NamedTimeInterval,
    TimeInterval,
    day_of_month_range,
    minute_of_day,
    month_range,
    weekday_range,
    year_range,
)

__all__ = ["HORIZON_DAYS", "Compiled", "Muting", "compile_interval", "holds", "next_change"]

HORIZON_DAYS = 800
"""How far `next_change` looks ahead (an interval that does not change for longer is taken to
end there)."""

Ranges = tuple[tuple[int, int], ...] | None


@dataclass(frozen=True, slots=True)
class Compiled:
    """A TimeInterval with its ranges parsed once (the dispatcher asks per batch)."""

    zone: ZoneInfo
    minutes: Ranges
    weekdays: Ranges
    days_of_month: Ranges
    months: Ranges
    years: Ranges

    def holds_local(self, local: datetime) -> bool:
        if self.minutes is not None:
            m = local.hour * 60 + local.minute
            if not any(a <= m < b for a, b in self.minutes):
                return False
        if self.days_of_month is not None and not _day_in(self.days_of_month, local):
            return False
        if self.months is not None and not any(a <= local.month <= b for a, b in self.months):
            return False
        weekday = (local.weekday() + 1) % 7  # Python's Monday=0 → Sunday=0
        if self.weekdays is not None and not any(a <= weekday <= b for a, b in self.weekdays):
            return False
        return self.years is None or any(a <= local.year <= b for a, b in self.years)

    def holds(self, t: float) -> bool:
        return self.holds_local(datetime.fromtimestamp(t, tz=self.zone))

    def boundaries(self, day: date) -> list[float]:
        """The candidate instants of one local day (see the module docstring), unsorted."""
        out: list[float] = []
        walls = {0, *(m for r in self.minutes or () for m in r if m < 1440)}
        for minute in walls:
            wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.zone)
            out.extend(wall.replace(fold=f).timestamp() for f in (0, 1))
        start = datetime.combine(day, time(0), tzinfo=self.zone).timestamp()
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone).timestamp()
        if _offset(self.zone, start) != _offset(self.zone, end):
            out.append(_offset_change(self.zone, start, end))
        return out


def _day_in(ranges: tuple[tuple[int, int], ...], local: datetime) -> bool:
    """Alertmanager's days_of_month: negatives count from the month's end; a range that
    starts after this month's last day does not hold; the end is clamped to it."""
    days = calendar.monthrange(local.year, local.month)[1]
    for a, b in ranges:
        begin = days + a + 1 if a < 0 else a
        end = days + b + 1 if b < 0 else b
        if begin > days:
            continue
        if max(begin, -days) <= local.day <= min(end, days):
            return True
    return False


def _offset(zone: ZoneInfo, t: float) -> timedelta | None:
    return datetime.fromtimestamp(t, tz=zone).utcoffset()


def _offset_change(zone: ZoneInfo, lo: float, hi: float) -> float:
    """The instant within (lo, hi] where the zone's UTC offset changes (one change a day at
    most), to the second (zones change on whole seconds)."""
    before = _offset(zone, lo)
    while hi - lo > 1:
        mid = (lo + hi) / 2
        if _offset(zone, mid) == before:
            lo = mid
        else:
            hi = mid
    return float(round(hi))


def _ranges(values: Sequence[str] | None, parse: Callable[[str], tuple[int, int]]) -> Ranges:
    return None if values is None else tuple(parse(v) for v in values)


def compile_interval(interval: TimeInterval) -> Compiled:
    minutes = None if interval.times is None else tuple(
        (minute_of_day(r.start_time), minute_of_day(r.end_time)) for r in interval.times)
    return Compiled(ZoneInfo(interval.location), minutes, _ranges(interval.weekdays, weekday_range),
                    _ranges(interval.days_of_month, day_of_month_range), _ranges(interval.months, month_range),
                    _ranges(interval.years, year_range))


def holds(interval: TimeInterval | Compiled, t: float) -> bool:
    """Whether `interval` holds at Unix time `t`."""
    return (interval if isinstance(interval, Compiled) else compile_interval(interval)).holds(t)


def _candidates(intervals: Iterable[Compiled], t: float, days: int) -> list[float]:
    found: set[float] = set()
    for c in intervals:
        first = datetime.fromtimestamp(t, tz=c.zone).date()
        for i in range(days):
            found.update(b for b in c.boundaries(first + timedelta(days=i)) if b > t)
    return sorted(found)


@dataclass(frozen=True)
class Muting:
    """One route's windows: `mute` (mute_during) and `active` (active_during), by name."""

    mute: tuple[tuple[str, tuple[Compiled, ...]], ...] = ()
    active: tuple[tuple[str, tuple[Compiled, ...]], ...] = ()

    @classmethod
    def of(cls, named: Sequence[NamedTimeInterval], mute_during: Sequence[str] | None,
           active_during: Sequence[str] | None) -> Muting:
        """`named` must hold every name (config/load.py checks that); ValueError naming one it lacks."""
        by_name = {n.name: tuple(compile_interval(i) for i in n.time_intervals) for n in named}
        for name in (*(mute_during or ()), *(active_during or ())):
            if name not in by_name:
                raise ValueError(f"time interval {name!r} is not among the {len(by_name)} given")
        return cls(tuple((n, by_name[n]) for n in mute_during or ()),
                   tuple((n, by_name[n]) for n in active_during or ()))

    def __bool__(self) -> bool:
        return bool(self.mute or self.active)

    def muted_by(self, t: float) -> str | None:
        """The window that mutes at `t`: the first `mute_during` name that holds, else the
        first `active_during` name when none of them holds; None when not muted."""
        for name, intervals in self.mute:
            if any(c.holds(t) for c in intervals):
                return name
        if self.active and not any(c.holds(t) for _, intervals in self.active for c in intervals):
            return self.active[0][0]
        return None

    def until(self, t: float, horizon_days: int = HORIZON_DAYS) -> float:
        """When the muting that holds at `t` ends (a muting that lasts past the horizon is
        taken to end there)."""
        found = next_change(lambda x: self.muted_by(x) is not None,
                            [c for _, cs in (*self.mute, *self.active) for c in cs], t, horizon_days)
        return found if found is not None else t + horizon_days * 86400.0


def next_change(predicate: Callable[[float], bool], intervals: Sequence[Compiled], t: float,
                horizon_days: int = HORIZON_DAYS) -> float | None:
    """The first instant after `t` where `predicate` (of a Unix time, built from `intervals`)
    differs from its value at `t`; None within the horizon. Searched a month at a time."""
    now = predicate(t)
    done, start = 0, t
    while done < horizon_days:
        span = min(31, horizon_days - done)
        for c in _candidates(intervals, start, span + 1):
            if predicate(c) != now:
                return c
        start += span * 86400.0
        done += span
    return None
