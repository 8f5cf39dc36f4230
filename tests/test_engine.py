"""The walk end to end against a real SMTP server (aiosmtpd), with time passed in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nurtured.app import load_app
from nurtured.engine import Engine
from nurtured.enrollment import LEASE, move_lead, stop_lead
from nurtured.intake import make_input, upsert
from nurtured.models import (
    Delivery,
    DeliveryStatus,
    Enrollment,
    EnrollmentState,
    Event,
    EventKind,
    Lead,
    LeadStatus,
    Link,
)
from tests.walk import MONDAY, Walk, config, write_project


async def test_walk_sends_each_step_after_its_wait(walk: Walk) -> None:
    """Step 1 goes at once, step 2 only after its 2-day wait, and nothing in between."""
    await walk.add("ada@example.com")
    report = await walk.engine.run_due(MONDAY)
    assert report["sent"] == 1
    assert walk.subjects("ada@example.com") == ["intro"]
    assert (await walk.engine.run_due(MONDAY + timedelta(days=1)))["sent"] == 0
    await walk.engine.run_due(MONDAY + timedelta(days=2))
    assert walk.subjects("ada@example.com") == ["intro", "a1"]


async def test_message_is_standards_true_and_identifies_its_delivery(walk: Walk) -> None:
    """Message-ID, Date, From, To, Reply-To, List-Unsubscribe(-Post), multipart/alternative."""
    await walk.add("ada@example.com")
    await walk.engine.run_due(MONDAY)
    (message,) = walk.received("ada@example.com")
    delivery = await Delivery.get(content_id="intro")
    assert message["Message-ID"] == delivery.message_id
    assert delivery.message_id == f"<{delivery.token}@acme.example>"
    assert message["Reply-To"] == f"replies+{delivery.token}@acme.example"  # matches replies
    assert message["From"] == "Acme <hello@acme.example>"
    assert message["To"] == "Ada <ada@example.com>"
    assert message["Date"]
    assert "https://" in message["List-Unsubscribe"] or "http://" in message["List-Unsubscribe"]
    assert "mailto:unsubscribe@acme.example" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    link = await Link.get(delivery_id=delivery.id)
    assert (link.url, link.tag) == ("https://example.com/intro", "interest:b")


async def test_batches_cover_all_due_leads_with_one_send_each(walk: Walk) -> None:
    """With batch_size 2, seven due leads all get exactly one email in one pass."""
    for i in range(7):
        await walk.add(f"lead{i}@example.com")
    report = await walk.engine.run_due(MONDAY)
    assert report["sent"] == 7
    assert len(walk.sink.messages) == 7
    assert await Delivery.filter(status=DeliveryStatus.SENT).count() == 7


async def test_stop_ends_the_pass_after_the_batch_in_flight(walk: Walk) -> None:
    """Setting ``stop`` (SIGTERM in the daemon) drains: batches already claimed are sent
    and saved, no new batch is leased, and the rest stay due for the next pass."""
    for i in range(7):
        await walk.add(f"lead{i}@example.com")
    stop = asyncio.Event()
    real_send = walk.engine._send_one

    async def send_then_stop(job: Any, now: datetime) -> None:
        stop.set()  # the signal arrives while the first batch is being sent
        await real_send(job, now)

    walk.engine._send_one = send_then_stop  # type: ignore[method-assign]
    report = await walk.engine.run_due(MONDAY, stop=stop)
    # Batch 1 was sending when the stop came; batch 2 was already claimed (prepared
    # while batch 1 went out), so it is sent too; nothing after it is leased.
    assert report["sent"] == 4
    assert await Delivery.filter(status=DeliveryStatus.SENT).count() == 4
    assert await Delivery.exclude(status=DeliveryStatus.SENT).count() == 0
    walk.engine._send_one = real_send  # type: ignore[method-assign]
    assert (await walk.engine.run_due(MONDAY))["sent"] == 3


async def test_the_lease_takes_the_earliest_due_and_never_more_than_a_batch(walk: Walk) -> None:
    """One statement leases batch_size due enrollments, earliest first; the rest and the
    not-yet-due are untouched. (On PostgreSQL a re-run pick could lease more: it does not.)"""
    for i in range(5):
        await walk.add(f"lead{i}@example.com")
    rows = await Enrollment.all().order_by("id")
    for n, enrollment in enumerate(rows):  # due one minute apart; the last one not yet
        enrollment.next_due_at = (
            MONDAY - timedelta(minutes=10 - n) if n < 4 else MONDAY + timedelta(hours=1)
        )
        await enrollment.save()
    leased = await walk.engine._lease_due(MONDAY)
    assert sorted(e.id for e in leased) == [rows[0].id, rows[1].id]  # batch_size is 2
    assert {e.lease for e in leased} == {leased[0].lease}
    assert all(e.next_due_at == MONDAY + LEASE for e in leased)
    assert sorted(e.lead_id for e in leased) == sorted(r.lead_id for r in rows[:2])
    stored = {e.id: e for e in await Enrollment.all()}
    assert stored[rows[0].id].lease == leased[0].lease
    assert [stored[r.id].lease for r in rows[2:]] == [None, None, None]
    again = await walk.engine._lease_due(MONDAY)
    assert sorted(e.id for e in again) == [rows[2].id, rows[3].id]
    assert await walk.engine._lease_due(MONDAY) == []  # the last one is not due yet


async def test_concurrent_leases_never_share_an_enrollment(walk: Walk) -> None:
    """Two workers leasing at once (real concurrency on PostgreSQL) get disjoint batches."""
    for i in range(6):
        await walk.add(f"lead{i}@example.com")
    batches = await asyncio.gather(*(walk.engine._lease_due(MONDAY) for _ in range(3)))
    ids = [e.id for batch in batches for e in batch]
    assert len(ids) == len(set(ids)) == 6
    assert all(len({e.lease for e in batch}) == 1 for batch in batches)


async def test_the_lease_without_returning_gives_the_same_batch(
    walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.35 has no UPDATE ... RETURNING: the lease then takes three steps."""
    import sqlite3

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    for i in range(3):
        await walk.add(f"lead{i}@example.com")
    leased = await walk.engine._lease_due(MONDAY)
    assert len(leased) == 2
    assert all(e.lease and e.next_due_at == MONDAY + LEASE for e in leased)
    assert (await walk.engine.run_due(MONDAY))["sent"] == 1  # the third; the two are leased


