"""Inbound messages through process_messages and the Maildir source, against a real database
and SMTP sink (no IMAP here: see test_inbox_imap.py)."""

from __future__ import annotations

import asyncio
import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nurtured.app import Runtime
from nurtured.inbox import process_messages
from nurtured.inbox.classify import classify
from nurtured.inbox.parse import parse
from nurtured.inbox.runner import drain
from nurtured.inbox.source import MaildirSource
from nurtured.models import (
    Delivery,
    Enrollment,
    EnrollmentState,
    Event,
    EventKind,
    Lead,
    LeadStatus,
)
from tests.walk import MONDAY, Walk

CORPUS = Path(__file__).parent / "corpus"
LATER = MONDAY + timedelta(hours=1)


def corpus(name: str, message_id: str) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes().replace(b"<REPLACE-ME@acme.example>",
                                                          message_id.encode())  # fmt: skip


async def sent_to(walk: Walk, address: str) -> Delivery:
    await walk.add(address)
    await walk.engine.run_due(MONDAY)
    return await Delivery.get(lead__email=address)


def runtime(walk: Walk, now: datetime = LATER) -> Runtime:
    return Runtime(walk.app, walk.transport, clock=lambda: now)


def alerts(walk: Walk) -> list[email.message.EmailMessage]:
    found = []
    for envelope in walk.sink.messages:
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        if msg["Auto-Submitted"] == "auto-generated":
            found.append(msg)
    return found


async def test_reply_stops_the_stream_and_alerts_sales(walk: Walk) -> None:
    """A Gmail-style reply is matched by thread, its text extracted, the lead replied, alerted."""
    delivery = await sent_to(walk, "ada@example.com")
    (result,) = await process_messages(
        runtime(walk), [corpus("reply-en-gmail", delivery.message_id)]
    )
    assert (result.status, result.kind, result.via) == ("recorded", EventKind.REPLY, "thread")
    assert result.delivery_id == delivery.id
    assert result.text.startswith("Yes, this looks interesting.")
    lead = await Lead.get(email="ada@example.com")
    assert lead.status == LeadStatus.REPLIED
    assert await Enrollment.filter(lead_id=lead.id, active_lead__not_isnull=True).count() == 0
    event = await Event.get(lead_id=lead.id, kind=EventKind.REPLY)
    assert event.data["text"].startswith("Yes, this looks interesting.")
    (alert,) = alerts(walk)
    assert "Yes, this looks interesting." in alert.get_body(("plain",)).get_content()
    assert result.alert == alert["Message-ID"]


async def test_reply_with_broken_mime_keeps_its_text_for_sales(walk: Walk) -> None:
    """Delimiters that match no boundary: the text is recovered, the alert is not empty."""
    delivery = await sent_to(walk, "ada@example.com")
    raw = corpus("reply-en-broken-boundary", delivery.message_id)
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.status, result.kind) == ("recorded", EventKind.REPLY)
    assert "StartBoundaryNotFoundDefect" in result.defects
    assert result.text.startswith("Yes, we would like a quote for 40 seats.")
    event = await Event.get(kind=EventKind.REPLY)
    assert event.data["text"].startswith("Yes, we would like a quote for 40 seats.")
    (alert,) = alerts(walk)
    body = alert.get_body(("plain",))
    assert body is not None
    assert "Yes, we would like a quote for 40 seats." in body.get_content()


async def test_same_message_twice_counts_once(walk: Walk) -> None:
    """Replayed after a crash (processed, not flagged), a reply is recognised, not re-alerted."""
    delivery = await sent_to(walk, "ada@example.com")
    raw = corpus("reply-en-apple", delivery.message_id)
    first, again = await process_messages(runtime(walk), [raw, raw])
    assert (first.status, again.status) == ("recorded", "duplicate")
    (later,) = await process_messages(runtime(walk), [raw])
    assert later.status == "duplicate"
    assert await Event.filter(kind=EventKind.REPLY).count() == 1
    assert len(alerts(walk)) == 1


