"""Durations, send windows and next_send_time, with literal instants only (no clock)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nurtured.timing import (
    ALWAYS,
    SendWindow,
    next_send_time,
    parse_duration,
    parse_timezone,
    parse_window,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
UTC_ZONE = ZoneInfo("UTC")
OFFICE = parse_window("09:00-17:00", ["weekdays"])
NIGHTS = parse_window("02:30-04:00", ["everyday"])
NONE: frozenset[date] = frozenset()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("0h", timedelta(0)),
        ("90s", timedelta(seconds=90)),
        ("45m", timedelta(minutes=45)),
        ("36h", timedelta(hours=36)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 1d 12h ", timedelta(days=1, hours=12)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("30D", timedelta(days=30)),
    ],
)
def test_parse_duration_accepts_units_and_combinations(text: str, expected: timedelta) -> None:
    """Whole numbers with w/d/h/m/s units, combined largest first, whitespace tolerated."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["3 dayz", "", "  ", "-2d", "2", "1.5d", "1h1d", "d", "2d2d"])
def test_parse_duration_rejects_anything_else(text: str) -> None:
    """Unknown units, signs, bare numbers and out-of-order units are not durations."""
    with pytest.raises(ValueError, match="^" + f'"{text}" is not a duration' + "$"):
        parse_duration(text)


def test_parse_window_hours_and_days() -> None:
    """ "09:00-17:00" with day names (any case) gives a window with weekday numbers."""
    window = parse_window("09:00-17:00", ["Mon", "wed", "FRI"])
    assert window == SendWindow(time(9), time(17), frozenset({0, 2, 4}))


@pytest.mark.parametrize(
    ("days", "weekdays"),
    [
        (["weekdays"], {0, 1, 2, 3, 4}),
        (["everyday"], set(range(7))),
        (["weekend"], {5, 6}),
        (["sat", "weekdays"], {0, 1, 2, 3, 4, 5}),
    ],
)
def test_parse_window_day_shorthands(days: list[str], weekdays: set[int]) -> None:
    """ "weekdays", "weekend" and "everyday" expand and combine with day names."""
    assert parse_window("09:00-17:00", days).weekdays == frozenset(weekdays)


def test_whole_day_window_ends_at_midnight() -> None:
    """ "00:00-24:00" is the whole day: its end is time.max, and it equals ALWAYS on all days."""
    window = parse_window("00:00-24:00", ["everyday"])
    assert window == ALWAYS
    assert window.contains(datetime(2026, 1, 1, 23, 59, 59))


@pytest.mark.parametrize(
    ("hours", "days", "reason"),
    [
        ("9-5", ["mon"], '"9-5" is not a time range like "09:00-17:00"'),
        ("09:00", ["mon"], '"09:00" is not a time range like "09:00-17:00"'),
        ("25:00-26:00", ["mon"], '"25:00-26:00" is not a time range like "09:00-17:00"'),
        ("09:00-24:30", ["mon"], '"09:00-24:30" is not a time range like "09:00-17:00"'),
        ("17:00-09:00", ["mon"], '"17:00-09:00" ends before it starts'),
        ("09:00-09:00", ["mon"], '"09:00-09:00" ends before it starts'),
        ("09:00-17:00", ["funday"], '"funday" is not a day: use mon, tue, wed, thu, fri, sat, '),
        ("09:00-17:00", [], "no days given: emails could never be sent"),
    ],
)
def test_parse_window_rejects_bad_hours_and_days(hours: str, days: list[str], reason: str) -> None:
    """Malformed or reversed hours and unknown or missing days say what is wrong."""
    with pytest.raises(ValueError, match="^" + re.escape(reason)):
        parse_window(hours, days)


def test_parse_timezone() -> None:
    """IANA names become ZoneInfo; anything else is a ValueError naming the text."""
    assert parse_timezone("Asia/Tokyo") == TOKYO
    for bad in ("Mars/Olympus", "", "../etc/passwd", " UTC", "Europe"):
        with pytest.raises(ValueError, match=f'^"{bad}" is not a time zone$'):
            parse_timezone(bad)


