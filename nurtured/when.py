"""When to come back, as people say it in EN, DE, FR, ES, IT, NL and PT. Pure.

``later_date(text, today, language)`` is the latest date after ``today`` (and within
five years) that ``text`` names, read from:

- a written date: "2027-03-15", "15 March", "15.03.2027" (as ``inbox.dates`` reads them);
- a month: "in March", "en septembre", "März 2027" -> its 1st, the next one after today
  ("next year" in the text moves it to next year);
- a quarter: "Q2", "Q3 2027", "2. Quartal", "next quarter", "el próximo trimestre";
- a season (northern hemisphere): "in spring" -> 1 March, "after the summer" -> 1 Sept;
- "next week" -> the Monday, "next month" -> its 1st, "next year" -> 1 January;
- a span: "in 3 months", "in two weeks", "dans 10 jours", "tra sei mesi" -> today plus it;
- a year alone after a preposition: "in 2028" -> 1 January 2028.

Month words that are also other words ("may", "mar", "set", "ago", "Marco", "Julio",
Italian "mai" = never) count only after a time word ("in May", "ab Mai") or at the very
start of the text; after a short one that is also "to", "of" or "no" ("a", "de", "em")
only in the word's own language. ``language`` is the lead's, when known: then "set",
"ago", "mai", "marco" and "julio" are months only in a language where they are one.

And the other way, a moment as people read it: ``shown(at, zone)`` is
"2026-11-24 10:00:00 +01:00" (on the zone's clock, with its offset, to the second), and
``shown_both(at, zone)`` adds the UTC time: "2026-11-24 10:00:00 +01:00 (09:00:00 UTC)".
Every time the command line and the daemon print goes through these two.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, tzinfo

from nurtured.inbox.dates import MONTHS, fold, stated_dates

__all__ = ["fold_chars", "fold_text", "later_date", "shown", "shown_both"]

HORIZON = timedelta(days=5 * 366)


def fold_text(text: str) -> str:
    """``inbox.dates.fold`` with typographic apostrophes made plain."""
    return fold(text.replace("\u2019", "'").replace("\u02bc", "'"))


def fold_chars(text: str, *, lower: bool = True) -> str:
    """Accents removed (and lower-cased) one character for one, so that a match's span
    in the result is its span in ``text``."""
    out = []
    for char in text:
        base = unicodedata.normalize("NFKD", char)[:1] or char
        if base in "\u2019\u02bc":
            base = "'"
        low = base.lower() if lower else base
        out.append(low if len(low) == 1 else base)
    return "".join(out)


def _alt(words: str) -> str:
    return "|".join(sorted(words.split("|"), key=len, reverse=True))


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split("|"))


_ABBREVIATIONS = _set(
    "jan|feb|fev|mar|mrz|apr|jun|jul|aug|ago|sep|sept|set|oct|okt|ott|nov|dec|dez|dic"
)
_CUED_ONLY = _ABBREVIATIONS | {"may", "mai", "marco", "julio"}
# Short time words that are also "to", "of", "no": enough only in the month's own language.
_WEAK_CUES = _set("a|de|no|na|da|en|em")
_MONTH_LANGUAGES = {
    "set": {"pt", "es"},
    "ago": {"es", "it", "pt"},
    "mai": {"de", "fr"},
    "marco": {"pt"},
    "julio": {"es"},
}
_CUE = _alt(
    "in|by|until|till|after|from|next|early|mid|late|end of|beginning of|around|before|"
    "im|ab|bis|nach|anfang|mitte|ende|en|a partir de|apres|d'ici|fin|debut|jusqu'en|"
    "courant|des|hasta|para|despues de|finales de|principios de|mediados de|a|da|dopo|"
    "entro|fino a|verso|inizio|fine|na|vanaf|tot|eind|begin|half|em|ate|depois de|"
    "inicio de|final de|meados de|no|de|later|spater|tard|tarde|tardi"
)
_MONTH = re.compile(
    rf"(?P<cue>^|(?<!\w)(?:{_CUE})[\s:-]+)?(?<![\w'])(?P<name>{_alt('|'.join(MONTHS))})"
    r"(?!\w)\.?(?:,?\s*(?:de\s+|del\s+)?(?P<year>\d{4})(?!\d))?"
)
_DAY_BEFORE = re.compile(r"\d{1,2}(?:st|nd|rd|th|er|e|o|º|°)?\.?\s+(?:de\s+|di\s+)?$")
_DAY_AFTER = re.compile(r"\s*\d{1,2}(?:st|nd|rd|th)?(?!\d)")

_NEXT = r"next|nachste[nsr]?|prochaine?|proxim[oa]|prossim[oa]|volgende?|komende"
_UNITS = {
    "week": "week|woche|semaine|semana|settimana",
    "month": "month|monat|mois|mes|mese|maand",
    "quarter": "quarter|quartal|trimestre|kwartaal",
    "year": "year|jahres|jahr|annee|an|ano|anno|jaar",
}
_NEXT_UNIT = {
    unit: re.compile(
        rf"(?<!\w)(?:(?:{_NEXT})\s+(?:{words})|(?:{words})\s+(?:{_NEXT}|que viene|que vem))(?!\w)"
    )
    for unit, words in _UNITS.items()
}
_NEW_YEAR = re.compile(r"(?<!\w)(?:in the new year|im neuen jahr)(?!\w)")

_ORDINALS = {
    1: "first|1st|erste[nmsr]?|premier|1er|primer|primero|primo|eerste|primeiro",
    2: "second|2nd|zweite[nmsr]?|deuxieme|2e|2eme|second|segundo|secondo|tweede",
    3: "third|3rd|dritte[nmsr]?|troisieme|3e|3eme|tercer|tercero|terzo|derde|terceiro",
    4: "fourth|4th|vierte[nmsr]?|quatrieme|4e|4eme|cuarto|quarto|vierde",
}
_QUARTER = re.compile(
    r"(?<!\w)(?:q(?P<q>[1-4])|(?P<q2>[1-4])q)(?:\s*(?P<year>\d{4})|\s*[/']\s*(?P<yy>\d{2}))?"
    r"(?!\w)"
    r"|(?<!\w)(?:(?P<num>[1-4])\.|(?P<word>"
    + "|".join(_ORDINALS.values())
    + r"))\s+(?:quarter|quartal|trimestre|kwartaal)(?:\s+(?:of\s+)?(?P<year2>\d{4}))?(?!\w)"
)

_SEASONS = {
    3: "spring|fruhling|fruhjahr|printemps|primavera|lente|voorjaar",
    6: "summer|sommer|zomer|verano|verao|l'ete|cet ete|en ete|l'estate|d'estate|quest'estate",
    9: "autumn|the fall|this fall|in fall|herbst|automne|otono|autunno|herfst|najaar|outono",
    12: "winter|hiver|invierno|inverno",
}
_AFTER = _alt("after|nach|apres|despues de|despues del|dopo|na|depois de|depois do|depois da")
_SEASON = re.compile(
    rf"(?:(?P<after>(?<!\w)(?:{_AFTER})\s+(?:the\s+|dem\s+|de\s+|el\s+|la\s+|o\s+|a\s+)?))?"
    rf"(?<!\w)(?P<season>{_alt('|'.join(_SEASONS.values()))})(?!\w)"
)
_SEASON_MONTH = {word: month for month, words in _SEASONS.items() for word in words.split("|")}

_NUMBER_WORDS = {
    1: "one|a|an|ein|eine|einen|einem|einer|un|une|uno|una|een|um|uma",
    2: "two|couple of|a couple of|zwei|deux|dos|due|twee|dois|duas",
    3: "three|few|a few|drei|ein paar|trois|quelques|tres|tre|drie|een paar|unos|unas|alguns",
    4: "four|vier|quatre|cuatro|quattro|quatro",
    5: "five|funf|cinq|cinco|cinque|vijf",
    6: "six|sechs|seis|sei|zes",
    9: "nine|neun|neuf|nueve|nove|negen",
    12: "twelve|zwolf|douze|doce|dodici|twaalf|doze",
}
_NUMBER = {word: n for n, words in _NUMBER_WORDS.items() for word in words.split("|")}
_SPAN_UNITS = {
    "day": "days?|tag|tagen?|jours?|dias?|giorn[oi]|dag|dagen",
    "week": "weeks?|wochen?|semaines?|semanas?|settiman[ae]|weken",
    "month": "months?|monate?n?|mois|mes|meses|mes[ei]|maand|maanden",
    "year": "years?|jahre?n?|ans?|annees?|anos?|ann[oi]|jaar|jaren",
}
_SPAN = re.compile(
    r"(?<!\w)(?:in|within|in about|in around|after|im|in etwa|nach|dans|d'ici|apres|en|"
    r"dentro de|despues de|tra|fra|entro|dopo|over|binnen|na|em|daqui a|depois de)\s+"
    r"(?:about\s+|around\s+|etwa\s+|environ\s+|circa\s+|ongeveer\s+|cerca de\s+)?"
    rf"(?P<n>\d{{1,3}}|{_alt('|'.join(_NUMBER))})\s+"
    rf"(?P<unit>{'|'.join(f'(?P<{u}>{w})' for u, w in _SPAN_UNITS.items())})(?!\w)"
)
_YEAR_ALONE = re.compile(
    r"(?<!\w)(?:in|im|im jahr|en|nel|em|in het|dans|ab|from|after|na|dopo|depois de|"
    r"despues de|a partir de|apres|vanaf)\s+(?P<year>20\d\d)(?!\w)"
)


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _next_first(month: int, today: date, year: int | None) -> date:
    """The 1st of ``month`` in ``year``, or the next one after ``today``."""
    if year is not None:
        return date(year, month, 1)
    found = date(today.year, month, 1)
    return found if found > today else date(today.year + 1, month, 1)


def _year(text: str | None) -> int | None:
    if not text:
        return None
    return int(text) + 2000 if len(text) == 2 else int(text)


def _months(folded: str, today: date, language: str | None, next_year: bool) -> list[date]:
    found = []
    for m in _MONTH.finditer(folded):
        name, cue = m.group("name"), m.group("cue")
        own = _MONTH_LANGUAGES.get(name)
        if language is not None and own is not None and language not in own:
            continue
        if name in _CUED_ONLY and (
            cue is None or (cue.strip(" :-") in _WEAK_CUES and (own is None or language is None))
        ):
            continue
        if _DAY_BEFORE.search(folded, 0, m.start("name")) or (
            m.group("year") is None and _DAY_AFTER.match(folded, m.end("name"))
        ):
            continue  # part of a written date, which stated_dates reads whole
        year = _year(m.group("year")) or (today.year + 1 if next_year else None)
        found.append(_next_first(MONTHS[name], today, year))
    return found


def _quarters(folded: str, today: date, next_year: bool) -> list[date]:
    found = []
    for m in _QUARTER.finditer(folded):
        if m.group("q") or m.group("q2"):
            quarter = int(m.group("q") or m.group("q2"))
        elif m.group("num"):
            quarter = int(m.group("num"))
        else:
            word = m.group("word")
            quarter = next(q for q, words in _ORDINALS.items() if re.fullmatch(words, word))
        year = _year(m.group("year") or m.group("yy") or m.group("year2"))
        found.append(
            _next_first(quarter * 3 - 2, today, year or (today.year + 1 if next_year else None))
        )
    return found


def _seasons(folded: str, today: date) -> list[date]:
    found = []
    for m in _SEASON.finditer(folded):
        month = _SEASON_MONTH[m.group("season")]
        if m.group("after"):
            month = month % 12 + 3
        found.append(_next_first(month, today, None))
    return found


def _relative(folded: str, today: date) -> list[date]:
    found = []
    if _NEXT_UNIT["week"].search(folded):
        found.append(today + timedelta(days=7 - today.weekday()))
    if _NEXT_UNIT["month"].search(folded):
        found.append(_add_months(today.replace(day=1), 1))
    if _NEXT_UNIT["quarter"].search(folded):
        found.append(_add_months(today.replace(day=1), 3 - (today.month - 1) % 3))
    if _NEXT_UNIT["year"].search(folded) or _NEW_YEAR.search(folded):
        found.append(date(today.year + 1, 1, 1))
    for m in _SPAN.finditer(folded):
        n = int(m.group("n")) if m.group("n").isdigit() else _NUMBER[m.group("n")]
        if m.group("day"):
            found.append(today + timedelta(days=n))
        elif m.group("week"):
            found.append(today + timedelta(weeks=n))
        elif m.group("month"):
            found.append(_add_months(today, n))
        elif n < 100:
            found.append(_add_months(today, 12 * n))
    found.extend(date(int(m.group("year")), 1, 1) for m in _YEAR_ALONE.finditer(folded))
    return found


def later_date(text: str, today: date, language: str | None = None) -> date | None:
    """The latest date after ``today`` that ``text`` names (within five years), or None."""
    folded = fold_text(text)[:5000]
    next_year = bool(_NEXT_UNIT["year"].search(folded))
    found = [
        *stated_dates(folded, today),
        *_months(folded, today, language, next_year),
        *_quarters(folded, today, next_year),
        *_seasons(folded, today),
        *_relative(folded, today),
    ]
    future = [d for d in found if today < d <= today + HORIZON]
    return max(future, default=None)


def shown(at: datetime, zone: tzinfo) -> str:
    """``at`` on ``zone``'s clock with its offset, rounded to the second."""
    local = (at + timedelta(microseconds=500_000)).astimezone(zone).replace(microsecond=0)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def shown_both(at: datetime, zone: tzinfo) -> str:
    """``shown`` and the same moment in UTC (its date too when the date differs)."""
    local = shown(at, zone)
    utc = (at + timedelta(microseconds=500_000)).astimezone(UTC)
    same_day = local[:10] == f"{utc:%Y-%m-%d}"
    return f"{local} ({utc:%H:%M:%S} UTC)" if same_day else f"{local} ({utc:%Y-%m-%d %H:%M:%S} UTC)"
