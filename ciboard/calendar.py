"""The school-year calendar: school years, Monday-starting weeks, months and assessment windows,
and the demo district's year: its breaks, closures, testing windows and program dates."""

import re
from dataclasses import dataclass
from datetime import date, timedelta

from ciboard.settings import Settings

WINDOWS = ("fall", "winter", "spring")


@dataclass(frozen=True)
class SchoolYear:
    name: str
    starts_on: date
    ends_on: date


def parse_school_year(name: str, start_month: int) -> SchoolYear:
    match = re.fullmatch(r"(\d{4})-(\d{2})", name.strip())
    if not match or (int(match[1]) + 1) % 100 != int(match[2]):
        raise ValueError(f"school year {name!r} is not of the form 2025-26")
    first = int(match[1])
    starts_on = date(first, start_month, 1)
    ends_on = date(first + 1, start_month, 1) - timedelta(days=1)
    return SchoolYear(f"{first}-{str(first + 1)[-2:]}", starts_on, ends_on)


def school_year_of(day: date, start_month: int) -> str:
    first = day.year if day.month >= start_month else day.year - 1
    return f"{first}-{str(first + 1)[-2:]}"


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def window_of(day: date, settings: Settings) -> str:
    """The assessment window a date falls in; a window runs from its start month to the next one's."""
    year_start = settings.school_year_start_month
    # Months are counted from the school year's first month, so that a December winter
    # window sorts after an August fall window and before a March spring window.
    offsets = {
        "fall": (settings.fall_window_start_month - year_start) % 12,
        "winter": (settings.winter_window_start_month - year_start) % 12,
        "spring": (settings.spring_window_start_month - year_start) % 12,
    }
    position = (day.month - year_start) % 12
    current = min(offsets, key=offsets.get)
    for name in sorted(offsets, key=offsets.get):
        if position >= offsets[name]:
            current = name
    return current


def weeks(year: SchoolYear, settings: Settings) -> list[dict]:
    """One row per Monday in the school year; week 1 is the first Monday on or after its start."""
    first_monday = year.starts_on + timedelta(days=(7 - year.starts_on.weekday()) % 7)
    rows = []
    day = first_monday
    window_starts: dict[str, date] = {}
    number = 1
    while day <= year.ends_on:
        window = window_of(day, settings)
        window_starts.setdefault(window, day)
        rows.append(
            {
                "week_start": day,
                "school_year": year.name,
                "week_of_year": number,
                "month_start": day.replace(day=1),
                "window_name": window,
                "window_start": window_starts[window],
            }
        )
        day += timedelta(days=7)
        number += 1
    return rows


@dataclass(frozen=True)
class Calendar:
    """The demo school year's dates; everything else is derived from these."""

    school_year: str
    first_school_day: date
    last_school_day: date
    program_start: date
    program_end: date
    winter_break: tuple[date, date]
    spring_break: tuple[date, date]
    thanksgiving: tuple[date, date]
    snow_days: tuple[date, ...]
    holidays: tuple[date, ...]
    program_change_v1: date
    windows: dict[str, date]  # first day of each two-week testing window


def calendar_for(school_year: str) -> Calendar:
    first = int(school_year[:4])

    def monday_on_or_after(day: date) -> date:
        return day + timedelta(days=(7 - day.weekday()) % 7)

    winter = monday_on_or_after(date(first, 12, 20))
    spring = monday_on_or_after(date(first + 1, 3, 27))
    thanksgiving = date(first, 11, 22) + timedelta(days=(3 - date(first, 11, 22).weekday()) % 7)
    return Calendar(
        school_year=school_year,
        first_school_day=monday_on_or_after(date(first, 8, 22)),
        last_school_day=monday_on_or_after(date(first + 1, 6, 1)) + timedelta(days=4),
        program_start=monday_on_or_after(date(first, 9, 13)),
        program_end=monday_on_or_after(date(first + 1, 5, 16)) + timedelta(days=4),
        winter_break=(winter, winter + timedelta(days=11)),
        spring_break=(spring, spring + timedelta(days=4)),
        thanksgiving=(thanksgiving - timedelta(days=1), thanksgiving + timedelta(days=1)),
        snow_days=(
            monday_on_or_after(date(first + 1, 1, 24)) + timedelta(days=1),
            monday_on_or_after(date(first + 1, 2, 7)) + timedelta(days=1),
        ),
        holidays=(
            monday_on_or_after(date(first, 9, 1)),
            monday_on_or_after(date(first + 1, 1, 15)),
            monday_on_or_after(date(first + 1, 2, 15)),
            monday_on_or_after(date(first + 1, 5, 25)),
        ),
        program_change_v1=monday_on_or_after(date(first + 1, 1, 10)),
        windows={
            "fall": monday_on_or_after(date(first, 9, 20)),
            "winter": monday_on_or_after(date(first + 1, 1, 24)) + timedelta(days=7),
            "spring": monday_on_or_after(date(first + 1, 5, 2)),
        },
    )


def school_closed(cal: Calendar, day: date) -> bool:
    return (
        day.weekday() >= 5
        or cal.winter_break[0] <= day <= cal.winter_break[1]
        or cal.spring_break[0] <= day <= cal.spring_break[1]
        or cal.thanksgiving[0] <= day <= cal.thanksgiving[1]
        or day in cal.snow_days
        or day in cal.holidays
    )