async def test_an_error_preparing_a_batch_waits_for_the_batch_being_sent(walk: Walk) -> None:
    """Batches overlap; if preparing the next one fails, the one in flight still ends
    with its outcomes saved before the error comes out."""
    for i in range(4):
        await walk.add(f"lead{i}@example.com")
    real_claim = walk.engine._claim
    calls = 0

    async def claim_fails_second_time(jobs: list[Any], now: datetime, report: Any) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("database went away")
        return await real_claim(jobs, now, report)

    walk.engine._claim = claim_fails_second_time  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="database went away"):
        await walk.engine.run_due(MONDAY)
    assert await Delivery.filter(status=DeliveryStatus.SENT).count() == 2
    assert len(walk.sink.messages) == 2


async def test_a_claim_lost_to_another_worker_sends_nothing(walk: Walk) -> None:
    """Another worker claims (lead, content) between our plan and our claim: the unique
    constraint keeps its row, we send nothing for that lead, count the conflict, and the
    next pass moves past the content the other worker holds."""
    await walk.add("ada@example.com")
    await walk.add("bob@example.com")
    ada = await Lead.get(email="ada@example.com")
    real_claim = walk.engine._claim

    async def other_worker_first(jobs: list[Any], now: datetime, report: Any) -> list[Any]:
        await Delivery.create(lead_id=ada.id, content_id="intro", stream_id="a", step_index=0,
                              token="w" * 22, message_id="<w@acme.example>",
                              claimed_at=now)  # fmt: skip
        return await real_claim(jobs, now, report)

    walk.engine._claim = other_worker_first  # type: ignore[method-assign]
    report = await walk.engine.run_due(MONDAY)
    walk.engine._claim = real_claim  # type: ignore[method-assign]
    assert (report["claim_conflict"], report["sent"]) == (1, 1)
    assert walk.subjects("ada@example.com") == []
    assert walk.subjects("bob@example.com") == ["intro"]
    (held,) = await Delivery.filter(lead_id=ada.id)
    assert held.token == "w" * 22  # the other worker's claim stands, ours left no row
    assert await Link.filter(delivery__lead_id=ada.id).count() == 0
    # Next pass: intro counts as received (the other worker may have sent it): never twice.
    await walk.engine.run_due(MONDAY + timedelta(days=3))
    assert "intro" not in walk.subjects("ada@example.com")


