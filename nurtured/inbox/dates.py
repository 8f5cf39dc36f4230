"""Return dates stated in out-of-office text, in EN, DE, FR, ES, IT, NL and PT. Pure.

"I am back on 30 November", "bis zum 28.11.2026", "jusqu'au 2 décembre", "hasta el 1 de
diciembre de 2026", "fino al 30/11", "tot en met 1 december", "até 30 de novembro": every
date in the text is read, and the latest one within the next 120 days is the return date.
Numeric dates follow the writer's calendar order: "jusqu'au 12/01" is 12 January, an
American "until 12/01" is December 1 (the caller says which, see ``lang.month_first``).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta

__all__ = ["fold", "return_date", "stated_dates"]

HORIZON = timedelta(days=120)

_MONTHS = {
    1: "january januar janner janvier enero gennaio januari janeiro jan",
    2: "february februar fevrier febrero febbraio februari fevereiro feb fev",
    3: "march marz maerz mars marzo maart marco mar mrz",
    4: "april avril abril aprile apr",
    5: "may mai mayo maggio mei maio",
    6: "june juni juin junio giugno junho jun",
    7: "july juli juillet julio luglio julho jul",
    8: "august aout agosto augustus aug ago",
    9: "september septembre septiembre setiembre settembre setembro sep sept set",
    10: "october oktober octobre octubre ottobre oktober outubro oct okt ott",
    11: "november novembre noviembre novembro nov",
    12: "december dezember decembre diciembre dicembre dezembro dec dez dic",
}
MONTHS = {name: number for number, names in _MONTHS.items() for name in names.split()}
_NAME = "|".join(sorted(MONTHS, key=len, reverse=True))
_YEAR = r"(?:\s*,?\s*(?:de\s+|del\s+)?(?P<year>\d{4}))?"
_PATTERNS = (
    # 2026-11-30
    re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})\b"),
    # 30.11.2026, 30/11/2026, 30-11-26; 30.11. (German, year left out)
    re.compile(
        r"(?<![\w./-])(?P<a>\d{1,2})(?P<sep>[./-])(?P<b>\d{1,2})"
        r"(?:[./-](?P<year>\d{4}|\d{2})\b|\.(?!\d))"
    ),
    # 30/11, 12/01 (year left out; slashes only: "10.30" and "10-12" are no dates; and
    # a two-digit month, so that "24/7" and "1/2" are none either)
    re.compile(r"(?<![\w./-])(?P<a>\d{1,2})(?P<sep>/)(?P<b>\d{1,2})(?![\w/-]|\.\d)"),
    # 30 November 2026, 30. November, 1er décembre, 1 de diciembre de 2026, 30 nov.
    re.compile(
        rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th|er|e|o|º|°)?\.?\s+(?:de\s+|di\s+)?"
        rf"(?P<name>{_NAME})\b\.?{_YEAR}"
    ),
    # November 30, 2026; Nov 30th
    re.compile(rf"\b(?P<name>{_NAME})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b{_YEAR}"),
)


def fold(text: str) -> str:
    """Lower-case, accents removed, whitespace collapsed: what phrases are matched on."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = plain.replace("\u2019", "'").replace("\u02bc", "'")  # typographic apostrophes
    return " ".join(plain.casefold().replace("ß", "ss").split())


def _make(year: int | None, month: int, day: int, today: date) -> date | None:
    candidates = [year] if year is not None else [today.year, today.year + 1]
    for y in candidates:
        if y is not None and y < 100:
            y += 2000
        try:
            found = date(y, month, day)
        except (ValueError, TypeError):
            continue
        if year is not None or found >= today - timedelta(days=7):
            return found
    return None


def _day_month(a: int, b: int, month_first: bool) -> tuple[int, int]:
    """(day, month) of the numeric date a/b: the order the writer's calendar uses,
    unless only the other one makes a date (13/01 is day first everywhere)."""
    if a > 12 or (b <= 12 and not month_first):
        return a, b
    return b, a


def stated_dates(text: str, today: date, *, month_first: bool = False) -> list[date]:
    """Every date written in ``text``; a date without a year is the next one after today.

    ``month_first``: the writer puts the month first in numeric dates written with "/"
    or "-" (American English, see ``lang.month_first``); dotted dates are day first."""
    folded = fold(text)[:20_000]
    found: list[date] = []
    for pattern in _PATTERNS:
        for m in pattern.finditer(folded):
            groups = m.groupdict()
            year = int(groups["year"]) if groups.get("year") else None
            if groups.get("a"):
                us = month_first and groups["sep"] != "."
                day, month = _day_month(int(groups["a"]), int(groups["b"]), us)
                written = groups["b"] if day == int(groups["a"]) else groups["a"]
                if year is None and groups["sep"] == "/" and len(written) < 2:
                    continue  # "24/7", "1/2": no date without a year and a two-digit month
            else:
                day = int(groups["day"])
                month = MONTHS[groups["name"]] if groups.get("name") else int(groups["month"])
            made = _make(year, month, day, today)
            if made is not None:
                found.append(made)
    return found


def return_date(text: str, now: datetime, *, month_first: bool = False) -> datetime | None:
    """When to resume: the start of the day after the latest date stated within the
    next 120 days (so nobody is mailed on the day they are still away), or None.

    ``now`` is the message's own date (what "12/01" without a year counts from), never
    the clock; ``month_first`` as for ``stated_dates``."""
    today = now.astimezone(UTC).date()
    found = stated_dates(text, today, month_first=month_first)
    dates = [d for d in found if today <= d <= today + HORIZON]
    if not dates:
        return None
    return datetime.combine(max(dates) + timedelta(days=1), time(), tzinfo=UTC)


def later_until(value: object, now: datetime) -> datetime | None:
    """A reply's "later" date (ISO, as classified) as the instant it begins, at most two
    years ahead."""
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    until = datetime.combine(day, time(0), tzinfo=UTC)
    return min(until, now + timedelta(days=730)) if until > now else None


def pause_until(value: object, now: datetime) -> datetime | None:
    """An auto-reply's return date (ISO, as classified), at most 120 days ahead."""
    if not isinstance(value, str):
        return None
    try:
        until = datetime.fromisoformat(value)
    except ValueError:
        return None
    if until.tzinfo is None or until <= now:
        return None
    return min(until, now + timedelta(days=120))  # a typo'd year pauses nobody for ever
