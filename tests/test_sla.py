"""Working-hours arithmetic for SLA deadlines, with literal instants only (no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nurtured.sales.sla import WorkCalendar, add_working_hours, sla_state, working_time_between

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = frozenset(range(5))
NINE_TO_FIVE = (time(9), time(17))
NO_HOLIDAYS: frozenset[date] = frozenset()
OFFICE = WorkCalendar(NINE_TO_FIVE, WEEKDAYS, NO_HOLIDAYS, BERLIN)
OFFICE_NY = WorkCalendar(NINE_TO_FIVE, WEEKDAYS, NO_HOLIDAYS, NEW_YORK)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def test_24_hours_from_friday_afternoon_end_on_wednesday() -> None:
    """Fri 15:00 + 24h: Fri 2h, Mon 8h, Tue 8h, Wed 6h -> Wed 15:00."""
    assert add_working_hours(berlin(2026, 3, 6, 15), 24, OFFICE) == berlin(2026, 3, 11, 15)


def test_result_is_in_the_calendar_zone_whatever_the_start_zone() -> None:
    """A UTC start gives a local result at the same instant as a local start would."""
    start = berlin(2026, 3, 6, 15).astimezone(UTC)
    result = add_working_hours(start, 24, OFFICE)
    assert result.tzinfo is BERLIN
    assert (result.hour, result.day) == (15, 11)


def test_hours_within_one_day() -> None:
    """Mon 10:00 + 3h is Mon 13:00; a timedelta works like a float."""
    assert add_working_hours(berlin(2026, 3, 9, 10), 3, OFFICE) == berlin(2026, 3, 9, 13)
    assert add_working_hours(
        berlin(2026, 3, 9, 10), timedelta(hours=1, minutes=30), OFFICE
    ) == berlin(2026, 3, 9, 11, 30)


def test_exactly_to_closing_stays_on_the_day() -> None:
    """Fri 15:00 + 2h is Fri 17:00, not Monday 09:00."""
    assert add_working_hours(berlin(2026, 3, 6, 15), 2, OFFICE) == berlin(2026, 3, 6, 17)


def test_start_at_closing_counts_from_next_opening() -> None:
    """Fri 17:00 + 1h is Mon 10:00."""
    assert add_working_hours(berlin(2026, 3, 6, 17), 1, OFFICE) == berlin(2026, 3, 9, 10)


def test_start_at_night_counts_from_the_morning() -> None:
    """Tue 02:30 + 4h is Tue 13:00; Mon 22:00 + 8h is Tue 17:00."""
    assert add_working_hours(berlin(2026, 3, 10, 2, 30), 4, OFFICE) == berlin(2026, 3, 10, 13)
    assert add_working_hours(berlin(2026, 3, 9, 22), 8, OFFICE) == berlin(2026, 3, 10, 17)


def test_start_before_opening_counts_from_opening() -> None:
    """Mon 07:15 + 0.5h is Mon 09:30."""
    assert add_working_hours(berlin(2026, 3, 9, 7, 15), 0.5, OFFICE) == berlin(2026, 3, 9, 9, 30)


def test_start_on_sunday_counts_from_monday() -> None:
    """Sun 11:00 + 10h is Tue 11:00."""
    assert add_working_hours(berlin(2026, 3, 8, 11), 10, OFFICE) == berlin(2026, 3, 10, 11)


def test_zero_hours_outside_working_time_is_the_next_opening() -> None:
    """Sat 12:00 + 0h is Mon 09:00; Mon 12:00 + 0h is Mon 12:00."""
    assert add_working_hours(berlin(2026, 3, 7, 12), 0, OFFICE) == berlin(2026, 3, 9, 9)
    assert add_working_hours(berlin(2026, 3, 9, 12), 0, OFFICE) == berlin(2026, 3, 9, 12)


def test_holiday_is_skipped() -> None:
    """Thu 16:00 + 2h with Good Friday off is Mon 10:00 (Easter Monday a working day here)."""
    cal = WorkCalendar(NINE_TO_FIVE, WEEKDAYS, frozenset({date(2026, 4, 3)}), BERLIN)
    assert add_working_hours(berlin(2026, 4, 2, 16), 2, cal) == berlin(2026, 4, 6, 10)
    assert add_working_hours(berlin(2026, 4, 2, 16), 2, OFFICE) == berlin(2026, 4, 3, 10)


def test_consecutive_holidays_and_start_on_a_holiday() -> None:
    """Christmas Eve to Boxing Day off: a start on 24 Dec counts from 28 Dec."""
    off = frozenset({date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)})
    cal = WorkCalendar(NINE_TO_FIVE, WEEKDAYS, off, BERLIN)
    assert add_working_hours(berlin(2026, 12, 24, 10), 1, cal) == berlin(2026, 12, 28, 10)


def test_other_weekdays_and_hours() -> None:
    """Sun-Thu 08:00-16:00: Thu 15:00 + 2h is Sun 09:00."""
    cal = WorkCalendar((time(8), time(16)), frozenset({6, 0, 1, 2, 3}), NO_HOLIDAYS, BERLIN)
    assert add_working_hours(berlin(2026, 3, 5, 15), 2, cal) == berlin(2026, 3, 8, 9)


def test_across_spring_forward_in_berlin() -> None:
    """Fri 27 Mar 2026 16:00 + 2h is Mon 30 Mar 10:00 local (CEST), 08:00 UTC."""
    result = add_working_hours(berlin(2026, 3, 27, 16), 2, OFFICE)
    assert result == berlin(2026, 3, 30, 10)
    assert result.astimezone(UTC) == datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_across_fall_back_in_berlin() -> None:
    """Fri 23 Oct 2026 16:00 + 2h is Mon 26 Oct 10:00 local (CET), 09:00 UTC."""
    result = add_working_hours(berlin(2026, 10, 23, 16), 2, OFFICE)
    assert result.astimezone(UTC) == datetime(2026, 10, 26, 9, tzinfo=UTC)


def test_across_spring_forward_in_new_york() -> None:
    """Fri 6 Mar 2026 16:00 EST + 2h is Mon 9 Mar 10:00 EDT (14:00 UTC)."""
    result = add_working_hours(ny(2026, 3, 6, 16), 2, OFFICE_NY)
    assert result == ny(2026, 3, 9, 10)
    assert result.astimezone(UTC) == datetime(2026, 3, 9, 14, tzinfo=UTC)


def test_across_fall_back_in_new_york() -> None:
    """Fri 30 Oct 2026 16:00 EDT + 10h: Fri 1h, Mon 8h, Tue 1h -> Tue 10:00 EST (15:00 UTC)."""
    result = add_working_hours(ny(2026, 10, 30, 16), 10, OFFICE_NY)
    assert result == ny(2026, 11, 3, 10)
    assert result.astimezone(UTC) == datetime(2026, 11, 3, 15, tzinfo=UTC)


def test_dst_change_inside_the_opening_hours_counts_real_time() -> None:
    """Open 01:00-05:00 every day: on the Berlin spring-forward night only 3h pass."""
    cal = WorkCalendar((time(1), time(5)), frozenset(range(7)), NO_HOLIDAYS, BERLIN)
    night = date(2026, 3, 29)
    assert working_time_between(berlin(2026, 3, 29, 0), berlin(2026, 3, 29, 6), cal) == (
        timedelta(hours=3)
    )
    assert add_working_hours(berlin(2026, 3, 29, 1), 3, cal) == datetime.combine(
        night, time(5), tzinfo=BERLIN
    )


def test_working_time_between_over_a_weekend() -> None:
    """Fri 15:00 to Wed 15:00 is 24h; Sat to Sun is nothing."""
    assert working_time_between(berlin(2026, 3, 6, 15), berlin(2026, 3, 11, 15), OFFICE) == (
        timedelta(hours=24)
    )
    assert working_time_between(berlin(2026, 3, 7, 8), berlin(2026, 3, 8, 20), OFFICE) == (
        timedelta(0)
    )


def test_working_time_between_is_negative_backwards() -> None:
    """From Tue 11:00 back to Mon 16:00 is minus 3h."""
    assert working_time_between(berlin(2026, 3, 10, 11), berlin(2026, 3, 9, 16), OFFICE) == (
        -timedelta(hours=3)
    )


def test_working_time_between_mixed_zones() -> None:
    """Instants in other zones are compared as instants: 08:00 UTC is 09:00 in Berlin."""
    a = datetime(2026, 3, 9, 8, tzinfo=UTC)
    assert working_time_between(a, berlin(2026, 3, 9, 12), OFFICE) == timedelta(hours=3)


def test_sla_states() -> None:
    """ok with more than remind_before working time left, due_soon with less, overdue after."""
    handed = berlin(2026, 3, 6, 15)
    deadline = add_working_hours(handed, 8, OFFICE)  # Mon 15:00
    remind = timedelta(hours=2)
    assert sla_state(handed, berlin(2026, 3, 9, 12), deadline, remind, OFFICE) == "ok"
    assert sla_state(handed, berlin(2026, 3, 9, 13, 30), deadline, remind, OFFICE) == "due_soon"
    assert sla_state(handed, deadline, deadline, remind, OFFICE) == "overdue"
    assert sla_state(handed, berlin(2026, 3, 10, 9), deadline, remind, OFFICE) == "overdue"


def test_due_soon_counts_working_time_not_clock_time() -> None:
    """Fri 18:00 with a Mon 10:00 deadline has 1 working hour left: due_soon over the weekend."""
    handed = berlin(2026, 3, 5, 10)
    deadline = berlin(2026, 3, 9, 10)
    remind = timedelta(hours=2)
    assert sla_state(handed, berlin(2026, 3, 6, 18), deadline, remind, OFFICE) == "due_soon"
    assert sla_state(handed, berlin(2026, 3, 6, 14), deadline, remind, OFFICE) == "ok"


def test_sla_state_rejects_a_deadline_before_the_handoff() -> None:
    """A deadline before the handoff is a caller's bug, not a state."""
    with pytest.raises(ValueError, match="before the handoff"):
        sla_state(
            berlin(2026, 3, 9, 12),
            berlin(2026, 3, 9, 12),
            berlin(2026, 3, 9, 11),
            timedelta(hours=1),
            OFFICE,
        )