async def test_send_window_in_the_leads_time_zone(walk: Walk, tmp_path: Path) -> None:
    """A Tokyo lead enrolled at 19:00 Tokyo time gets its email at 09:00 Tokyo the next day."""
    app = load_app(write_project(tmp_path / "w", walk.sink.port, **{
        "config.toml": config(walk.sink.port, '{ hours = "09:00-17:00", days = ["weekdays"] }')
    }))  # fmt: skip
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=walk.transport)  # fmt: skip
    item = make_input({"email": "kenji@example.jp", "interest": "a", "timezone": "Asia/Tokyo"})
    await upsert([item], app.catalog, app.rules, MONDAY)  # 10:00 UTC = 19:00 Tokyo
    enrollment = await Enrollment.get(lead__email="kenji@example.jp")
    assert enrollment.next_due_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert (await engine.run_due(MONDAY + timedelta(hours=13)))["sent"] == 0
    assert (await engine.run_due(datetime(2026, 11, 24, 0, 0, tzinfo=UTC)))["sent"] == 1


async def test_wait_keeps_wall_clock_across_dst(walk: Walk, tmp_path: Path) -> None:
    """A 2-day wait from 10:00 Berlin before the spring DST change is due at 10:00 Berlin."""
    saturday = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # 10:00 CET
    await walk.add("berlin@example.de", tz="Europe/Berlin", now=saturday)
    await walk.engine.run_due(saturday)
    enrollment = await Enrollment.get(lead__email="berlin@example.de")
    # Monday 30 March 10:00 CEST is 08:00 UTC, not 09:00.
    assert enrollment.next_due_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


async def test_move_skips_content_already_received(walk: Walk) -> None:
    """Moved from A to B, a lead who got the shared intro in A starts B at b1."""
    lead = await walk.add("ada@example.com")
    await walk.engine.run_due(MONDAY)
    moved = await move_lead(lead, "b", walk.app.catalog, walk.app.rules, MONDAY)
    assert (moved.stream_id, moved.position) == ("b", 1)
    await walk.engine.run_due(MONDAY + timedelta(days=1))
    assert walk.subjects("ada@example.com") == ["intro", "b1"]
    states = (
        await Enrollment.filter(lead_id=lead.id).order_by("id").values_list("stream_id", "state")
    )
    # b1 was b's last step: the lead moved on to the long-term stream at once.
    assert states == [
        ("a", EnrollmentState.ENDED),
        ("b", EnrollmentState.ENDED),
        ("long", EnrollmentState.ACTIVE),
    ]
    moves = await Event.filter(lead_id=lead.id, kind=EventKind.MOVED).order_by("id")
    assert [(m.data["from_stream"], m.data["to_stream"]) for m in moves] == [
        ("a", "b"),
        ("b", "long"),
    ]


async def test_exhaustion_moves_on_and_finally_holds(walk: Walk) -> None:
    """A -> B (skipping the shared intro) -> long-term, then the lead is held; no repeats."""
    await walk.add("ada@example.com")
    now = MONDAY
    for _ in range(12):
        await walk.engine.run_due(now)
        now += timedelta(days=10)
    assert walk.subjects("ada@example.com") == ["intro", "a1", "a2", "b1", "l1"]
    current = await Enrollment.get(lead__email="ada@example.com", active_lead__not_isnull=True)
    assert (current.stream_id, current.state) == ("long", EnrollmentState.HELD)


async def test_transient_failure_is_retried_with_the_same_message_id(walk: Walk) -> None:
    """A 451 defers the delivery; the retry after backoff sends it once, same Message-ID."""
    await walk.add("ada@example.com")
    walk.sink.fail_next("451 4.3.0 try again later", at="rcpt")
    report = await walk.engine.run_due(MONDAY)
    assert report["deferred"] == 1
    delivery = await Delivery.get(content_id="intro")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEFERRED, 1)
    assert (await walk.engine.run_due(MONDAY + timedelta(minutes=5)))["sent"] == 0
    assert (await walk.engine.run_due(MONDAY + timedelta(minutes=15)))["sent"] == 1
    (message,) = walk.received("ada@example.com")
    assert message["Message-ID"] == delivery.message_id
    await delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)


async def test_transient_failures_give_up_after_max_attempts(walk: Walk) -> None:
    """After max_attempts temporary failures the delivery fails and the walk goes on."""
    await walk.add("ada@example.com")
    walk.sink.fail_next("421 4.7.0 busy", at="mail", times=3)
    now = MONDAY
    for _ in range(3):
        await walk.engine.run_due(now)
        now += timedelta(hours=2)
    delivery = await Delivery.get(content_id="intro")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert (await Enrollment.get(lead__email="ada@example.com", state="active")).position == 1


