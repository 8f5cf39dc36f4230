"""PURE: durations, send windows and the next instant an email may go out.

Nothing here reads the clock or touches I/O: every instant is passed in. Instants are aware
UTC datetimes; windows, weekdays and holidays are on the lead's local wall clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {
    "weekdays": frozenset(range(5)),
    "weekend": frozenset({5, 6}),
    "weekends": frozenset({5, 6}),
    "everyday": frozenset(range(7)),
}
SEARCH_DAYS = 400

_DURATION = re.compile(
    r"(?:(?P<w>\d+)\s*w)?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*"
    r"(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?"
)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_HOURS = re.compile(r"\s*(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)\s*")


def parse_duration(text: str) -> timedelta:
    """ "0", "90s", "45m", "36h", "2d", "1w" or combinations in that order, like "1d12h"."""
    stripped = text.strip().lower()
    if stripped == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(stripped)
    if not stripped or match is None or not any(match.groupdict().values()):
        raise ValueError(f'"{text}" is not a duration')
    parts = {_UNITS[unit]: int(n) for unit, n in match.groupdict().items() if n is not None}
    try:
        return timedelta(**parts)
    except OverflowError:
        raise ValueError(f'"{text}" is too long a duration') from None


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration: timedelta(days=1, hours=12) -> "1d12h"."""
    seconds, out = int(value.total_seconds()), ""
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        out += f"{count}{unit}" if count else ""
    return out or "0"


@dataclass(frozen=True)
class SendWindow:
    """Local hours [start, end) on the given weekdays (0 = Monday); end = time.max: midnight."""

    start: time
    end: time
    weekdays: frozenset[int]

    def contains(self, local: datetime) -> bool:
        """True when the naive or aware ``local`` wall time falls inside the window."""
        moment = local.time()
        if local.weekday() not in self.weekdays or moment < self.start:
            return False
        return self.end == time.max or moment < self.end


ALWAYS = SendWindow(time(0), time.max, frozenset(range(7)))


def parse_hours(hours: str) -> tuple[time, time]:
    """ "09:00-17:00" -> (09:00, 17:00); "24:00" as the end means the end of the day."""
    match = _HOURS.fullmatch(hours)
    if match is None:
        raise ValueError(f'"{hours}" is not a time range like "09:00-17:00"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f'"{hours}" is not a time range like "09:00-17:00"')
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f'"{hours}" ends before it starts')
    return start, end


def parse_days(days: Sequence[str]) -> frozenset[int]:
    """ "mon".."sun", "weekdays", "weekend" or "everyday", in any case, into weekday numbers."""
    if isinstance(days, str):
        days = [days]
    result: set[int] = set()
    for day in days:
        name = day.strip().lower() if isinstance(day, str) else day
        if name in DAY_GROUPS:
            result |= DAY_GROUPS[name]
        elif name in DAYS:
            result.add(DAYS.index(name))
        else:
            shown = f'"{day}"' if isinstance(day, str) else repr(day)
            raise ValueError(
                f"{shown} is not a day: use mon, tue, wed, thu, fri, sat, sun, "
                "weekdays, weekend or everyday"
            )
    if not result:
        raise ValueError("no days given: emails could never be sent")
    return frozenset(result)


def parse_window(hours: str, days: Sequence[str]) -> SendWindow:
    """ "09:00-17:00" and ["mon", "tue"] -> SendWindow; ValueError says what is wrong."""
    start, end = parse_hours(hours)
    return SendWindow(start, end, parse_days(days))


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA zone like "Europe/Berlin"; ValueError for anything else."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f'"{name}" is not a time zone')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f'"{name}" is not a time zone') from None


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _instants(day: date, at: time, tz: ZoneInfo) -> list[datetime]:
    """UTC instants whose local wall time is ``at`` on ``day``, earliest first.

    Two in a fall-back overlap; in a spring-forward gap, the first instant after the gap.
    """
    naive = datetime.combine(day, at)
    found = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if _wall(instant, tz) == naive and instant not in found:
            found.append(instant)
    if found:
        return sorted(found)
    # In a gap: fold=1 lands before it, fold=0 after it; search for the first instant
    # whose wall time has reached ``naive`` (transitions fall on whole seconds).
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    lo, hi = min(lo, hi), max(lo, hi)
    steps = int((hi - lo).total_seconds())
    low, high = 0, steps
    while low < high:
        mid = (low + high) // 2
        if _wall(lo + timedelta(seconds=mid), tz) >= naive:
            high = mid
        else:
            low = mid + 1
    return [lo + timedelta(seconds=low)]


def next_send_time(
    earliest: datetime, window: SendWindow, tz: ZoneInfo, holidays: frozenset[date]
) -> datetime:
    """The first UTC instant >= ``earliest`` inside ``window`` on a non-holiday, in ``tz``.

    ``earliest`` is returned unchanged when it is already inside. A window start that
    falls in a spring-forward gap maps to the end of the gap; in a fall-back overlap the
    first occurrence is taken. ValueError when no day in the next 400 can be used.
    """
    if earliest.tzinfo is None:
        raise ValueError("earliest must be an aware datetime")
    if not window.weekdays:
        raise ValueError("the send window has no days")
    local = earliest.astimezone(tz)
    if local.date() not in holidays and window.contains(local):
        return earliest
    first = local.date()
    for offset in range(SEARCH_DAYS + 1):
        day = first + timedelta(days=offset)
        if day.weekday() not in window.weekdays or day in holidays:
            continue
        for instant in _instants(day, window.start, tz):
            wall = _wall(instant, tz)
            if instant >= earliest and wall.date() == day and window.contains(wall):
                return instant
    raise ValueError(f"no day in the {SEARCH_DAYS} days after {first} is open for sending")
