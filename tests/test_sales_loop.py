"""The sales loop end to end: gate, handoff with an SLA, sales acting by reply, returns."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from nurtured.alerts import AlertRequest, alert_many
from nurtured.app import Runtime, load_app, make_transport
from nurtured.engine import Engine
from nurtured.inbox import process_messages
from nurtured.models import (
    Delivery,
    Enrollment,
    EnrollmentState,
    Event,
    EventKind,
    Handoff,
    HandoffState,
    Lead,
    LeadStage,
    LeadStatus,
)
from nurtured.reactions import Signal, react
from nurtured.sales.handoff import recheck_gate
from nurtured.sales.report import format_sales, sales_report
from nurtured.sales.timer import check_sla
from tests.walk import MONDAY, Walk, config, write_project

SALES = """
[scoring]
click = 50
sales_ready = 50
[alerts]
to = ["Sam Seller <sam@acme.example>"]
[handoff]
require = ["budget", "authority"]
sla = "24h"
remind_before = "4h"
escalate_to = ["Boss <boss@acme.example>"]
returns = { timing = "long", default = "long" }
[handoff.calendar]
hours = "09:00-17:00"
days = ["mon", "tue", "wed", "thu", "fri"]
holidays = ["2026-11-26"]
timezone = "UTC"
"""
FRIDAY = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
async def sales(tmp_path: Path, db: str, smtp_sink: Any) -> AsyncIterator[Walk]:
    text = config(smtp_sink.port) + SALES
    app = load_app(write_project(tmp_path, smtp_sink.port, **{"config.toml": text}))
    transport = make_transport(app.settings)
    await transport.start()
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=transport)  # fmt: skip
    try:
        yield Walk(app, engine, transport, smtp_sink)
    finally:
        await transport.close()


def mails_to(walk: Walk, address: str) -> list[EmailMessage]:
    return [
        email.message_from_bytes(m.content, policy=policy.default)  # type: ignore[misc]
        for m in walk.sink.messages
        if address in m.rcpt_tos
    ]


async def click_over(walk: Walk, lead: Lead, at: datetime) -> None:
    """One click worth the whole threshold, then the alerts the caller sends."""
    delivery = await Delivery.get(lead_id=lead.id)
    outcomes = await react(walk.app, [Signal(lead.id, EventKind.CLICK, at, delivery.id)])
    wanted = [AlertRequest(o.signal.lead_id, o.alert) for o in outcomes if o.alert]
    await alert_many(walk.app, walk.transport, wanted, at)


async def handed_lead(walk: Walk, at: datetime = FRIDAY) -> Lead:
    lead = await walk.add("ada@example.com", now=at)
    await Lead.filter(id=lead.id).update(extra={"budget": "yes"}, title="VP Finance")
    await walk.engine.run_due(at)
    await click_over(walk, lead, at)
    return await Lead.get(id=lead.id)


def sales_reply(alert: EmailMessage, text: str, sender: str = "sam@acme.example") -> bytes:
    return (
        f"From: Sam <{sender}>\r\nTo: {alert['Reply-To']}\r\nSubject: Re: {alert['Subject']}\r\n"
        f"Message-ID: <r{abs(hash(text))}@acme.example>\r\nIn-Reply-To: {alert['Message-ID']}\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n{text}\r\n\r\n> the alert quoted\r\n"
    ).encode()


async def test_the_gate_holds_an_mql_without_criteria(sales: Walk) -> None:
    """Over the score without budget: MQL, still nurtured, no handoff, no alert; once
    budget is set the gate holds and it is handed off."""
    lead = await sales.add("bob@example.com", now=FRIDAY)
    await Lead.filter(id=lead.id).update(title="Head of Sales")
    await sales.engine.run_due(FRIDAY)
    await click_over(sales, lead, FRIDAY)
    lead = await Lead.get(id=lead.id)
    assert (lead.stage, lead.status) == (LeadStage.MQL, LeadStatus.ACTIVE)
    assert await Handoff.all().count() == 0
    assert mails_to(sales, "sam@acme.example") == []
    event = await Event.get(lead_id=lead.id, kind=EventKind.STAGE)
    assert event.data["to"] == "mql"
    assert event.data["lacks"] == ["budget"]
    report = await sales_report(sales.app, FRIDAY, FRIDAY + timedelta(days=1))
    assert report["mql_lacking"] == {"bob@example.com": ["budget"]}
    lead.extra = {"budget": "yes"}
    await lead.save()
    lacks, owner = await recheck_gate(sales.app, lead, FRIDAY + timedelta(hours=1))
    assert (lacks, owner) == ([], "sam@acme.example")
    assert (await Lead.get(id=lead.id)).stage == LeadStage.SQL


async def test_handoff_alerts_the_owner_with_a_working_hours_deadline(sales: Walk) -> None:
    """Friday 15:00 + 24 working hours, Thursday a holiday: Wednesday 15:00 is 2+8+8+6."""
    lead = await handed_lead(sales)
    assert (lead.stage, lead.status) == (LeadStage.SQL, LeadStatus.SALES)
    handoff = await Handoff.get(lead_id=lead.id)
    assert handoff.owner == "sam@acme.example"
    assert handoff.deadline == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    (alert,) = mails_to(sales, "sam@acme.example")
    body = alert.get_body(("plain",)).get_content()
    assert "Please act by Wed 2026-11-25 15:00" in body
    assert "(24 working hours); a reminder comes before, and the handoff is escalated" in body
    assert "budget yes, authority yes" in body
    assert "accept" in body
    assert handoff.alert_id == alert["Message-ID"]
    assert await Enrollment.filter(lead_id=lead.id, active_lead__not_isnull=True).count() == 0


async def test_sla_reminder_then_escalation_across_the_weekend(sales: Walk) -> None:
    lead = await handed_lead(sales)
    assert await check_sla(sales.app, sales.transport, FRIDAY + timedelta(days=3)) == {
        "reminded": 0, "escalated": 0}  # fmt: skip
    # Wednesday 12:00: 3 working hours left (< 4): one reminder, once.
    wednesday = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert (await check_sla(sales.app, sales.transport, wednesday))["reminded"] == 1
    assert (await check_sla(sales.app, sales.transport, wednesday))["reminded"] == 0
    assert len(mails_to(sales, "sam@acme.example")) == 2  # the alert and the reminder
    # Friday (Thursday is a holiday): the deadline passed, escalated once.
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert (await check_sla(sales.app, sales.transport, friday))["escalated"] == 1
    assert (await check_sla(sales.app, sales.transport, friday))["escalated"] == 0
    (escalation,) = mails_to(sales, "boss@acme.example")
    assert lead.email in str(escalation["Subject"])


async def test_accept_by_reply_stops_the_sla_clock(sales: Walk) -> None:
    lead = await handed_lead(sales)
    (alert,) = mails_to(sales, "sam@acme.example")
    at = FRIDAY + timedelta(hours=1)
    runtime = Runtime(sales.app, sales.transport, clock=lambda: at)
    (result,) = await process_messages(runtime, [sales_reply(alert, "Accept, thanks!")])
    assert (result.status, result.action) == ("recorded", "accept")
    handoff = await Handoff.get(lead_id=lead.id)
    assert (handoff.state, handoff.acted_at) == (HandoffState.ACCEPTED, at)
    assert (await Lead.get(id=lead.id)).stage == LeadStage.ACCEPTED
    wednesday = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert await check_sla(sales.app, sales.transport, wednesday) == {
        "reminded": 0, "escalated": 0}  # fmt: skip
    answers = [m for m in mails_to(sales, "sam@acme.example") if "accepted" in m.get_content()]
    assert len(answers) == 1  # the confirmation


async def test_return_by_reply_goes_back_to_nurture_next_january(sales: Walk) -> None:
    """ "return: timing, next year": the returns stream, paused until 1 January, and
    nothing it already received is sent again."""
    lead = await handed_lead(sales)
    (alert,) = mails_to(sales, "sam@acme.example")
    runtime = Runtime(sales.app, sales.transport, clock=lambda: MONDAY)
    (result,) = await process_messages(runtime, [sales_reply(alert, "return: timing, next year")])
    assert result.action == "return"
    lead = await Lead.get(id=lead.id)
    assert (lead.stage, lead.status) == (LeadStage.RETURNED, LeadStatus.ACTIVE)
    handoff = await Handoff.get(lead_id=lead.id)
    assert (handoff.state, handoff.category) == (HandoffState.RETURNED, "timing")
    enrollment = await Enrollment.get(lead_id=lead.id, active_lead__not_isnull=True)
    assert enrollment.stream_id == "long"
    assert enrollment.state == EnrollmentState.PAUSED
    assert enrollment.next_due_at is not None
    assert enrollment.next_due_at.date() >= date(2027, 1, 1)
    before = len(sales.subjects("ada@example.com"))
    assert (await sales.engine.run_due(datetime(2026, 12, 20, 10, tzinfo=UTC)))["sent"] == 0
    await sales.engine.run_due(datetime(2027, 3, 1, 10, tzinfo=UTC))
    subjects = sales.subjects("ada@example.com")
    assert subjects[before:] == ["l1"]
    assert len(subjects) == len(set(subjects))  # no content twice


async def test_won_records_the_amount(sales: Walk) -> None:
    lead = await handed_lead(sales)
    (alert,) = mails_to(sales, "sam@acme.example")
    runtime = Runtime(sales.app, sales.transport, clock=lambda: MONDAY)
    await process_messages(runtime, [sales_reply(alert, "won 12,000 EUR")])
    handoff = await Handoff.get(lead_id=lead.id)
    assert (handoff.state, handoff.amount, handoff.currency) == (
        HandoffState.WON, Decimal(12000), "EUR")  # fmt: skip
    assert (await Lead.get(id=lead.id)).stage == LeadStage.WON
    data = await sales_report(sales.app, FRIDAY - timedelta(days=1), MONDAY + timedelta(days=1))
    revenue = data["revenue"]
    assert (revenue["total"], revenue["won"]) == ("12000.00", 1)
    assert revenue["by_source"] == {"webinar": "12000.00"}
    assert revenue["by_stream"] == {"a": "12000.00"}
    assert revenue["emails_before_handoff"] == 1
    assert data["stages"]["won"] == 1
    assert "revenue: 12000.00 from 1 won" in format_sales(data)


async def test_a_reply_from_someone_else_changes_nothing(sales: Walk) -> None:
    lead = await handed_lead(sales)
    (alert,) = mails_to(sales, "sam@acme.example")
    runtime = Runtime(sales.app, sales.transport, clock=lambda: MONDAY)
    (result,) = await process_messages(
        runtime, [sales_reply(alert, "won 1000000", sender="mallory@evil.example")]
    )
    assert result.action == "not_allowed"
    assert (await Handoff.get(lead_id=lead.id)).state == HandoffState.OPEN
    assert mails_to(sales, "mallory@evil.example") == []


async def test_an_unparseable_reply_gets_the_forms_once(sales: Walk) -> None:
    await handed_lead(sales)
    (alert,) = mails_to(sales, "sam@acme.example")
    runtime = Runtime(sales.app, sales.transport, clock=lambda: MONDAY)
    raw = sales_reply(alert, "Who is this person?")
    (result,) = await process_messages(runtime, [raw])
    assert result.action == "not_understood"
    (answer,) = [m for m in mails_to(sales, "sam@acme.example") if "not understood" in
                 m.get_content()]  # fmt: skip
    assert "return: <reason>" in answer.get_content()
    (again,) = await process_messages(runtime, [raw])  # replayed: counted once
    assert again.status == "duplicate"


async def test_sales_replies_through_a_maildir_inbox(sales: Walk, tmp_path: Path) -> None:
    """The inbox as the daemon reads it: a Maildir with the owner's reply in new/."""
    from nurtured.inbox.runner import drain
    from nurtured.inbox.source import MaildirSource

    lead = await handed_lead(sales)
    (alert,) = mails_to(sales, "sam@acme.example")
    maildir = tmp_path / "inbox"
    source = MaildirSource(maildir)
    await source.open()
    (maildir / "new" / "1.reply").write_bytes(sales_reply(alert, "lost: went with a competitor"))
    await drain(Runtime(sales.app, sales.transport, clock=lambda: MONDAY), source)
    handoff = await Handoff.get(lead_id=lead.id)
    assert (handoff.state, handoff.category) == (HandoffState.LOST, "lost")
    assert (await Lead.get(id=lead.id)).stage == LeadStage.LOST
    assert [p.name for p in (maildir / "cur").iterdir()] == ["1.reply:2,S"]


async def test_sales_replies_through_a_real_dovecot(sales: Walk, imap_box: Any) -> None:
    """Accept by replying, read over IMAP (IDLE) from a real Dovecot."""
    from tests.test_inbox_imap import imap_runtime, running, until

    lead = await handed_lead(sales)
    (alert,) = mails_to(sales, "sam@acme.example")
    await asyncio.to_thread(imap_box.append, sales_reply(alert, "accept"))

    async def accepted() -> bool:
        return (await Handoff.get(lead_id=lead.id)).state == HandoffState.ACCEPTED

    async with running(imap_runtime(sales, imap_box, idle=True, poll_interval="1s")):
        await until(accepted)
    assert (await Lead.get(id=lead.id)).stage == LeadStage.ACCEPTED