async def test_alert_not_sent_is_retried_when_the_message_comes_again(walk: Walk) -> None:
    """SMTP down at alert time: the message stays to retry; the next pass sends the alert."""
    delivery = await sent_to(walk, "ada@example.com")
    raw = corpus("reply-de-gmail", delivery.message_id).replace(b"anna@beispiel.de",
                                                                 b"ada@example.com")  # fmt: skip
    walk.sink.fail_next("554 5.3.0 no", at="mail")
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.status, result.done) == ("retry", False)
    (again,) = await process_messages(runtime(walk), [raw])
    assert (again.status, again.done) == ("duplicate", True)
    assert len(alerts(walk)) == 1
    assert await Event.filter(kind=EventKind.REPLY).count() == 1


async def test_out_of_office_pauses_until_the_return_date_then_resumes(walk: Walk) -> None:
    delivery = await sent_to(walk, "ada@example.com")
    (result,) = await process_messages(
        runtime(walk), [corpus("auto-en-exchange", delivery.message_id)]
    )
    assert (result.kind, result.action) == (EventKind.AUTO_REPLY, "paused")
    enrollment = await Enrollment.get(lead__email="ada@example.com", active_lead__not_isnull=True)
    assert enrollment.state == EnrollmentState.PAUSED
    assert enrollment.next_due_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert (await walk.engine.run_due(MONDAY + timedelta(days=3)))["sent"] == 0
    await walk.engine.run_due(datetime(2026, 12, 1, 10, tzinfo=UTC))
    assert walk.subjects("ada@example.com") == ["intro", "a1"]
    assert (await Lead.get(email="ada@example.com")).status == LeadStatus.ACTIVE


async def test_out_of_office_without_a_date_pauses_for_the_configured_time(walk: Walk) -> None:
    delivery = await sent_to(walk, "ada@example.com")
    raw = corpus("auto-en-plain", delivery.message_id)  # matched by sender
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.kind, result.via, result.action) == (EventKind.AUTO_REPLY, "from", "paused")
    enrollment = await Enrollment.get(lead__email="ada@example.com", active_lead__not_isnull=True)
    assert enrollment.next_due_at == LATER + walk.app.settings.inbox.auto_reply_pause


async def test_hard_bounce_stops_the_lead_soft_does_not(walk: Walk) -> None:
    gone = await sent_to(walk, "gone@example.com")
    (soft,) = await process_messages(runtime(walk), [corpus("bounce-soft-full", gone.message_id)])
    assert (soft.kind, soft.via, soft.action) == (EventKind.BOUNCE, "thread", None)
    assert (await Lead.get(email="gone@example.com")).status == LeadStatus.ACTIVE
    (hard,) = await process_messages(
        runtime(walk), [corpus("bounce-hard-postfix", gone.message_id)]
    )
    assert hard.action == "bounced"
    assert (await Lead.get(email="gone@example.com")).status == LeadStatus.BOUNCED
    events = await Event.filter(kind=EventKind.BOUNCE).order_by("id")
    assert [(e.data["hard"], e.data["status"]) for e in events] == [
        (False, "4.2.2"),
        (True, "5.1.1"),
    ]
    assert events[1].delivery_id == gone.id


