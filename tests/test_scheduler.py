"""The pure scheduler: placement across streams, due times, backoff."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nurtured.scheduler import (
    Ended,
    Held,
    Next,
    SendRules,
    due_at,
    first_unreceived,
    lead_zone,
    place,
    retry_at,
)
from nurtured.streams import Action, Catalog, Entry, Step, Stream, Transitions
from nurtured.timing import SendWindow

WEEKDAYS = SendWindow(time(9), time(17), frozenset(range(5)))
RULES = SendRules(WEEKDAYS, ZoneInfo("Europe/Berlin"), frozenset())


def stream(sid: str, contents: list[str], then: str = "end", wait: str = "2d") -> Stream:
    kind, _, target = then.partition(":")
    steps = tuple(
        Step(
            index=i,
            content=c,
            template=c,
            wait=timedelta(days=2) if i else timedelta(0),
            window=None,
        )
        for i, c in enumerate(contents)
    )
    return Stream(
        id=sid,
        name=sid,
        file=f"streams/{sid}.toml",
        entry=Entry(frozenset(), frozenset(), 100),
        steps=steps,
        transitions=Transitions(
            on_click={},
            on_reply=None,
            on_score=(),
            on_exhausted=Action(kind=kind, target=target or None),  # type: ignore[arg-type]
        ),
    )


CATALOG = Catalog(
    streams={
        "a": stream("a", ["intro", "a1", "a2"], "move:b"),
        "b": stream("b", ["intro", "b1"], "move:long"),
        "long": stream("long", ["l1"], "hold"),
        "last": stream("last", ["z1"], "end"),
    }
)


def test_first_unreceived_skips_received_content() -> None:
    """Content the lead already has is skipped wherever it stands in the stream."""
    steps = CATALOG.streams["a"]
    assert first_unreceived(steps, 0, {"intro"}) == steps.steps[1]
    assert first_unreceived(steps, 2, set()) == steps.steps[2]
    assert first_unreceived(steps, 0, {"intro", "a1", "a2"}) is None


def test_place_within_stream() -> None:
    """A lead with content left in its stream stays there at the next unreceived step."""
    placement = place(CATALOG, "a", 1, {"intro"})
    assert isinstance(placement, Next)
    assert (placement.stream.id, placement.step.content, placement.via) == ("a", "a1", ())


def test_place_follows_exhaustion_and_skips_shared_content() -> None:
    """An exhausted stream hands over; shared content received in A is not sent again in B."""
    placement = place(CATALOG, "a", 3, {"intro", "a1", "a2"})
    assert isinstance(placement, Next)
    assert (placement.stream.id, placement.step.content, placement.via) == ("b", "b1", ("a",))


def test_place_through_several_streams_to_hold() -> None:
    """A chain of exhausted streams ends in the one that holds."""
    placement = place(CATALOG, "a", 0, {"intro", "a1", "a2", "b1", "l1"})
    assert isinstance(placement, Held)
    assert placement.stream.id == "long"
    assert placement.via == ("a", "b")


def test_place_ends() -> None:
    """A stream whose exhaustion rule says end ends the walk."""
    assert isinstance(place(CATALOG, "last", 0, {"z1"}), Ended)


def test_place_guards_against_cycles() -> None:
    """Even a cycle that validation missed ends instead of looping forever."""
    looping = Catalog(
        streams={"x": stream("x", ["c"], "move:y"), "y": stream("y", ["c"], "move:x")}
    )
    assert isinstance(place(looping, "x", 0, {"c"}), Ended)


def test_due_at_applies_wait_and_window() -> None:
    """A step's wait is added, then the time moves into the lead's send window."""
    step = CATALOG.streams["a"].steps[1]  # wait 2d
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 19:00 in Berlin
    due = due_at(friday_evening, step, ZoneInfo("Europe/Berlin"), RULES)
    # Sunday 19:00 + window -> Monday 09:00 Berlin = 08:00 UTC
    assert due == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_lead_zone_falls_back_to_default() -> None:
    """An empty or unknown lead time zone uses the configured one."""
    assert lead_zone("Asia/Tokyo", RULES) == ZoneInfo("Asia/Tokyo")
    assert lead_zone("", RULES) == RULES.timezone
    assert lead_zone("Mars/Olympus", RULES) == RULES.timezone


def test_retry_backoff_doubles_and_caps() -> None:
    """Backoff doubles per attempt and never exceeds a day."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    backoff = timedelta(minutes=15)
    assert retry_at(now, 1, backoff) - now == timedelta(minutes=15)
    assert retry_at(now, 3, backoff) - now == timedelta(hours=1)
    assert retry_at(now, 20, backoff) - now == timedelta(days=1)
