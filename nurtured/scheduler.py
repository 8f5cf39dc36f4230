"""PURE: where a lead stands in its streams and when its next email is due.

Nothing here touches the database or reads the clock: callers pass ``now`` and the set
of content the lead has already received.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from nurtured.streams import Catalog, Step, Stream
from nurtured.timing import SendWindow, next_send_time, parse_timezone


@dataclass(frozen=True)
class Next:
    """The lead's next email is ``step`` of ``stream``; ``via`` lists streams passed through."""

    stream: Stream
    step: Step
    via: tuple[str, ...] = ()


@dataclass(frozen=True)
class Held:
    """Every step of ``stream`` was received and it holds its leads until steps are added."""

    stream: Stream
    via: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ended:
    """The lead has run out of streams: ``stream`` was exhausted and says end."""

    stream: Stream
    via: tuple[str, ...] = ()


Placement = Next | Held | Ended


@dataclass(frozen=True)
class SendRules:
    """The send window, time zone and holidays that apply unless a step or lead overrides them."""

    window: SendWindow
    timezone: ZoneInfo
    holidays: frozenset[date] = field(default_factory=frozenset)


def first_unreceived(stream: Stream, position: int, received: Collection[str]) -> Step | None:
    """The first step at or after ``position`` whose content the lead has not received."""
    for step in stream.steps[max(position, 0) :]:
        if step.content not in received:
            return step
    return None


def place(catalog: Catalog, stream_id: str, position: int, received: Collection[str]) -> Placement:
    """Where a lead at ``position`` of ``stream_id`` goes next, following exhaustion rules.

    Received content is skipped; an exhausted stream hands the lead on as its
    ``on_exhausted`` action says, from the start of the next stream. A cycle of streams
    that are all exhausted ends the walk (load-time validation rejects such cycles, so
    this is only a guard).
    """
    stream = catalog.stream(stream_id)
    via: list[str] = []
    seen = {stream.id}
    while True:
        step = first_unreceived(stream, position, received)
        if step is not None:
            return Next(stream, step, tuple(via))
        action = stream.transitions.on_exhausted
        if action.kind == "hold":
            return Held(stream, tuple(via))
        if action.kind != "move" or action.target is None or action.target in seen:
            return Ended(stream, tuple(via))
        via.append(stream.id)
        stream = catalog.stream(action.target)
        seen.add(stream.id)
        position = 0


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return parse_timezone(name)
    except ValueError:
        return None


def lead_zone(name: str, rules: SendRules) -> ZoneInfo:
    """The lead's own time zone when it names a real one, else the configured default."""
    return (_zone(name) if name else None) or rules.timezone


def after_wait(base: datetime, wait: timedelta, tz: ZoneInfo) -> datetime:
    """``base`` + ``wait`` counted on the lead's wall clock, so "1d" after 10:00 is 10:00
    the next day even across a DST change; the result is an aware UTC datetime."""
    wall = base.astimezone(tz).replace(tzinfo=None) + wait
    return wall.replace(tzinfo=tz).astimezone(UTC)


def due_at(base: datetime, step: Step, tz: ZoneInfo, rules: SendRules) -> datetime:
    """When ``step`` may go out: its wait after ``base``, moved into the send window."""
    earliest = max(after_wait(base, step.wait, tz), base)
    return next_send_time(earliest, step.window or rules.window, tz, rules.holidays)


def retry_at(now: datetime, attempts: int, backoff: timedelta) -> datetime:
    """Exponential backoff after a temporary failure: backoff, 2x, 4x ... capped at one day."""
    delay = backoff * (1 << min(max(attempts - 1, 0), 20))
    return now + min(delay, timedelta(days=1))