async def test_report_on_several_recipients_is_judged_by_our_lead(walk: Walk) -> None:
    """Someone else's dead address listed first: Ada's mailbox is full, she stays."""
    ada = await sent_to(walk, "ada@example.com")
    await walk.add("sales-old@example.com")  # a lead too: the first recipient listed
    raw = corpus("bounce-multi-recipient", ada.message_id)
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.kind, result.via, result.lead_id, result.action) == (
        EventKind.BOUNCE, "thread", ada.lead_id, None
    )  # fmt: skip
    event = await Event.get(kind=EventKind.BOUNCE)
    assert (event.data["hard"], event.data["status"], event.data["recipient"]) == (
        False, "4.2.2", "ada@example.com"
    )  # fmt: skip
    assert (await Lead.get(email="ada@example.com")).status == LeadStatus.ACTIVE
    assert (await Lead.get(email="sales-old@example.com")).status == LeadStatus.ACTIVE
    # The same report saying Ada got it: recorded, and neither a soft bounce nor a stop.
    delivered = raw.replace(b"Action: delayed\r\nStatus: 4.2.2", b"Action: delivered\r\n"
                            b"Status: 2.0.0").replace(b"dsn-", b"dsn-2-")  # fmt: skip
    delivered = delivered.replace(b"<20261124081200", b"<20261124081201")
    for _ in range(walk.app.settings.inbox.soft_bounce_limit):
        (again,) = await process_messages(runtime(walk), [delivered])
        delivered = delivered.replace(b"<2026112408120", b"<2026112408120x")
    assert (again.status, again.action) == ("recorded", None)
    assert (await Lead.get(email="ada@example.com")).status == LeadStatus.ACTIVE
    data = [e.data for e in await Event.filter(kind=EventKind.BOUNCE).order_by("id")]
    assert [d.get("delivered", False) for d in data] == [False, True, True, True]


async def test_delay_notice_is_a_soft_bounce_not_an_out_of_office(walk: Walk) -> None:
    """A postmaster's "not delivered yet" notice neither pauses the lead nor stops it."""
    gone = await sent_to(walk, "gone@example.com")
    raw = corpus("delay-en-exim", gone.message_id)
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.kind, result.delivery_id, result.action) == (EventKind.BOUNCE, gone.id, None)
    event = await Event.get(kind=EventKind.BOUNCE)
    assert (event.data["hard"], event.data["status"]) == (False, "4.2.2")
    enrollment = await Enrollment.get(lead__email="gone@example.com", active_lead__not_isnull=True)
    assert enrollment.state == EnrollmentState.ACTIVE
    assert await Event.filter(kind=EventKind.AUTO_REPLY).count() == 0


async def test_metrics_count_inbound_messages_by_kind(walk: Walk) -> None:
    """/metrics counts what the inbox recorded, by kind; a web unsubscribe (no inbound
    message) is not counted as inbound mail."""
    from nurtured import metrics
    from nurtured.reactions import Signal, react

    gone = await sent_to(walk, "gone@example.com")
    ada = await sent_to(walk, "ada@example.com")
    await process_messages(runtime(walk), [corpus("bounce-soft-full", gone.message_id)])
    await process_messages(runtime(walk), [corpus("bounce-hard-postfix", gone.message_id)])
    await process_messages(runtime(walk), [corpus("unsubscribe-fr-gmail", ada.message_id)])
    bea = await sent_to(walk, "bea@example.com")
    await react(walk.app, [Signal(bea.lead_id, EventKind.UNSUBSCRIBE, LATER)])  # by the web
    text = await metrics.render(LATER)
    assert 'nurtured_inbound_messages_total{kind="bounce"} 2' in text
    assert 'nurtured_inbound_messages_total{kind="unsubscribe"} 1' in text
    assert 'nurtured_inbound_messages_total{kind="reply"} 0' in text
    assert "nurtured_unsubscribes_total 2" in text


async def test_non_standard_bounce_matches_by_quoted_message_id(walk: Walk) -> None:
    gone = await sent_to(walk, "gone@example.com")
    raw = corpus("bounce-nonstandard-exim", gone.message_id)
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.kind, result.delivery_id, result.action) == (
        EventKind.BOUNCE,
        gone.id,
        "bounced",
    )


async def test_unsubscribe_in_words_opts_out_at_once(walk: Walk) -> None:
    delivery = await sent_to(walk, "ada@example.com")
    raw = corpus("unsubscribe-fr-gmail", delivery.message_id)
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.kind, result.action) == (EventKind.UNSUBSCRIBE, "unsubscribed")
    assert (await Lead.get(email="ada@example.com")).status == LeadStatus.UNSUBSCRIBED
    assert alerts(walk) == []


def complaint(name: str, delivery: Delivery, lead: str, message_id: str = "") -> bytes:
    raw = corpus(name, message_id or delivery.message_id)
    return raw.replace(b"REPLACE-TOKEN", delivery.token.encode()).replace(
        b"REPLACE-RCPT", lead.encode()
    )


