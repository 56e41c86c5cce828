"""Named time intervals of the config file (`[[time_intervals]]`), Alertmanager's model:
a name and a list of intervals, each of which may give times of day, weekdays, days of the
month, months, years and a location (an IANA time zone). An interval holds at an instant
when every field it gives holds at that instant's local wall time in its location; a named
interval holds when any of its intervals does. Routes refer to them by name
(`mute_during`, `active_during`).

Ranges are inclusive and written `start:end` (`monday:friday`, `1:5`, `-3:-1`, `may:august`,
`2026:2027`); weekdays count from Sunday as Alertmanager does, so a range never wraps
(`saturday:sunday` is refused: write `["saturday", "sunday"]`). Times are `HH:MM` with the end
excluded (`24:00` ends a day). The parsing is here so that a bad value stops start-up; the
evaluation is core/time_intervals.py."""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "MONTHS",
    "WEEKDAYS",
    "NamedTimeInterval",
    "TimeInterval",
    "TimeRange",
    "day_of_month_range",
    "minute_of_day",
    "month_range",
    "weekday_range",
    "year_range",
]

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
"""0 is Sunday, as in Alertmanager (and Go's time.Weekday)."""
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
_TIME = re.compile(r"^(?:([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00))$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def minute_of_day(text: str) -> int:
    """`"08:30"` → 510; `"24:00"` → 1440 (the end of a day)."""
    found = _TIME.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a time of day: use HH:MM, from 00:00 to 24:00")
    hours, minutes = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
    return int(hours) * 60 + int(minutes)


def _ends(value: Any) -> tuple[str, str]:
    text = str(value).strip().lower()
    start, sep, end = text.partition(":")
    return (start.strip(), end.strip()) if sep else (text, text)


def _named(text: str, names: tuple[str, ...], what: str, first: int) -> int:
    if text in names:
        return names.index(text) + first
    if text.lstrip("-").isdigit():
        return int(text)
    raise ValueError(f"{text!r} is not a {what}")


def weekday_range(value: Any) -> tuple[int, int]:
    start, end = (_named(v, WEEKDAYS, "weekday (monday … sunday)", 0) for v in _ends(value))
    if not (0 <= start <= 6 and 0 <= end <= 6):
        raise ValueError(f"{value!r}: a weekday is a name, monday … sunday")
    if start > end:
        raise ValueError(f"{value!r}: a weekday range does not wrap past saturday (weeks start on sunday, as in "
                         "Alertmanager): list the days instead, e.g. [\"saturday\", \"sunday\"]")
    return start, end


def day_of_month_range(value: Any) -> tuple[int, int]:
    start, end = (_named(v, (), "day of the month (1 … 31, or -1 … -31 from the end)", 1) for v in _ends(value))
    for day in (start, end):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(f"{value!r}: a day of the month is 1 … 31, or -1 … -31 counted from its end")
    if start < 0 < end:
        raise ValueError(f"{value!r}: a range that starts from the month's end ends there too (both negative)")
    if (28 + start if start < 0 else start) > (28 + end if end < 0 else end):
        raise ValueError(f"{value!r}: the end day is always before the start day")
    return start, end


def month_range(value: Any) -> tuple[int, int]:
    start, end = (_named(v, MONTHS, "month (january … december, or 1 … 12)", 1) for v in _ends(value))
    if not (1 <= start <= 12 and 1 <= end <= 12):
        raise ValueError(f"{value!r}: a month is january … december, or 1 … 12")
    if start > end:
        raise ValueError(f"{value!r}: the end month is before the start month (a range does not wrap past december)")
    return start, end


def year_range(value: Any) -> tuple[int, int]:
    start, end = (_named(v, (), "year", 1) for v in _ends(value))
    if not (1 <= start <= 9999 and 1 <= end <= 9999):
        raise ValueError(f"{value!r}: a year is 1 … 9999")
    if start > end:
        raise ValueError(f"{value!r}: the end year is before the start year")
    return start, end


def _checked(parse: Any) -> Any:
    def check(values: Any) -> Any:
        if not isinstance(values, list):
            values = [values]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, str | int):
                raise ValueError("each entry is a string like 'a:b' or a single value")
            parse(v)
        return [str(v).strip().lower() for v in values]
    return check


Weekdays = Annotated[list[str], BeforeValidator(_checked(weekday_range))]
DaysOfMonth = Annotated[list[str], BeforeValidator(_checked(day_of_month_range))]
Months = Annotated[list[str], BeforeValidator(_checked(month_range))]
Years = Annotated[list[str], BeforeValidator(_checked(year_range))]


class TimeRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_time: str
    end_time: str

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if minute_of_day(self.start_time) >= minute_of_day(self.end_time):
            raise ValueError("start_time must be before end_time (a range does not cross midnight: give two)")
        return self

    @field_validator("start_time", "end_time")
    @classmethod
    def _time(cls, value: str) -> str:
        minute_of_day(value)
        return value


class TimeInterval(BaseModel):
    """Every given field must hold; a list holds when any of its entries does."""

    model_config = ConfigDict(extra="forbid")

    times: list[TimeRange] | None = None
    weekdays: Weekdays | None = None
    days_of_month: DaysOfMonth | None = None
    months: Months | None = None
    years: Years | None = None
    location: str = Field(default="UTC", description="an IANA time zone, e.g. Europe/Paris")

    @field_validator("location")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value.lower() == "local":
            raise ValueError("'Local' differs between hosts: name the zone (e.g. Europe/Paris, UTC)")
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
            raise ValueError(f"unknown time zone {value[:64]!r} (an IANA name, e.g. Europe/Paris)") from None
        return value


class NamedTimeInterval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME.pattern, description="what routes' mute_during and active_during name")
    time_intervals: list[TimeInterval] = Field(min_length=1)
