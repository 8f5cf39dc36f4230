"""PURE: the scripted behaviour of ``nurtured simulate``, parsed from the command line.

``--click pa-guide:interest:product-b@+2d``  a click on the link tagged
``interest:product-b`` in the email of content ``pa-guide``, two days after it was sent;
``--reply "not now, March"@+5d``  a reply five days after the start (to the last email
sent by then; an ISO date-time instead of ``+5d`` is that moment);
``--ooo 2026-12-20..2027-01-04``  away on those days (in the lead's calendar): an
email sent then gets an out-of-office reply saying so.

Nothing here reads the clock: relative times count from ``start``, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from nurtured.exceptions import NurturedError
from nurtured.timing import parse_duration

__all__ = ["Click", "Ooo", "Reply", "Script", "ScriptError", "parse_as", "parse_click",
           "parse_ooo", "parse_reply", "parse_when"]  # fmt: skip


class ScriptError(NurturedError):
    """A scripted behaviour that cannot be understood: the option and the reason."""


@dataclass(frozen=True)
class Click:
    content: str  # the email whose link is clicked
    tag: str  # the link's tag, e.g. "interest:product-b"
    after: timedelta  # after that email was sent


@dataclass(frozen=True)
class Reply:
    text: str
    at: datetime


@dataclass(frozen=True)
class Ooo:
    first: date
    last: date

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class Script:
    clicks: tuple[Click, ...] = ()
    replies: tuple[Reply, ...] = ()
    ooo: tuple[Ooo, ...] = field(default_factory=tuple)


def parse_when(option: str, text: str, start: datetime) -> datetime:
    """``+90d`` (after ``start``), an ISO date (its midnight, UTC) or an ISO date-time
    (UTC unless it has an offset)."""
    value = text.strip()
    if value.startswith("+"):
        try:
            return start + parse_duration(value[1:])
        except ValueError as exc:
            raise ScriptError(f"{option}: {exc}") from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ScriptError(f'{option}: "{text}" is neither +DURATION (like +90d) nor an '
                          "ISO date or date-time") from None  # fmt: skip
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _split_at(option: str, text: str) -> tuple[str, str]:
    what, sep, when = text.rpartition("@")
    if not sep or not what or not when:
        raise ScriptError(f'{option}: "{text}" needs @WHEN at the end, like @+2d')
    return what, when


def parse_click(text: str) -> Click:
    """``CONTENT:TAG@+DURATION``: the tag may hold colons itself (``interest:product-b``)."""
    what, when = _split_at("--click", text)
    content, sep, tag = what.partition(":")
    if not sep or not content or not tag:
        raise ScriptError(f'--click: "{text}" is not CONTENT:TAG@+DURATION, '
                          "like pa-guide:interest:product-b@+2d")  # fmt: skip
    if not when.startswith("+"):
        raise ScriptError(f'--click: "{when}" must be +DURATION after that email, like +2d')
    try:
        after = parse_duration(when[1:])
    except ValueError as exc:
        raise ScriptError(f"--click: {exc}") from None
    return Click(content, tag, after)


def parse_reply(text: str, start: datetime) -> Reply:
    what, when = _split_at("--reply", text)
    if not what.strip():
        raise ScriptError("--reply: the reply's text is empty")
    return Reply(what.strip(), parse_when("--reply", when, start))


def parse_ooo(text: str) -> Ooo:
    first, sep, last = text.partition("..")
    try:
        span = Ooo(date.fromisoformat(first.strip()), date.fromisoformat(last.strip()))
    except ValueError:
        span = None
    if not sep or span is None:
        raise ScriptError(f'--ooo: "{text}" is not FIRST..LAST, like 2026-12-20..2027-01-04')
    if span.last < span.first:
        raise ScriptError(f'--ooo: "{text}" ends before it begins')
    return span


def parse_as(values: tuple[str, ...]) -> dict[str, str]:
    """``source=webinar,interest=product-a;product-b,timezone=Asia/Tokyo`` (repeatable)
    as lead fields; a piece without ``=`` continues the previous value (a list)."""
    fields: dict[str, str] = {}
    last: str | None = None
    for value in values:
        for piece in value.split(","):
            key, sep, item = piece.partition("=")
            if sep and key.strip():
                last = key.strip().lower().replace("-", "_")
                fields[last] = item.strip()
            elif last is not None and piece.strip():
                fields[last] = f"{fields[last]};{piece.strip()}"
            elif piece.strip():
                raise ScriptError(f'--as: "{piece}" is not FIELD=VALUE, like source=webinar')
    return fields
