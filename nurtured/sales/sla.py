"""Working-hours arithmetic for SLA deadlines. Pure: every instant comes in as an argument.

A ``WorkCalendar`` says when sales works: opening hours in local wall time, working
weekdays (0 = Monday), holidays (local dates) and the time zone. Working time is real
elapsed time inside those hours; the hours themselves are read on the local wall clock,
so a 09:00-17:00 day stays 09:00-17:00 across a DST change. All arithmetic is done on
UTC instants, so a DST change inside the opening hours counts the hour that really
passed (a 01:00-05:00 day on the spring-forward night holds three hours).

- ``add_working_hours(start, hours, cal)``: the instant ``hours`` of working time after
  ``start``; a start outside working time counts from the next opening. The result is
  in ``cal.tz`` and always inside working time (or at a closing).
- ``working_time_between(a, b, cal)``: the working time from ``a`` to ``b``, negative
  when ``b`` is before ``a``.
- ``sla_state(handed_at, now, deadline, remind_before, cal)``: "overdue" from the
  deadline on, "due_soon" while less than ``remind_before`` of working time is left,
  "ok" before that.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "SlaState",
    "WorkCalendar",
    "add_working_hours",
    "sla_state",
    "working_time_between",
]

SlaState = Literal["ok", "due_soon", "overdue"]
_ZERO = timedelta(0)
_MAX_IDLE_DAYS = 3660  # ten years without one working day: the calendar is broken


@dataclass(frozen=True)
class WorkCalendar:
    hours: tuple[time, time]  # opening, closing; local wall time, same day
    days: frozenset[int]  # working weekdays, 0 = Monday
    holidays: frozenset[date]
    tz: ZoneInfo

    def __post_init__(self) -> None:
        opening, closing = self.hours
        if opening.tzinfo is not None or closing.tzinfo is not None:
            raise ValueError("WorkCalendar.hours: wall times without a time zone")
        if not opening < closing:
            raise ValueError(f"WorkCalendar.hours: {opening} is not before {closing}")
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"WorkCalendar.days: {sorted(self.days)} is not a set of 0-6")

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def interval(self, day: date) -> tuple[datetime, datetime]:
        """The opening and closing instants of ``day`` (in UTC), working day or not."""
        opening, closing = self.hours
        return (
            datetime.combine(day, opening, tzinfo=self.tz).astimezone(UTC),
            datetime.combine(day, closing, tzinfo=self.tz).astimezone(UTC),
        )


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


def _working_days(first: date, cal: WorkCalendar) -> Iterator[date]:
    day, idle = first, 0
    while True:
        if cal.is_working_day(day):
            idle = 0
            yield day
        else:
            idle += 1
            if idle > _MAX_IDLE_DAYS:
                raise ValueError("WorkCalendar: no working day in ten years")
        day += timedelta(days=1)


def add_working_hours(start: datetime, hours: float | timedelta, cal: WorkCalendar) -> datetime:
    """The instant ``hours`` of working time after ``start``, in ``cal.tz``."""
    left = hours if isinstance(hours, timedelta) else timedelta(hours=hours)
    if left < _ZERO:
        raise ValueError(f"add_working_hours: {hours} is negative")
    at = _aware(start, "add_working_hours start")
    # The local day before, in case the opening hours of the previous local day still
    # cover ``at`` (never with same-day hours, but cheap to be sure).
    first = at.astimezone(cal.tz).date() - timedelta(days=1)
    for day in _working_days(first, cal):
        opening, closing = cal.interval(day)
        begin = max(opening, at)
        if begin >= closing:
            continue
        if left <= closing - begin:
            return (begin + left).astimezone(cal.tz)
        left -= closing - begin
    raise AssertionError("unreachable: _working_days never ends")  # pragma: no cover


def working_time_between(a: datetime, b: datetime, cal: WorkCalendar) -> timedelta:
    """The working time from ``a`` to ``b``; negative when ``b`` is before ``a``."""
    begin, end = _aware(a, "working_time_between a"), _aware(b, "working_time_between b")
    if end < begin:
        return -working_time_between(b, a, cal)
    total = _ZERO
    day = begin.astimezone(cal.tz).date() - timedelta(days=1)
    last = end.astimezone(cal.tz).date()
    while day <= last:
        if cal.is_working_day(day):
            opening, closing = cal.interval(day)
            overlap = min(closing, end) - max(opening, begin)
            if overlap > _ZERO:
                total += overlap
        day += timedelta(days=1)
    return total


def sla_state(
    handed_at: datetime,
    now: datetime,
    deadline: datetime,
    remind_before: timedelta,
    cal: WorkCalendar,
) -> SlaState:
    """Where a handoff stands at ``now``: "ok", "due_soon" or "overdue"."""
    if _aware(deadline, "sla_state deadline") < _aware(handed_at, "sla_state handed_at"):
        raise ValueError(
            f"sla_state: deadline {deadline.isoformat()} is before the handoff "
            f"{handed_at.isoformat()}"
        )
    if remind_before < _ZERO:
        raise ValueError(f"sla_state: remind_before {remind_before} is negative")
    if _aware(now, "sla_state now") >= _aware(deadline, "sla_state deadline"):
        return "overdue"
    if working_time_between(now, deadline, cal) < remind_before:
        return "due_soon"
    return "ok"
