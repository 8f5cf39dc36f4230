"""The send window is checked when an email is about to go, not only when it was scheduled.

An overdue email (after downtime, from ``run --once`` in cron, on resume after an
out-of-office, on a 4xx retry) waits for its window's next opening in the lead's zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from nurtured.app import load_app
from nurtured.engine import Engine
from nurtured.intake import make_input, upsert
from nurtured.models import Delivery, DeliveryStatus, Enrollment, EnrollmentState
from tests.walk import Walk, config, write_project

OFFICE = '{ hours = "09:00-17:00", days = ["weekdays"] }'


def office_engine(walk: Walk, root: Path, window: str = OFFICE, extra: str = "") -> Engine:
    text = config(walk.sink.port, window) + extra
    app = load_app(write_project(root, walk.sink.port, **{"config.toml": text}))
    return Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                  transport=walk.transport)  # fmt: skip


async def enroll(engine: Engine, address: str, tz: str, now: datetime) -> None:
    item = make_input({"email": address, "interest": "a", "timezone": tz})
    await upsert([item], engine.catalog, engine.rules, now)


async def test_an_email_due_overnight_waits_for_the_window_in_new_york(
    walk: Walk, tmp_path: Path
) -> None:
    """Due at 10:00 New York, the daemon was down until 23:00: sent at 09:00 next day."""
    engine = office_engine(walk, tmp_path / "p")
    due = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
    await enroll(engine, "ny@example.com", "America/New_York", due)
    late = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # Monday 23:00 in New York
    report = await engine.run_due(late)
    assert (report["sent"], report["outside_window"]) == (0, 1)
    enrollment = await Enrollment.get(lead__email="ny@example.com")
    assert enrollment.next_due_at == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert enrollment.lease is None
    assert await Delivery.all().count() == 0  # nothing claimed
    assert (await engine.run_due(datetime(2026, 11, 24, 14, 0, tzinfo=UTC)))["sent"] == 1


async def test_tokyo_evening_and_a_tue_thu_step_on_saturday(walk: Walk, tmp_path: Path) -> None:
    """19:00 Tokyo is outside 09-17; a step limited to Tue-Thu is not sent on Saturday."""
    engine = office_engine(walk, tmp_path / "p", '{ hours = "00:00-24:00", days = ["everyday"] }')
    steps = (tmp_path / "p" / "streams" / "a.toml").read_text()
    # Make the first step Tue-Thu, 09:00-17:00.
    steps = steps.replace(
        'content = "intro"',
        'content = "intro"\nwindow = { hours = "09:00-17:00", days = ["tue", "wed", "thu"] }',
        1,
    )
    (tmp_path / "p" / "streams" / "a.toml").write_text(steps)
    app = load_app(tmp_path / "p" / "config.toml")
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=walk.transport)  # fmt: skip
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    await enroll(engine, "kenji@example.jp", "Asia/Tokyo", friday - timedelta(days=10))
    # Force it overdue: due long ago, now Saturday 01:00 Tokyo.
    await Enrollment.filter(lead__email="kenji@example.jp").update(
        next_due_at=friday - timedelta(days=3)
    )
    saturday_1am_tokyo = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert (await engine.run_due(saturday_1am_tokyo))["sent"] == 0
    enrollment = await Enrollment.get(lead__email="kenji@example.jp")
    # Next Tuesday 09:00 Tokyo = Tuesday 00:00 UTC.
    assert enrollment.next_due_at == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert walk.subjects("kenji@example.jp") == []


async def test_nothing_is_sent_on_a_holiday_even_when_overdue(walk: Walk, tmp_path: Path) -> None:
    """An email overdue on a configured holiday goes out on the next working day."""
    text = config(walk.sink.port, OFFICE).replace(
        'timezone = "UTC"', 'timezone = "UTC"\n        holidays = ["2026-12-24", "2026-12-25"]'
    )
    app = load_app(write_project(tmp_path / "p", walk.sink.port, **{"config.toml": text}))
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=walk.transport)  # fmt: skip
    await enroll(engine, "ada@example.com", "", datetime(2026, 12, 23, 10, 0, tzinfo=UTC))
    christmas_eve = datetime(2026, 12, 24, 11, 0, tzinfo=UTC)
    assert (await engine.run_due(christmas_eve))["sent"] == 0
    enrollment = await Enrollment.get(lead__email="ada@example.com")
    assert enrollment.next_due_at == datetime(2026, 12, 28, 9, 0, tzinfo=UTC)  # Monday


async def test_a_retry_after_a_4xx_waits_for_the_window(walk: Walk, tmp_path: Path) -> None:
    """A 451 at 16:55; the retry, overdue at 17:10 (the backoff alone), waits for 09:00."""
    engine = office_engine(walk, tmp_path / "p")
    at = datetime(2026, 11, 23, 16, 55, tzinfo=UTC)
    await enroll(engine, "ada@example.com", "", at)
    walk.sink.fail_next("451 4.3.0 try again later", at="rcpt")
    assert (await engine.run_due(at))["deferred"] == 1
    # As an older schedule (or a clock jump) might have left it: due at the backoff alone.
    retry = at + timedelta(minutes=15)
    await Enrollment.filter(lead__email="ada@example.com").update(next_due_at=retry)
    report = await engine.run_due(retry)
    assert (report["sent"], report["outside_window"]) == (0, 1)
    delivery = await Delivery.get(content_id="intro")
    assert delivery.status == DeliveryStatus.DEFERRED
    morning = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert (await Enrollment.get(lead__email="ada@example.com")).next_due_at == morning
    assert (await engine.run_due(morning))["sent"] == 1
    (message,) = walk.received("ada@example.com")
    assert message["Message-ID"] == delivery.message_id


async def test_a_pause_ending_at_night_resumes_in_the_window(walk: Walk, tmp_path: Path) -> None:
    """An out-of-office pause that ends at 03:00 Berlin resumes at 09:00 Berlin."""
    engine = office_engine(walk, tmp_path / "p")
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    await enroll(engine, "berlin@example.de", "Europe/Berlin", monday)
    night = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 03:00 in Berlin
    await Enrollment.filter(lead__email="berlin@example.de").update(
        state=EnrollmentState.PAUSED, next_due_at=night
    )
    assert (await engine.run_due(night))["sent"] == 0
    enrollment = await Enrollment.get(lead__email="berlin@example.de")
    assert enrollment.state == EnrollmentState.PAUSED  # resumes only when it can send
    assert enrollment.next_due_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert (await engine.run_due(enrollment.next_due_at))["sent"] == 1


async def test_the_window_follows_a_dst_change(walk: Walk, tmp_path: Path) -> None:
    """Overdue across the autumn change in New York: the opening is 09:00 EST (14:00 UTC)."""
    engine = office_engine(walk, tmp_path / "p")
    await enroll(engine, "ny@example.com", "America/New_York",
                 datetime(2026, 10, 30, 14, 0, tzinfo=UTC))  # fmt: skip
    await Enrollment.filter(lead__email="ny@example.com").update(
        next_due_at=datetime(2026, 10, 30, 14, 0, tzinfo=UTC)
    )
    sunday_night = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # Sunday 22:00 EST
    assert (await engine.run_due(sunday_night))["sent"] == 0
    enrollment = await Enrollment.get(lead__email="ny@example.com")
    assert enrollment.next_due_at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