async def test_feedback_loop_complaint_unsubscribes_at_once(walk: Walk) -> None:
    """Yahoo's ARF report (subject "FW: ...") is a complaint: matched by our Message-ID in
    the returned message, the lead unsubscribed and its stream ended; no reply, no alert."""
    delivery = await sent_to(walk, "ada@example.com")
    raw = complaint("complaint-yahoo-arf", delivery, "ada@example.com")
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.status, result.kind, result.via, result.delivery_id, result.action) == (
        "recorded", EventKind.COMPLAINT, "thread", delivery.id, "unsubscribed"
    )  # fmt: skip
    lead = await Lead.get(email="ada@example.com")
    assert lead.status == LeadStatus.UNSUBSCRIBED
    assert await Enrollment.filter(lead_id=lead.id, active_lead__not_isnull=True).count() == 0
    event = await Event.get(kind=EventKind.COMPLAINT)
    assert (event.data["feedback_type"], event.data["user_agent"]) == (
        "abuse", "Yahoo!-Mail-Feedback/2.0"
    )  # fmt: skip
    kinds = {e.kind for e in await Event.filter(lead_id=lead.id)}
    assert not kinds & {EventKind.REPLY, EventKind.FORWARD, EventKind.ALERT}
    assert alerts(walk) == []
    assert lead.score == 0
    await walk.engine.run_due(MONDAY + timedelta(days=5))
    assert walk.subjects("ada@example.com") == ["intro"]
    from nurtured import metrics

    assert 'nurtured_inbound_messages_total{kind="complaint"} 1' in await metrics.render(LATER)


async def test_complaint_with_redacted_headers_matches_by_token(walk: Walk) -> None:
    """Microsoft's report: recipient redacted, Message-ID not ours; the Reply-To token."""
    delivery = await sent_to(walk, "ada@example.com")
    await walk.add("bea@example.com")  # the report's sender domain is nobody's
    raw = complaint("complaint-microsoft-arf", delivery, "redacted@hotmail.com",
                    "<0a1b2c@BAY004-MC1F12.hotmail.com>")  # fmt: skip
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.kind, result.via, result.delivery_id, result.action) == (
        EventKind.COMPLAINT, "token", delivery.id, "unsubscribed"
    )  # fmt: skip
    assert (await Lead.get(email="ada@example.com")).status == LeadStatus.UNSUBSCRIBED
    assert (await Lead.get(email="bea@example.com")).status == LeadStatus.ACTIVE


async def test_not_spam_feedback_report_changes_nothing(walk: Walk) -> None:
    """A "not-spam" report is recorded, but it is no complaint: the lead stays."""
    delivery = await sent_to(walk, "ada@example.com")
    raw = complaint("complaint-yahoo-arf", delivery, "ada@example.com")
    (result,) = await process_messages(
        runtime(walk), [raw.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")]
    )
    assert (result.kind, result.action) == (EventKind.COMPLAINT, None)
    assert (await Lead.get(email="ada@example.com")).status == LeadStatus.ACTIVE


async def test_colleague_is_recorded_as_forward_on_the_lead(walk: Walk) -> None:
    """Tom at the lead's company writes without any thread: linked to the lead by domain."""
    await sent_to(walk, "anna@beispiel.de")
    raw = (
        (CORPUS / "forward-de-gmail.eml")
        .read_bytes()
        .replace(b"References: <REPLACE-ME@acme.example>\r\n", b"")
    )
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.kind, result.via) == (EventKind.FORWARD, "company")
    lead = await Lead.get(email="anna@beispiel.de")
    assert lead.status == LeadStatus.ACTIVE
    assert lead.score == walk.app.settings.scoring.forward


async def test_token_in_plus_address_matches(walk: Walk) -> None:
    delivery = await sent_to(walk, "ada@example.com")
    raw = (
        f"From: someone@elsewhere.example\r\nTo: replies+{delivery.token}@acme.example\r\n"
        "Subject: hello\r\nMessage-ID: <t1@elsewhere.example>\r\n\r\nCall me.\r\n"
    ).encode()
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.via, result.lead_id, result.kind) == ("token", delivery.lead_id, EventKind.REPLY)


