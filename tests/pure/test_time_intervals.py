"""Maintenance windows' time intervals (model/time_intervals.py, core/time_intervals.py) with
plain datetimes: Alertmanager's fields one by one, daylight-saving edges, and when a route's
muting ends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from core.time_intervals import Muting, compile_interval, holds, next_change
from model.time_intervals import NamedTimeInterval, TimeInterval

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def interval(**fields: Any) -> TimeInterval:
    return TimeInterval.model_validate(fields)


def at(*args: int, tz: ZoneInfo | None = None, fold: int = 0) -> float:
    return datetime(*args, tzinfo=tz or UTC, fold=fold).timestamp()  # type: ignore[misc]


def local(t: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t, tz=tz)


def test_times_of_day_include_the_start_and_exclude_the_end() -> None:
    night = interval(times=[{"start_time": "22:00", "end_time": "24:00"}, {"start_time": "00:00",
                                                                           "end_time": "06:00"}])
    assert holds(night, at(2026, 5, 4, 22, 0)) and holds(night, at(2026, 5, 4, 23, 59, 59))
    assert holds(night, at(2026, 5, 5, 0, 0)) and holds(night, at(2026, 5, 5, 5, 59))
    assert not holds(night, at(2026, 5, 5, 6, 0)) and not holds(night, at(2026, 5, 4, 21, 59))


def test_weekdays_count_from_sunday_and_ranges_are_inclusive() -> None:
    weekdays = interval(weekdays=["monday:friday"])
    assert holds(weekdays, at(2026, 5, 4, 12))  # a Monday
    assert holds(weekdays, at(2026, 5, 8, 23, 59))  # Friday
    assert not holds(weekdays, at(2026, 5, 9, 0, 0))  # Saturday
    weekend = interval(weekdays=["Saturday", "sunday"])
    assert holds(weekend, at(2026, 5, 10, 8)) and not holds(weekend, at(2026, 5, 11, 8))


def test_days_of_month_count_back_from_the_end_with_negatives() -> None:
    last_three = interval(days_of_month=["-3:-1"])
    assert holds(last_three, at(2026, 2, 26)) and holds(last_three, at(2026, 2, 28))
    assert not holds(last_three, at(2026, 2, 25)) and holds(last_three, at(2028, 2, 27))  # leap: 27–29
    assert not holds(last_three, at(2028, 2, 26))
    assert holds(last_three, at(2026, 1, 29)) and not holds(last_three, at(2026, 1, 28))
    first = interval(days_of_month=["1:5", 15])
    assert holds(first, at(2026, 3, 5)) and holds(first, at(2026, 3, 15)) and not holds(first, at(2026, 3, 6))
    past_the_end = interval(days_of_month=["31"])
    assert not holds(past_the_end, at(2026, 4, 30))  # April has no 31st: it does not hold


def test_months_and_years_by_name_number_or_range() -> None:
    summer = interval(months=["may:august"], years=["2026:2027"])
    assert holds(summer, at(2026, 5, 1)) and holds(summer, at(2027, 8, 31, 23))
    assert not holds(summer, at(2026, 9, 1)) and not holds(summer, at(2028, 6, 1))
    assert holds(interval(months=[1, "3:4"]), at(2026, 4, 2)) and not holds(interval(months=[1, "3:4"]),
                                                                             at(2026, 2, 2))


def test_location_is_the_wall_clock_of_its_zone() -> None:
    mornings = interval(times=[{"start_time": "08:00", "end_time": "09:00"}], location="Europe/Paris")
    assert holds(mornings, at(2026, 1, 5, 7, 30))  # 08:30 in Paris (UTC+1)
    assert holds(mornings, at(2026, 7, 6, 6, 30))  # 08:30 in Paris (UTC+2)
    assert not holds(mornings, at(2026, 7, 6, 7, 30))
    new_year = interval(days_of_month=[1], months=["january"], location="America/New_York")
    assert not holds(new_year, at(2026, 1, 1, 3))  # still Dec 31 in New York
    assert holds(new_year, at(2026, 1, 1, 12))


def test_a_skipped_hour_never_holds_and_a_repeated_hour_holds_twice() -> None:
    skipped = compile_interval(interval(times=[{"start_time": "02:00", "end_time": "03:00"}],
                                        location="Europe/Paris"))
    night = datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp()  # 01:30 CET, the clocks go 02:00 → 03:00
    assert not any(skipped.holds(night + m * 60) for m in range(0, 180))
    repeated = compile_interval(interval(times=[{"start_time": "02:00", "end_time": "03:00"}],
                                         location="Europe/Paris"))
    first = at(2026, 10, 25, 2, 0, tz=PARIS, fold=0)  # 02:00 CEST, the clocks go 03:00 → 02:00
    minutes = sum(repeated.holds(first + m * 60) for m in range(0, 180))
    assert minutes == 120


def test_next_change_finds_the_boundary_exactly_across_daylight_saving() -> None:
    early = compile_interval(interval(times=[{"start_time": "02:30", "end_time": "04:00"}],
                                      location="Europe/Paris"))
    saturday = at(2026, 3, 28, 12, 0, tz=PARIS)
    begins = next_change(early.holds, [early], saturday)
    assert begins is not None
    assert local(begins, PARIS) == datetime(2026, 3, 29, 3, 0, tzinfo=PARIS)  # the gap: it starts when 03:00 is
    ends = next_change(early.holds, [early], begins)
    assert ends is not None and local(ends, PARIS) == datetime(2026, 3, 29, 4, 0, tzinfo=PARIS)
    autumn = compile_interval(interval(times=[{"start_time": "01:30", "end_time": "02:15"}],
                                       location="America/New_York"))
    t = at(2026, 11, 1, 0, 0, tz=NEW_YORK)
    edges = []
    for _ in range(4):
        found = next_change(autumn.holds, [autumn], t)
        assert found is not None
        edges.append(local(found, NEW_YORK).strftime("%H:%M %Z"))
        t = found
    # in at 01:30 EDT; out when the clocks go back to 01:00 EST; in again at 01:30 EST; out at 02:15
    assert edges == ["01:30 EDT", "01:00 EST", "01:30 EST", "02:15 EST"]


def test_next_change_is_exact_for_many_instants() -> None:
    weekend_nights = compile_interval(interval(weekdays=["saturday", "sunday"],
                                               times=[{"start_time": "01:00", "end_time": "05:00"}],
                                               location="Europe/Paris"))
    t = at(2026, 3, 20, 9, 17)
    for _ in range(12):
        found = next_change(weekend_nights.holds, [weekend_nights], t)
        assert found is not None
        before = weekend_nights.holds(t)
        assert weekend_nights.holds(found) != before
        step = 60.0
        assert all(weekend_nights.holds(x) == before for x in _grid(t, found - 1, step))  # nothing in between
        t = found


def _grid(start: float, end: float, step: float) -> list[float]:
    out, x = [], start
    while x < end:
        out.append(x)
        x += step
    return [*out, end]


def windows(**named: list[dict[str, Any]]) -> list[NamedTimeInterval]:
    return [NamedTimeInterval.model_validate({"name": n, "time_intervals": ti}) for n, ti in named.items()]


def test_a_route_is_muted_during_mute_windows_and_outside_active_ones() -> None:
    named = windows(maintenance=[{"weekdays": ["sunday"], "times": [{"start_time": "02:00", "end_time": "04:00"}]}],
                    business=[{"weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "17:00"}]}])
    mute = Muting.of(named, ["maintenance"], None)
    sunday = at(2026, 5, 10, 2, 30)
    assert mute.muted_by(sunday) == "maintenance" and mute.muted_by(sunday + 7200) is None
    assert mute.until(sunday) == at(2026, 5, 10, 4, 0)
    office = Muting.of(named, None, ["business"])
    assert office.muted_by(at(2026, 5, 11, 8, 0)) == "business"  # Monday before nine: muted
    assert office.muted_by(at(2026, 5, 11, 9, 0)) is None
    assert office.until(at(2026, 5, 8, 18, 0)) == at(2026, 5, 11, 9, 0)  # Friday evening until Monday nine
    assert not Muting.of(named, None, None) and Muting.of(named, [], ["business"])


def test_a_muting_that_never_ends_is_taken_to_end_at_the_horizon() -> None:
    always = Muting.of(windows(always=[{}]), ["always"], None)
    t = at(2026, 5, 10)
    assert always.until(t, horizon_days=40) == t + 40 * 86400


@pytest.mark.parametrize(("fields", "problem"), [
    ({"weekdays": ["saturday:sunday"]}, "does not wrap"),
    ({"weekdays": ["funday"]}, "not a weekday"),
    ({"times": [{"start_time": "10:00", "end_time": "09:00"}]}, "start_time must be before end_time"),
    ({"times": [{"start_time": "9:00", "end_time": "10:00"}]}, "not a time of day"),
    ({"times": [{"start_time": "23:00", "end_time": "24:01"}]}, "not a time of day"),
    ({"days_of_month": ["0"]}, "1 … 31"),
    ({"days_of_month": ["-1:5"]}, "both negative"),
    ({"days_of_month": ["10:2"]}, "always before"),
    ({"months": ["smarch"]}, "not a month"),
    ({"months": ["december:january"]}, "does not wrap"),
    ({"years": ["2027:2026"]}, "before the start year"),
    ({"location": "Local"}, "differs between hosts"),
    ({"location": "Mars/Olympus"}, "unknown time zone"),
    ({"location": "Europe"}, "unknown time zone"),  # a directory of zones: IsADirectoryError
    ({"hours": ["1"]}, "Extra inputs"),
])
def test_bad_intervals_are_refused_naming_the_problem(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as err:
        interval(**fields)
    assert problem in str(err.value)


def test_a_named_interval_needs_a_name_and_at_least_one_interval() -> None:
    with pytest.raises(ValidationError):
        NamedTimeInterval.model_validate({"name": "x", "time_intervals": []})
    with pytest.raises(ValidationError):
        NamedTimeInterval.model_validate({"name": "has space", "time_intervals": [{}]})
    assert NamedTimeInterval.model_validate({"name": "weekend-maintenance", "time_intervals": [{}]})


def test_a_muting_years_away_ends_when_its_year_comes() -> None:
    waiting = Muting.of(windows(y=[{"years": ["2028"]}]), None, ["y"])
    assert waiting.until(at(2026, 5, 10)) == at(2028, 1, 1)


def test_a_muting_of_an_interval_not_given_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="time interval 'weekend' is not among the 0 given"):
        Muting.of([], ["weekend"], None)
