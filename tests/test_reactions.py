"""Signals (clicks, replies, auto-replies, bounces, unsubscribes) -> score, moves, alerts."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from nurtured.alerts import alert_sales, recipients
from nurtured.app import load_app
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
)
from nurtured.reactions import Signal, decayed, react
from tests.walk import MONDAY, STREAMS, Walk, write_project

REPLY = b"""\
From: Ada <ada@example.com>
To: replies@acme.example
Subject: Re: intro
Message-ID: <reply-1@example.com>

Yes please, call me on Tuesday.
"""


async def current(lead: Lead) -> Enrollment | None:
    return await Enrollment.filter(lead_id=lead.id, active_lead__not_isnull=True).first()


async def test_tagged_click_moves_lead_and_skips_what_it_received(walk: Walk) -> None:
    """A human click on an "interest:b" link moves A -> B; B starts after the shared intro."""
    lead = await walk.add("ada@example.com")
    await walk.engine.run_due(MONDAY)
    delivery = await Delivery.get(lead_id=lead.id)
    (outcome,) = await react(walk.app, [Signal(lead.id, EventKind.CLICK, MONDAY,
                                               delivery.id, tag="interest:b")])  # fmt: skip
    assert outcome.action == "move:b"
    assert outcome.score == 5
    enrollment = await current(lead)
    assert enrollment is not None
    assert (enrollment.stream_id, enrollment.position) == ("b", 1)
    await walk.engine.run_due(MONDAY + timedelta(days=1))
    assert walk.subjects("ada@example.com") == ["intro", "b1"]


async def test_machine_click_is_recorded_but_neither_scored_nor_acted_on(walk: Walk) -> None:
    lead = await walk.add("ada@example.com")
    (outcome,) = await react(walk.app, [Signal(lead.id, EventKind.CLICK, MONDAY,
                                               tag="interest:b", machine=True)])  # fmt: skip
    assert (outcome.action, outcome.score) == (None, 0)
    enrollment = await current(lead)
    assert enrollment is not None
    assert enrollment.stream_id == "a"
    event = await Event.get(lead_id=lead.id, kind=EventKind.CLICK)
    assert event.data == {"tag": "interest:b", "machine": True}


async def test_reply_stops_the_stream_and_alerts_sales_with_everything(walk: Walk) -> None:
    lead = await walk.add("ada@example.com")
    await walk.engine.run_due(MONDAY)
    later = MONDAY + timedelta(hours=3)
    signal = Signal(lead.id, EventKind.REPLY, later, data={"text": "Yes please, call me"},
                    ref="<reply-1@example.com>")  # fmt: skip
    (outcome,) = await react(walk.app, [signal])
    assert (outcome.action, outcome.alert, outcome.score) == ("replied", "reply", 30)
    assert (await Lead.get(id=lead.id)).status == LeadStatus.REPLIED
    assert await current(lead) is None

    await alert_sales(walk.app, walk.transport, lead.id, "reply", later,
                      text="Yes please, call me", original=REPLY)  # fmt: skip
    (alert,) = [m for m in walk.sink.messages if "hello@acme.example" in m.rcpt_tos]
    message: EmailMessage = email.message_from_bytes(alert.content, policy=policy.default)  # type: ignore[assignment]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Reply-To"] == "replies@acme.example"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "> Yes please, call me" in text
    assert "score:     30" in text
    assert "stage:     replied" in text
    assert "intro" in text  # every touch: the email it got
    attachments = list(message.iter_attachments())
    assert [a.get_content_type() for a in attachments] == ["message/rfc822"]
    assert await Event.filter(lead_id=lead.id, kind=EventKind.ALERT).count() == 1
    await walk.engine.run_due(MONDAY + timedelta(days=5))
    assert walk.subjects("ada@example.com") == ["intro"]  # nothing more after the reply


async def test_the_same_inbound_message_counts_once(walk: Walk) -> None:
    lead = await walk.add("ada@example.com")
    signal = Signal(lead.id, EventKind.REPLY, MONDAY, ref="<reply-1@example.com>")
    assert len(await react(walk.app, [signal, signal])) == 1
    assert await react(walk.app, [signal]) == []
    assert await Event.filter(kind=EventKind.REPLY).count() == 1


async def test_auto_reply_pauses_until_the_return_date_then_resumes(walk: Walk) -> None:
    lead = await walk.add("ada@example.com")
    await walk.engine.run_due(MONDAY)
    back = MONDAY + timedelta(days=10)
    await react(walk.app, [Signal(lead.id, EventKind.AUTO_REPLY, MONDAY,
                                  data={"until": back.isoformat()})])  # fmt: skip
    enrollment = await current(lead)
    assert enrollment is not None
    assert (enrollment.state, enrollment.next_due_at) == (EnrollmentState.PAUSED, back)
    await walk.engine.run_due(MONDAY + timedelta(days=3))  # a1 was due on day 2
    assert walk.subjects("ada@example.com") == ["intro"]
    await walk.engine.run_due(back)
    assert walk.subjects("ada@example.com") == ["intro", "a1"]


async def test_auto_reply_without_a_date_pauses_for_the_configured_time(walk: Walk) -> None:
    lead = await walk.add("ada@example.com")
    await react(walk.app, [Signal(lead.id, EventKind.AUTO_REPLY, MONDAY)])
    enrollment = await current(lead)
    assert enrollment is not None
    assert enrollment.next_due_at == MONDAY + timedelta(days=7)


async def test_soft_bounces_stop_a_lead_only_at_the_limit_hard_at_once(walk: Walk) -> None:
    soft = await walk.add("soft@example.com")
    hard = await walk.add("hard@example.com")
    for i in range(2):
        await react(walk.app, [Signal(soft.id, EventKind.BOUNCE, MONDAY + timedelta(days=i),
                                      data={"hard": False, "status": "4.2.2"})])  # fmt: skip
    assert (await Lead.get(id=soft.id)).status == LeadStatus.ACTIVE
    (third,) = await react(walk.app, [Signal(soft.id, EventKind.BOUNCE, MONDAY,
                                             data={"hard": False})])  # fmt: skip
    assert third.action == "bounced"
    dead = Signal(hard.id, EventKind.BOUNCE, MONDAY, data={"hard": True, "status": "5.1.1"})
    (outcome,) = await react(walk.app, [dead])
    assert outcome.action == "bounced"
    assert (await Lead.get(id=hard.id)).status == LeadStatus.BOUNCED


async def test_soft_bounces_count_in_a_row(walk: Walk) -> None:
    """soft_bounce_limit (3) counts soft bounces in a row: an email sent since the last
    one without bouncing starts the count again; a late bounce for an older email no
    longer counts; policy blocks never count."""
    lead = await walk.add("ada@example.com")
    sent: list[Delivery] = []

    async def send(day: int) -> Delivery:
        await walk.engine.run_due(MONDAY + timedelta(days=day))
        latest = await Delivery.filter(lead_id=lead.id).order_by("-id").first()
        assert latest is not None
        sent.append(latest)
        return latest

    async def bounce(delivery: Delivery | None, day: int, **data: Any) -> str | None:
        signal = Signal(lead.id, EventKind.BOUNCE, MONDAY + timedelta(days=day, hours=1),
                        delivery.id if delivery else None,
                        data={"hard": False, "status": "4.2.2", **data})  # fmt: skip
        (outcome,) = await react(walk.app, [signal])
        return outcome.action

    intro, a1 = await send(0), await send(2)
    assert await bounce(intro, 2) is None
    assert await bounce(a1, 2) is None  # two in a row
    a2 = await send(4)  # sent, and no bounce comes back for it
    b1 = await send(5)
    assert walk.subjects("ada@example.com") == ["intro", "a1", "a2", "b1"]
    assert await bounce(b1, 5) is None  # one in a row: a2 started the count again
    assert await bounce(intro, 5) is None  # a late one for an email before a2: not counted
    assert await bounce(None, 6, policy=True, status="5.7.1") is None  # never counts
    assert await bounce(None, 6) is None  # two (matched by address, placed by arrival)
    assert await bounce(None, 7) == "bounced"  # three in a row
    event = await Event.get(lead_id=lead.id, kind=EventKind.ENDED)
    assert event.data["reason"] == "3 soft bounces in a row"
    assert a2.status == DeliveryStatus.SENT


async def test_score_decays_and_crossing_the_threshold_hands_the_lead_to_sales(
    walk: Walk,
) -> None:
    assert decayed(100, MONDAY, MONDAY + timedelta(days=30), timedelta(days=30)) == 50
    assert decayed(100, None, MONDAY, timedelta(days=30)) == 100
    lead = await walk.add("ada@example.com")
    clicks = [Signal(lead.id, EventKind.CLICK, MONDAY) for _ in range(10)]
    outcomes = await react(walk.app, clicks)
    assert [o.score for o in outcomes][-2:] == [45, 50]
    # Thirty days later the 50 points are worth 25: a reply (30) does not reach 100 ...
    (reply,) = await react(walk.app, [Signal(lead.id, EventKind.FORWARD,
                                             MONDAY + timedelta(days=30))])  # fmt: skip
    assert reply.score == 25 + 20
    # ... but a burst of interest does, and sales hear of it.
    burst = [Signal(lead.id, EventKind.CLICK, MONDAY + timedelta(days=30)) for _ in range(11)]
    outcomes = await react(walk.app, burst)
    assert outcomes[-1].alert == "sales_ready"
    assert (await Lead.get(id=lead.id)).status == LeadStatus.SALES
    assert await Event.filter(lead_id=lead.id, kind=EventKind.SALES_READY).count() == 1


async def test_unsubscribe_while_being_sent_to_is_kept(walk: Walk) -> None:
    """A lead who unsubscribes while the engine is sending to it stays unsubscribed."""
    lead = await walk.add("ada@example.com")
    original = walk.engine.transport

    class UnsubscribeMidSend:
        async def start(self) -> None: ...
        async def close(self) -> None: ...
        async def send(self, message: Any, *, sender: str, recipients: Any) -> None:
            await react(walk.app, [Signal(lead.id, EventKind.UNSUBSCRIBE, MONDAY)])
            await original.send(message, sender=sender, recipients=recipients)

    walk.engine.transport = UnsubscribeMidSend()
    report = await walk.engine.run_due(MONDAY)
    assert report["sent"] == 1
    assert (await Delivery.get(lead_id=lead.id)).status == DeliveryStatus.SENT
    assert (await Lead.get(id=lead.id)).status == LeadStatus.UNSUBSCRIBED
    assert await current(lead) is None
    walk.engine.transport = original
    await walk.engine.run_due(MONDAY + timedelta(days=3))
    assert walk.subjects("ada@example.com") == ["intro"]


async def test_alert_recipients_follow_owner_then_rules(walk: Walk) -> None:
    lead = await walk.add("ada@example.com")
    assert recipients(walk.app, lead) == ["hello@acme.example"]  # nothing configured
    lead.extra = {"owner": "sam@acme.example"}
    assert recipients(walk.app, lead) == ["sam@acme.example"]


async def test_click_and_score_transitions_pause_and_end(
    tmp_path: Path, db: str, smtp_sink: Any
) -> None:
    """on_click can pause (for a time) or end the stream; on_score fires at its threshold."""
    stream_a = STREAMS["streams/a.toml"].replace(
        'on_click = { "interest:b" = "move:b" }',
        'on_click = { "later" = "pause:3d", "stop" = "end", "hold" = "pause" }\n'
        '        on_score = [{ at = 12, then = "move:b" }]',
    )
    app = load_app(write_project(tmp_path, smtp_sink.port, **{"streams/a.toml": stream_a}))
    item = make_input({"email": "ada@example.com", "interest": "a"})
    _, (ada,) = await upsert([item], app.catalog, app.rules, MONDAY)
    (paused,) = await react(app, [Signal(ada.id, EventKind.CLICK, MONDAY, tag="later")])
    assert paused.action == "pause:3d"
    enrollment = await current(ada)
    assert enrollment is not None
    assert (enrollment.state, enrollment.next_due_at) == (
        EnrollmentState.PAUSED, MONDAY + timedelta(days=3)
    )  # fmt: skip
    (held,) = await react(app, [Signal(ada.id, EventKind.CLICK, MONDAY, tag="hold")])
    assert held.action == "pause"
    enrollment = await current(ada)
    assert enrollment is not None
    assert enrollment.next_due_at is None  # until someone wakes it
    # 5 + 5 (two clicks above) + 5 crosses 12: on_score moves the lead to b.
    (scored,) = await react(app, [Signal(ada.id, EventKind.CLICK, MONDAY)])
    assert (scored.score, scored.action) == (15, "move:b")

    _, (bob,) = await upsert([make_input({"email": "bob@example.com", "interest": "a"})],
                             app.catalog, app.rules, MONDAY)  # fmt: skip
    (ended,) = await react(app, [Signal(bob.id, EventKind.CLICK, MONDAY, tag="stop")])
    assert ended.action == "end"
    assert await current(bob) is None
    assert (await Lead.get(id=bob.id)).status == LeadStatus.ACTIVE  # stream over, lead kept
