"""Sales alerts sent in batches: profiles in a few queries, wire bytes, sends together."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from email.message import EmailMessage

from nurtured.alerts import AlertRequest, alert_many, load_profiles
from nurtured.app import Runtime
from nurtured.inbox import process_messages
from nurtured.models import Delivery, Event, EventKind, Lead
from nurtured.queries import lead_timeline
from nurtured.reactions import Signal, react
from tests.walk import MONDAY, Walk

LATER = MONDAY + timedelta(hours=2)
NAMES = ("ada", "bob", "cy")


def reply(frm: str, message_id: str, text: str) -> bytes:
    return (
        f"From: {frm}\r\nTo: replies@acme.example\r\nSubject: Re: intro\r\n"
        f"In-Reply-To: {message_id}\r\nMessage-ID: <r-{frm}>\r\n"
        f"Date: Mon, 23 Nov 2026 12:00:00 +0000\r\n\r\n{text}\r\n"
    ).encode()


def alerts(walk: Walk) -> dict[str, EmailMessage]:
    """The alerts the sink took, by the lead they are about."""
    found = {}
    for envelope in walk.sink.messages:
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["Auto-Submitted"] == "auto-generated":
            found[str(msg["X-Nurtured-Lead"])] = msg
    return found


def body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


async def three_leads(walk: Walk) -> dict[str, Delivery]:
    """Three leads, each sent the intro and each with a click of its own, hours apart."""
    for n, name in enumerate(NAMES):
        await walk.add(f"{name}@example{n}.com", now=MONDAY)
    await walk.engine.run_due(MONDAY)
    await walk.engine.run_due(MONDAY)  # batch_size is 2
    deliveries = {}
    for n, name in enumerate(NAMES):
        delivery = await Delivery.get(lead__email=f"{name}@example{n}.com")
        deliveries[name] = delivery
        at = MONDAY + timedelta(minutes=10 * (n + 1))
        await react(walk.app, [Signal(delivery.lead_id, EventKind.CLICK, at,
                                      delivery_id=delivery.id, tag=f"topic:{name}")])  # fmt: skip
    return deliveries


async def test_replies_in_one_batch_each_get_their_own_alert(walk: Walk) -> None:
    """Three replies in one batch: three alerts, each with its own lead's reply, profile,
    score, stage, touches with dates (and no other lead's) and its own original attached."""
    deliveries = await three_leads(walk)
    raws = [reply(f"{name}@example{n}.com", deliveries[name].message_id, f"Call me, {name}!")
            for n, name in enumerate(NAMES)]  # fmt: skip
    results = await process_messages(Runtime(walk.app, walk.transport, clock=lambda: LATER), raws)
    assert [r.status for r in results] == ["recorded"] * 3
    found = alerts(walk)
    assert sorted(found) == [f"{name}@example{n}.com" for n, name in enumerate(NAMES)]
    for n, name in enumerate(NAMES):
        address = f"{name}@example{n}.com"
        msg, result = found[address], results[n]
        assert msg["Message-ID"] == result.alert
        text = body(msg)
        assert f"> Call me, {name}!" in text
        assert f"email:     {address}" in text
        lead = await Lead.get(email=address)
        assert f"score:     {lead.score}" in text
        assert "stage:     replied" in text
        delivery = await Delivery.get(id=deliveries[name].id)
        assert delivery.sent_at is not None
        assert f"  {delivery.sent_at.isoformat():32} email sent" in text
        click = await Event.get(lead_id=lead.id, kind=EventKind.CLICK)
        assert f"  {click.occurred_at.isoformat():32} click" in text
        assert f"topic:{name}" in text
        assert [other for other in NAMES if f"topic:{other}" in text] == [name]
        assert f"  {LATER.isoformat():32} reply" in text
        (attached,) = msg.iter_attachments()
        assert attached.get_content_type() == "message/rfc822"
        assert attached.get_content()["Message-ID"] == f"<r-{address}>"
    events = await Event.filter(kind=EventKind.ALERT).order_by("lead_id")
    assert [e.data["message_id"] for e in events] == [r.alert for r in results]


async def test_profiles_loaded_together_equal_the_timeline_of_each(walk: Walk) -> None:
    """load_profiles (a few queries for all) gives what lead_timeline gives for each lead."""
    await three_leads(walk)
    leads = await Lead.all().select_related("company").order_by("id")
    profiles = await load_profiles(leads)
    assert len(profiles) == 3
    for lead in leads:
        profile = await lead_timeline(lead)
        assert len(profile["timeline"]) >= 3  # enrolled, email sent, click
        assert profiles[lead.id] == profile


async def test_one_failed_send_in_a_batch_is_recorded_and_kept_for_retry(walk: Walk) -> None:
    """The sink refuses one of three alerts: that message is to retry, the others are done,
    and every attempt is an ALERT event (the failed one with its error)."""
    deliveries = await three_leads(walk)
    raws = [reply(f"{name}@example{n}.com", deliveries[name].message_id, "Yes")
            for n, name in enumerate(NAMES)]  # fmt: skip
    walk.sink.fail_next("554 5.3.0 no", at="mail")
    runtime = Runtime(walk.app, walk.transport, clock=lambda: LATER)
    results = await process_messages(runtime, raws)
    assert sorted(r.status for r in results) == ["recorded", "recorded", "retry"]
    (failed,) = [r for r in results if r.status == "retry"]
    assert "554" in failed.error
    errors = [e.lead_id for e in await Event.filter(kind=EventKind.ALERT) if e.data.get("error")]
    assert errors == [failed.lead_id]
    assert len(alerts(walk)) == 2
    again = await process_messages(runtime, raws)
    assert [r.status for r in again] == ["duplicate"] * 3
    assert [r.alert is not None for r in again] == [r is failed for r in results]
    assert len(alerts(walk)) == 3


async def test_originals_attached_whole_whatever_their_bytes(walk: Walk) -> None:
    """ASCII with bare LFs: message/rfc822; 8-bit or over-long lines: base64, byte for byte."""
    lead = await walk.add("ada@example.com")
    plain = b"From: ada@example.com\nSubject: plain\n\nhello\n"
    latin = "From: ada@example.com\r\nSubject: x\r\n\r\nGrüße\r\n".encode("latin-1")
    long_line = b"From: ada@example.com\r\nSubject: y\r\n\r\n" + b"z" * 2000 + b"\r\n"
    requests = [AlertRequest(lead.id, "reply", "hi", raw) for raw in (plain, latin, long_line)]
    results = await alert_many(walk.app, walk.transport, requests, LATER)
    assert all(r.sent for r in results)
    sent = {}
    for envelope in walk.sink.messages:
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        sent[str(msg["Message-ID"])] = msg
    rfc822, *binary = [next(sent[str(r.message_id)].iter_attachments()) for r in results]
    assert rfc822.get_content_type() == "message/rfc822"
    assert rfc822.get_content()["Subject"] == "plain"
    assert [a.get_content_type() for a in binary] == ["application/octet-stream"] * 2
    assert [a.get_content() for a in binary] == [latin, long_line]
    assert [a.get_filename() for a in binary] == ["original.eml"] * 2


async def test_alert_for_a_lead_that_is_gone_is_an_error_not_a_crash(walk: Walk) -> None:
    lead = await walk.add("ada@example.com")
    (result,) = await alert_many(walk.app, walk.transport, [AlertRequest(lead.id + 99, "reply")],
                                 LATER)  # fmt: skip
    assert (result.sent, result.message_id) == (False, None)
    assert isinstance(result.error, LookupError)
    assert await Event.filter(kind=EventKind.ALERT).count() == 0