def test_naive_instants_and_negative_hours_are_rejected() -> None:
    """A naive datetime has no instant; negative hours are no deadline."""
    with pytest.raises(ValueError, match="no time zone"):
        add_working_hours(datetime(2026, 3, 9, 12), 1, OFFICE)
    with pytest.raises(ValueError, match="negative"):
        add_working_hours(berlin(2026, 3, 9, 12), -1, OFFICE)
    with pytest.raises(ValueError, match="no time zone"):
        working_time_between(datetime(2026, 3, 9, 12), berlin(2026, 3, 9, 13), OFFICE)


@pytest.mark.parametrize(
    ("hours", "days", "message"),
    [
        ((time(17), time(9)), WEEKDAYS, "is not before"),
        ((time(9), time(9)), WEEKDAYS, "is not before"),
        (NINE_TO_FIVE, frozenset(), "not a set of 0-6"),
        (NINE_TO_FIVE, frozenset({7}), "not a set of 0-6"),
    ],
)
def test_calendar_rejects_bad_settings(
    hours: tuple[time, time], days: frozenset[int], message: str
) -> None:
    """Overnight hours, no working days or a weekday 7 are refused when the calendar is made."""
    with pytest.raises(ValueError, match=message):
        WorkCalendar(hours, days, NO_HOLIDAYS, BERLIN)