def test_inside_window_is_returned_unchanged() -> None:
    """An instant already inside the window is returned as it is."""
    earliest = utc(2026, 6, 3, 10, 17, 5)  # Wednesday 12:17 in Berlin
    assert next_send_time(earliest, OFFICE, BERLIN, NONE) == earliest


def test_before_start_moves_to_that_days_start() -> None:
    """Before the window on an allowed day: that day's start, on the local clock."""
    earliest = utc(2026, 6, 3, 4, 0)  # Wednesday 06:00 in Berlin (CEST, UTC+2)
    assert next_send_time(earliest, OFFICE, BERLIN, NONE) == utc(2026, 6, 3, 7, 0)


def test_after_end_moves_to_next_days_start() -> None:
    """At or after the window's end: the next allowed day's start."""
    earliest = utc(2026, 6, 3, 15, 0)  # Wednesday 17:00 in Berlin: the end is exclusive
    assert next_send_time(earliest, OFFICE, BERLIN, NONE) == utc(2026, 6, 4, 7, 0)


def test_weekend_moves_to_monday() -> None:
    """Friday evening and the weekend wait for Monday's start."""
    friday_evening = utc(2026, 6, 5, 18, 0)
    saturday = utc(2026, 6, 6, 10, 0)
    for earliest in (friday_evening, saturday):
        assert next_send_time(earliest, OFFICE, BERLIN, NONE) == utc(2026, 6, 8, 7, 0)


def test_holidays_are_local_dates_and_skipped() -> None:
    """Holidays are dates on the local calendar: 23:30 UTC on the 23rd is the 24th in Berlin."""
    holidays = frozenset({date(2026, 12, 24), date(2026, 12, 25)})
    earliest = utc(2026, 12, 23, 23, 30)  # Thursday 24 Dec, 00:30 in Berlin
    # 24 and 25 are holidays, 26/27 the weekend: Monday 28 Dec 09:00 CET.
    assert next_send_time(earliest, OFFICE, BERLIN, holidays) == utc(2026, 12, 28, 8, 0)
    inside = utc(2026, 12, 24, 10, 0)  # would be inside the window but for the holiday
    assert next_send_time(inside, OFFICE, BERLIN, holidays) == utc(2026, 12, 28, 8, 0)


def test_office_hours_follow_the_dst_change() -> None:
    """09:00 Berlin is 08:00 UTC before the spring change and 07:00 UTC after it."""
    friday_evening = utc(2026, 3, 27, 17, 0)
    assert next_send_time(friday_evening, OFFICE, BERLIN, NONE) == utc(2026, 3, 30, 7, 0)
    assert next_send_time(utc(2026, 3, 26, 6, 0), OFFICE, BERLIN, NONE) == utc(2026, 3, 26, 8, 0)


def test_berlin_spring_forward_start_in_gap_maps_to_end_of_gap() -> None:
    """02:30 does not exist on 29 Mar 2026 in Berlin: the window opens at 03:00 CEST."""
    earliest = utc(2026, 3, 29, 0, 0)  # 01:00 CET
    assert next_send_time(earliest, NIGHTS, BERLIN, NONE) == utc(2026, 3, 29, 1, 0)
    assert utc(2026, 3, 29, 1, 0).astimezone(BERLIN).time() == time(3, 0)


def test_berlin_window_entirely_in_gap_skips_that_day() -> None:
    """A window inside the skipped hour cannot open that day: the next day's start."""
    window = parse_window("02:15-02:45", ["everyday"])
    earliest = utc(2026, 3, 29, 0, 0)
    assert next_send_time(earliest, window, BERLIN, NONE) == utc(2026, 3, 30, 0, 15)


def test_berlin_fall_back_takes_first_occurrence() -> None:
    """02:30 happens twice on 25 Oct 2026 in Berlin: the first (CEST, 00:30 UTC) is taken."""
    earliest = utc(2026, 10, 24, 22, 0)  # 00:00 CEST
    assert next_send_time(earliest, NIGHTS, BERLIN, NONE) == utc(2026, 10, 25, 0, 30)


