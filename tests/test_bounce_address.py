"""Bounces come home: the envelope sender is a VERP address of the mailbox we read."""

from __future__ import annotations

import mailbox
from datetime import timedelta
from pathlib import Path

from nurtured.app import Runtime
from nurtured.config import load_config
from nurtured.inbox.runner import drain
from nurtured.inbox.source import MaildirSource
from nurtured.mailer import MaildirOutbox
from nurtured.models import Delivery, Event, EventKind, Lead, LeadStatus
from tests.walk import MONDAY, Walk, config, write_project

# A DSN as a receiving MTA writes it: addressed to the envelope sender only, quoting
# none of our headers (many MTAs return no content), so only the VERP address ties it
# to our email.
DSN = """\
Return-Path: <>
Delivered-To: {to}
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-1@mx.example.com>
Date: Mon, 23 Nov 2026 10:05:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system at host mx.example.com. Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; gone@example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.com>: Recipient address rejected

--B--
"""


def test_bounce_address_defaults_to_bounces_at_reply_to_domain(tmp_path: Path) -> None:
    """bounces+TOKEN@<reply_to's domain> by default; `bounce` and plus_address change it."""
    path = write_project(tmp_path, 2525)
    sender = load_config(path).sender
    assert sender.bounce_address == "bounces@acme.example"
    assert sender.bounce_for("T0KEN") == "bounces+T0KEN@acme.example"
    text = config(2525).replace(
        "[sender]", '[sender]\nbounce = "Bounces <dsn+x@mail.acme.example>"\nplus_address = false'
    )
    (tmp_path / "config.toml").write_text(text)
    sender = load_config(path).sender
    assert sender.bounce_for("T0KEN") == "dsn+x@mail.acme.example"


async def test_mail_from_is_the_verp_bounce_address(walk: Walk) -> None:
    """MAIL FROM (so Return-Path) is bounces+<delivery token>@domain, not the From address."""
    await walk.add("ada@example.com")
    await walk.engine.run_due(MONDAY)
    delivery = await Delivery.get(lead__email="ada@example.com")
    (envelope,) = walk.sink.messages
    assert envelope.mail_from == f"bounces+{delivery.token}@acme.example"
    (message,) = walk.received("ada@example.com")
    assert message["From"] == "Acme <hello@acme.example>"


async def test_the_outbox_records_the_bounce_address_as_return_path(tmp_path: Path) -> None:
    outbox = MaildirOutbox(tmp_path / "outbox")
    await outbox.start()
    await outbox.send(b"Subject: x\r\n\r\nhi\r\n", sender="bounces+T@acme.example",
                      recipients=["ada@example.com"])  # fmt: skip
    (message,) = mailbox.Maildir(tmp_path / "outbox").values()
    assert message["Return-Path"] == "<bounces+T@acme.example>"


async def test_a_dsn_to_the_envelope_sender_marks_the_lead(walk: Walk, tmp_path: Path) -> None:
    """A DSN delivered to MAIL FROM lands in the inbox we read and bounces the lead."""
    await walk.add("gone@example.com")
    await walk.engine.run_due(MONDAY)
    (envelope,) = walk.sink.messages
    inbox = tmp_path / "inbox"
    source = MaildirSource(inbox)
    await source.open()
    (inbox / "new" / "1.dsn").write_text(DSN.format(to=envelope.mail_from))
    now = MONDAY + timedelta(minutes=10)
    await drain(Runtime(walk.app, walk.transport, clock=lambda: now), source)
    lead = await Lead.get(email="gone@example.com")
    assert lead.status == LeadStatus.BOUNCED
    event = await Event.get(kind=EventKind.BOUNCE)
    assert event.lead_id == lead.id
    assert event.delivery_id == (await Delivery.get(lead_id=lead.id)).id
