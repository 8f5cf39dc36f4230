"""What a lead's reply means, end to end through the inbox (real-looking replies)."""

from __future__ import annotations

from datetime import UTC, datetime

from nurtured.app import Runtime
from nurtured.inbox import process_messages
from nurtured.models import Delivery, Enrollment, EnrollmentState, Event, EventKind, Lead
from nurtured.queries import lead_timeline
from tests.walk import MONDAY, Walk

LATER = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def reply(delivery: Delivery, text: str, sender: str = "ada@example.com", lang: str = "") -> bytes:
    header = f"Content-Language: {lang}\r\n" if lang else ""
    return (
        f"From: Ada <{sender}>\r\nTo: replies+{delivery.token}@acme.example\r\n"
        f"Subject: Re: intro\r\nMessage-ID: <{abs(hash(text))}@example.com>\r\n"
        f"In-Reply-To: {delivery.message_id}\r\n{header}"
        f"Date: Mon, 23 Nov 2026 11:00:00 +0000\r\n\r\n{text}\r\n"
    ).encode()


async def answered(walk: Walk, text: str, lang: str = "") -> Lead:
    await walk.add("ada@example.com")
    await walk.engine.run_due(MONDAY)
    delivery = await Delivery.get(lead__email="ada@example.com")
    runtime = Runtime(walk.app, walk.transport, clock=lambda: LATER)
    await process_messages(runtime, [reply(delivery, text, lang=lang)])
    return await Lead.get(email="ada@example.com")


def alerts(walk: Walk) -> int:
    return sum(1 for m in walk.sink.messages if b"Auto-Submitted: auto-generated" in m.content)


async def test_later_pauses_until_the_month_named_and_tells_nobody(walk: Walk) -> None:
    lead = await answered(walk, "Not now, maybe get back to me in March.")
    event = await Event.get(lead_id=lead.id, kind=EventKind.REPLY)
    assert (event.data["intent"], event.data["later_until"]) == ("later", "2027-03-01")
    enrollment = await Enrollment.get(lead_id=lead.id, active_lead__not_isnull=True)
    assert enrollment.state == EnrollmentState.PAUSED
    assert enrollment.next_due_at == datetime(2027, 3, 1, tzinfo=UTC)
    assert alerts(walk) == 0
    profile = await lead_timeline(lead)
    (item,) = [i for i in profile["timeline"] if i["what"] == "reply"]
    assert (item["intent"], item["later_until"]) == ("later", "2027-03-01")


async def test_later_in_german(walk: Walk) -> None:
    lead = await answered(walk, "Im Moment nicht, melden Sie sich bitte im September wieder.",
                          lang="de")  # fmt: skip
    event = await Event.get(lead_id=lead.id, kind=EventKind.REPLY)
    assert (event.data["intent"], event.data["later_until"]) == ("later", "2027-09-01")


async def test_a_referral_creates_the_referred_lead_and_tells_sales(walk: Walk) -> None:
    lead = await answered(
        walk, "I'm not the right person. Please talk to our CTO, cto@example.com."
    )
    event = await Event.get(lead_id=lead.id, kind=EventKind.REPLY)
    assert (event.data["intent"], event.data["referral"]) == ("referral", "cto@example.com")
    cto = await Lead.get(email="cto@example.com")
    assert cto.source == "referral"
    assert cto.extra["referred_by"] == "ada@example.com"
    assert alerts(walk) == 1


async def test_not_interested_goes_long_term_without_an_alert(walk: Walk) -> None:
    lead = await answered(walk, "Kein Interesse, danke.", lang="de")
    event = await Event.get(lead_id=lead.id, kind=EventKind.REPLY)
    assert event.data["intent"] == "not_interested"
    enrollment = await Enrollment.get(lead_id=lead.id, active_lead__not_isnull=True)
    assert enrollment.stream_id == "long"
    assert alerts(walk) == 0


async def test_interested_scores_more_and_a_question_alerts(walk: Walk) -> None:
    lead = await answered(walk, "Sounds good. Can we set up a call next week to see a demo?")
    event = await Event.get(lead_id=lead.id, kind=EventKind.REPLY)
    assert event.data["intent"] == "interested"
    scoring = walk.app.settings.scoring
    assert lead.score == scoring.reply + scoring.interested
    assert alerts(walk) == 1


async def test_a_question_in_french_alerts_sales(walk: Walk) -> None:
    lead = await answered(walk, "Bonjour, est-ce que cela fonctionne aussi avec SAP ?", lang="fr")
    event = await Event.get(lead_id=lead.id, kind=EventKind.REPLY)
    assert event.data["intent"] == "question"
    assert alerts(walk) == 1