async def test_hard_bounce_stops_the_lead(walk: Walk) -> None:
    """550 5.1.1 fails the delivery, marks the lead bounced and ends its stream."""
    await walk.add("gone@example.com")
    walk.sink.fail_next("550 5.1.1 no such user", at="rcpt")
    report = await walk.engine.run_due(MONDAY)
    assert (report["failed"], report["bounced"]) == (1, 1)
    lead = await Lead.get(email="gone@example.com")
    assert lead.status == LeadStatus.BOUNCED
    assert await Enrollment.filter(lead_id=lead.id, active_lead__not_isnull=True).count() == 0
    assert (await walk.engine.run_due(MONDAY + timedelta(days=30)))["sent"] == 0


async def test_policy_rejection_fails_one_message_only(walk: Walk) -> None:
    """554 5.7.1 fails that delivery but the lead stays and gets the next step."""
    await walk.add("ada@example.com")
    walk.sink.fail_next("554 5.7.1 message refused", at="data")
    await walk.engine.run_due(MONDAY)
    assert (await Lead.get(email="ada@example.com")).status == LeadStatus.ACTIVE
    await walk.engine.run_due(MONDAY + timedelta(days=2))
    assert walk.subjects("ada@example.com") == ["a1"]


async def test_connection_lost_after_data_is_never_resent(walk: Walk) -> None:
    """A drop after DATA marks the delivery unknown; that content is never sent again."""
    await walk.add("ada@example.com")
    walk.sink.drop_after_data()
    report = await walk.engine.run_due(MONDAY)
    assert report["unknown"] == 1
    delivery = await Delivery.get(content_id="intro")
    assert delivery.status == DeliveryStatus.UNKNOWN
    await walk.engine.run_due(MONDAY + timedelta(days=2))
    assert [s for s in walk.subjects("ada@example.com") if s != "intro"] == ["a1"]
    assert await Delivery.filter(content_id="intro").count() == 1


async def test_concurrent_engines_send_each_content_once(walk: Walk) -> None:
    """Two engines racing over the same due work never send the same content twice."""
    for i in range(6):
        await walk.add(f"lead{i}@example.com")
    other = Engine(settings=walk.app.settings, catalog=walk.app.catalog,
                   renderer=walk.app.renderer, transport=walk.transport)  # fmt: skip
    await asyncio.gather(walk.engine.run_due(MONDAY), other.run_due(MONDAY))
    rcpts = sorted(r for m in walk.sink.messages for r in m.rcpt_tos)
    assert rcpts == sorted(f"lead{i}@example.com" for i in range(6))


async def test_interrupted_claim_becomes_unknown_on_recovery(walk: Walk) -> None:
    """A claim left in 'sending' by a crash is marked unknown at start and not resent."""
    lead = await walk.add("ada@example.com")
    await Delivery.create(lead_id=lead.id, content_id="intro", stream_id="a", step_index=0,
                          token="t" * 22, message_id="<x@acme.example>",
                          status=DeliveryStatus.SENDING, claimed_at=MONDAY)  # fmt: skip
    later = MONDAY + timedelta(hours=1)
    assert await walk.engine.recover(later) == 1
    assert (await Delivery.get(token="t" * 22)).status == DeliveryStatus.UNKNOWN
    await walk.engine.run_due(later)
    assert walk.subjects("ada@example.com") == []  # intro skipped; a1 waits 2 days
    await walk.engine.run_due(later + timedelta(days=2))
    assert walk.subjects("ada@example.com") == ["a1"]


async def test_unsubscribed_lead_gets_nothing(walk: Walk) -> None:
    """An unsubscribed lead is mailed by no stream, whatever is due."""
    lead = await walk.add("ada@example.com")
    await stop_lead(lead, LeadStatus.UNSUBSCRIBED, MONDAY, reason="unsubscribe")
    assert (await walk.engine.run_due(MONDAY + timedelta(days=5)))["sent"] == 0
    assert walk.sink.messages == []
    # Even a stale active enrollment (e.g. written by an older process) is stopped.
    await Enrollment.create(lead_id=lead.id, active_lead=lead.id, stream_id="a",
                            next_due_at=MONDAY, entered_at=MONDAY)  # fmt: skip
    report = await walk.engine.run_due(MONDAY + timedelta(days=6))
    assert (report["sent"], report["stopped"]) == (0, 1)


async def test_header_injection_in_name_adds_no_header(walk: Walk) -> None:
    """A CR/LF trick in a lead's name cannot add a header to the message."""
    item = make_input({"email": "eve@example.com", "interest": "a",
                       "first_name": "Eve\r\nBcc: victim@example.net"})  # fmt: skip
    await upsert([item], walk.app.catalog, walk.app.rules, MONDAY)
    await walk.engine.run_due(MONDAY)
    (message,) = walk.received("eve@example.com")
    assert message["Bcc"] is None
    assert list(walk.sink.messages[0].rcpt_tos) == ["eve@example.com"]