def test_new_york_spring_forward() -> None:
    """02:15 does not exist on 8 Mar 2026 in New York: the window opens at 03:00 EDT."""
    window = parse_window("02:15-05:00", ["everyday"])
    earliest = utc(2026, 3, 8, 5, 0)  # 00:00 EST
    assert next_send_time(earliest, window, NEW_YORK, NONE) == utc(2026, 3, 8, 7, 0)


def test_new_york_fall_back_never_before_earliest() -> None:
    """On 1 Nov 2026 01:30 happens twice: the first, unless earliest is past it, then the second."""
    window = parse_window("01:30-01:45", ["everyday"])
    before = utc(2026, 11, 1, 4, 0)  # 00:00 EDT
    assert next_send_time(before, window, NEW_YORK, NONE) == utc(2026, 11, 1, 5, 30)
    between = utc(2026, 11, 1, 6, 10)  # 01:10 EST, after the first 01:30 EDT
    assert next_send_time(between, window, NEW_YORK, NONE) == utc(2026, 11, 1, 6, 30)


def test_same_instant_differs_for_tokyo_and_utc_leads() -> None:
    """03:00 UTC is lunchtime in Tokyo (sent now) but before office hours in UTC."""
    earliest = utc(2026, 6, 1, 3, 0)  # Monday
    assert next_send_time(earliest, OFFICE, TOKYO, NONE) == earliest
    assert next_send_time(earliest, OFFICE, UTC_ZONE, NONE) == utc(2026, 6, 1, 9, 0)
    friday = utc(2026, 6, 5, 10, 0)  # 19:00 Friday in Tokyo
    assert next_send_time(friday, OFFICE, TOKYO, NONE) == utc(2026, 6, 8, 0, 0)
    assert next_send_time(friday, OFFICE, UTC_ZONE, NONE) == friday


def test_always_window_never_moves_anything() -> None:
    """ALWAYS is open every day, all day."""
    earliest = utc(2026, 6, 6, 23, 59, 59)
    assert next_send_time(earliest, ALWAYS, TOKYO, NONE) == earliest


def test_impossible_windows_raise() -> None:
    """No allowed day, a year of holidays or a naive datetime is a ValueError, not a hang."""
    empty = SendWindow(time(9), time(17), frozenset())
    with pytest.raises(ValueError, match="no days"):
        next_send_time(utc(2026, 1, 1), empty, BERLIN, NONE)
    year = frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(500))
    with pytest.raises(ValueError, match="no day in the 400 days"):
        next_send_time(utc(2026, 1, 1), OFFICE, BERLIN, year)
    with pytest.raises(ValueError, match="aware"):
        next_send_time(datetime(2026, 1, 1), OFFICE, BERLIN, NONE)


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Apia",
]


@st.composite
def windows(draw: st.DrawFn) -> SendWindow:
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(start + 1, 24 * 60))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    end_time = time.max if end == 24 * 60 else time(end // 60, end % 60)
    return SendWindow(time(start // 60, start % 60), end_time, days)


@settings(max_examples=300, deadline=None, database=None)
@given(
    earliest=st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31), timezones=st.just(UTC)),
    window=windows(),
    zone=st.sampled_from(ZONES),
    holiday_offsets=st.frozensets(st.integers(-2, 30), max_size=10),
)
def test_result_is_never_early_and_always_inside(
    earliest: datetime, window: SendWindow, zone: str, holiday_offsets: frozenset[int]
) -> None:
    """For any instant, window, zone and holidays: result >= earliest and inside the window."""
    tz = ZoneInfo(zone)
    first = earliest.astimezone(tz).date()
    holidays = frozenset(first + timedelta(days=n) for n in holiday_offsets)
    result = next_send_time(earliest, window, tz, holidays)
    local = result.astimezone(tz)
    assert result >= earliest
    assert result.utcoffset() == timedelta(0)
    assert window.contains(local)
    assert local.date() not in holidays
    start = earliest.astimezone(tz)
    if start.date() not in holidays and window.contains(start):
        assert result == earliest