@pytest.mark.parametrize("header", ["To", "Delivered-To", "X-Original-To"])
async def test_bounce_to_the_verp_sender_matches_the_delivery_by_token(
    walk: Walk, header: str
) -> None:
    """A DSN sent back to ``bounces+TOKEN@acme.example``, with no In-Reply-To and no
    returned headers: the token names the delivery; the hard bounce stops the lead."""
    gone = await sent_to(walk, "gone@example.com")
    verp = f"bounces+{gone.token}@acme.example"
    to = f"To: {verp}" if header == "To" else f"To: hello@acme.example\r\n{header}: {verp}"
    raw = (
        "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        f"{to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <verp-dsn@mx.example.net>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--r--\r\n"
    ).encode()
    assert gone.message_id.encode() not in raw
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.kind, result.via, result.delivery_id, result.action) == (
        EventKind.BOUNCE, "token", gone.id, "bounced"
    )  # fmt: skip
    assert (await Lead.get(email="gone@example.com")).status == LeadStatus.BOUNCED
    event = await Event.get(kind=EventKind.BOUNCE)
    assert event.delivery_id == gone.id


async def test_unknown_sender_is_unmatched_and_changes_nothing(walk: Walk) -> None:
    await sent_to(walk, "ada@example.com")
    raw = b"From: x@gmail.com\r\nSubject: hi\r\nMessage-ID: <u1@x>\r\n\r\nwho are you?\r\n"
    (result,) = await process_messages(runtime(walk), [raw])
    assert (result.status, result.lead_id, result.done) == ("unmatched", None, True)
    assert await Event.filter(kind__in=[EventKind.REPLY, EventKind.FORWARD]).count() == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda h, b: h + b"\r\n\r\n" + b, st.binary(max_size=400), st.binary(max_size=400)),
    st.sampled_from([
        b"",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain; "
        b"charset=x-no-such-charset\r\n\r\n\xff\xfe\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=q\r\n\r\n"
        b"--q\r\nContent-Type: message/delivery-status\r\n\r\nStatus: garbage\r\n--q",
        b"Subject: =?utf-8?b?!!!?=\r\nFrom: <<<@@>>>\r\nIn-Reply-To: <"
        + b"a" * 5000
        + b">\r\n\r\n",
        b"From: ada@example.com\r\nDate: Mon, 99 Foo 20260 99:99:99\r\n\r\n" + b"x" * 2_000_000,
    ]),
))  # fmt: skip
async def test_garbage_never_raises_and_is_reported(walk: Walk, raw: bytes) -> None:
    """Malformed MIME, unknown charsets, huge or empty input: a Result, never an exception."""
    (result,) = await process_messages(runtime(walk), [raw])
    assert result.done
    assert result.status in ("recorded", "unmatched", "duplicate")


@given(raw=st.binary(max_size=5000))
def test_parse_and_classify_never_raise(raw: bytes) -> None:
    classify(parse(raw), MONDAY)


async def test_maildir_source_marks_after_commit(walk: Walk, tmp_path: Path) -> None:
    """new/ -> cur/ with S after processing; unmatched also F; nothing is read twice."""
    delivery = await sent_to(walk, "ada@example.com")
    maildir = tmp_path / "inbox"
    source = MaildirSource(maildir)
    await source.open()
    (maildir / "new" / "1.reply").write_bytes(corpus("reply-en-gmail", delivery.message_id))
    (maildir / "new" / "2.spam").write_bytes(b"From: x@gmail.com\r\n\r\nbuy\r\n")
    await drain(runtime(walk), source)
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == ["1.reply:2,S", "2.spam:2,FS"]
    assert list((maildir / "new").iterdir()) == []
    await drain(runtime(walk), source)
    assert await Event.filter(kind=EventKind.REPLY).count() == 1
    stop = asyncio.Event()
    stop.set()
    await source.wait(stop)