def test_calendar_without_any_working_day_in_reach_fails_loudly() -> None:
    """Holidays covering every weekday for ten years raise instead of looping forever."""
    cal = WorkCalendar(
        NINE_TO_FIVE,
        frozenset({0}),
        frozenset(date(2026, 1, 5) + timedelta(weeks=n) for n in range(600)),
        BERLIN,
    )
    with pytest.raises(ValueError, match="no working day"):
        add_working_hours(berlin(2026, 1, 1), 1, cal)


ZONES = st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC")])
STARTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=ZONES
)
HOURS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=300))
CALENDARS = st.builds(
    WorkCalendar,
    st.sampled_from(
        [NINE_TO_FIVE, (time(8, 30), time(12)), (time(0), time(23, 59)), (time(1), time(4))]
    ),
    st.frozensets(st.integers(0, 6), min_size=1),
    st.frozensets(st.dates(date(2025, 1, 1), date(2029, 12, 31)), max_size=20),
    st.sampled_from([BERLIN, NEW_YORK]),
)


@given(STARTS, HOURS, CALENDARS)
def test_added_hours_are_the_working_time_between(
    start: datetime, hours: timedelta, cal: WorkCalendar
) -> None:
    """The result is not before the start, is working time, and exactly ``hours`` away."""
    result = add_working_hours(start, hours, cal)
    assert result.astimezone(UTC) >= start.astimezone(UTC)
    assert cal.is_working_day(result.date())
    assert cal.hours[0] <= result.time() <= cal.hours[1]
    assert working_time_between(start, result, cal) == hours


@given(STARTS, HOURS, HOURS, CALENDARS)
def test_adding_in_two_steps_is_adding_once(
    start: datetime, first: timedelta, second: timedelta, cal: WorkCalendar
) -> None:
    """(start + a) + b lands where start + (a + b) does, when b > 0."""
    step = add_working_hours(add_working_hours(start, first, cal), second, cal)
    once = add_working_hours(start, first + second, cal)
    if second > timedelta(0):
        assert step.astimezone(UTC) == once.astimezone(UTC)
    else:
        assert step.astimezone(UTC) <= once.astimezone(UTC)
