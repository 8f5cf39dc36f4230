"""The report's numbers: distinct leads per stage, rates per email sent (human opens and
clicks only), bounces by class, emails before handoff, last-touch and touch paths."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from nurtured.models import Delivery, EventKind, Handoff, HandoffState, Lead, LeadStage, LeadStatus
from nurtured.reactions import Signal, react
from nurtured.report import build
from nurtured.report.queries import Period
from tests.walk import MONDAY, Walk

LATER = MONDAY + timedelta(days=2, hours=1)  # after intro (Monday) and a1 (Wednesday)
WEEK = Period(MONDAY - timedelta(days=1), MONDAY + timedelta(days=6))


async def scenario(walk: Walk) -> dict[str, Lead]:
    """Four leads of stream a, two emails each; ada clicks her way to sales and is won,
    bob replies, carol unsubscribes, dave bounces (policy, soft, then hard)."""
    names = ("ada", "bob", "carol", "dave")
    leads = {name: await walk.add(f"{name}@example.com") for name in names}
    await walk.engine.run_due(MONDAY)
    await walk.engine.run_due(MONDAY + timedelta(days=2))  # intro, then a1, to all four
    sent = {(d.lead_id, d.content_id): d.id for d in await Delivery.all()}
    ada, bob, carol, dave = (leads[n].id for n in ("ada", "bob", "carol", "dave"))
    await react(walk.app, [
        Signal(ada, EventKind.CLICK, LATER, sent[ada, "intro"], machine=True),
        *[Signal(ada, EventKind.CLICK, LATER, sent[ada, "intro"]) for _ in range(20)],
        Signal(ada, EventKind.OPEN, LATER, sent[ada, "a1"]),
        Signal(bob, EventKind.REPLY, LATER),  # matched by sender: counts for bob's last email
        Signal(carol, EventKind.UNSUBSCRIBE, LATER, sent[carol, "intro"]),
        Signal(dave, EventKind.BOUNCE, LATER, sent[dave, "intro"],
               data={"hard": False, "policy": True, "status": "5.7.1"}),
        Signal(dave, EventKind.BOUNCE, LATER, sent[dave, "intro"],
               data={"hard": False, "status": "4.2.2"}),
        Signal(dave, EventKind.BOUNCE, LATER, sent[dave, "a1"], data={"hard": True}),
    ])  # fmt: skip
    await Handoff.create(lead_id=ada, owner="sam@acme.example", handed_at=LATER,
                         deadline=LATER + timedelta(days=1), state=HandoffState.WON,
                         closed_at=LATER + timedelta(hours=3), amount=Decimal(1000))  # fmt: skip
    await Lead.filter(id=ada).update(stage=LeadStage.WON, status=LeadStatus.SALES)
    return leads


async def test_counts_leads_and_emails_with_rates_per_email_sent(walk: Walk) -> None:
    await scenario(walk)
    data = await build.build(walk.app, WEEK)

    assert data["funnel"]["total"] == {
        "new": 4, "mailed": 4, "opened": 1, "clicked": 1, "replied": 1, "mql": 1, "sql": 1,
        "won": 1, "unsubscribed": 1, "bounced": 1,
    }  # fmt: skip
    assert data["funnel"]["by_source"]["webinar"]["clicked"] == 1  # 20 clicks, one lead
    emails = data["emails"]
    assert (emails["sent"], emails["leads"], emails["machine"]) == (8, 4, 1)
    assert emails["rates"] == {"open": 0.125, "click": 0.125, "reply": 0.125,
                               "unsubscribe": 0.125, "bounce": 0.25}  # fmt: skip
    assert data["bounces"] == {
        "hard": {"notices": 1, "leads": 1, "emails": 1},
        "soft": {"notices": 1, "leads": 1, "emails": 1},
        "policy": {"notices": 1, "leads": 1, "emails": 1},
    }
    assert data["by_stream"]["a"]["sent"] == 8
    assert data["by_source"]["webinar"]["leads"] == 4
    intro, a1 = data["by_step"]["a #0 intro"], data["by_step"]["a #1 a1"]
    assert (intro["sent"], intro["clicked"], intro["unsubscribed"], intro["opened"]) == (4, 1, 1, 0)
    assert (a1["sent"], a1["opened"], a1["replied"]) == (4, 1, 1)
    assert sum(day["sent"] for day in data["by_day"].values()) == 8
    assert list(data["by_day"]) == ["2026-11-23", "2026-11-25"]


async def test_emails_before_handoff_and_attribution(walk: Walk) -> None:
    await scenario(walk)
    data = await build.build(walk.app, WEEK)

    before = data["before"]
    assert before["handoff"] == {"outcomes": 1, "average": 2.0, "median": 2.0,
                                 "distribution": {"2": 1}}  # fmt: skip
    assert before["won"]["outcomes"] == before["mql"]["outcomes"] == 1
    assert before["reply"]["average"] == 2.0
    assert data["last_touch"] == {"reply": {"a1": 1}, "mql": {"a1": 1}, "handoff": {"a1": 1},
                                  "won": {"a1": 1}}  # fmt: skip
    assert data["paths"]["won"] == {"intro > a1": 1}  # in sending order
    assert data["sales"]["revenue"]["total"] == "1000.00"

    text = build.text(data)
    assert "leads: new 4, mailed 4, opened 1, clicked 1, replied 1, mql 1, sql 1, won 1" in text
    assert "emails: sent 8 to 4 leads; per email sent: open 12.5%, click 12.5%" in text
    assert "bounces: hard 1 (1 leads), soft 1 (1 leads), policy 1 (1 leads)" in text
    assert "emails before handoff: average 2.0, median 2.0, over 1" in text
    assert "1 won after: intro > a1" in text
    assert "revenue: 1000.00 from 1 won" in text


async def test_the_period_bounds_emails_and_events(walk: Walk) -> None:
    """Only emails sent in [since, until) and events in it count; an email's reactions
    count with the email."""
    await scenario(walk)
    wednesday = await build.core(Period(MONDAY + timedelta(days=1), MONDAY + timedelta(days=3)))
    emails = wednesday["emails"]
    assert (emails["sent"], emails["leads"]) == (4, 4)  # a1 only
    assert (wednesday["by_step"].keys(), emails["clicked"]) == ({"a #1 a1"}, 0)
    assert (emails["opened"], emails["replied"], emails["bounced"]) == (1, 1, 1)
    assert wednesday["funnel"]["total"]["new"] == 0

    monday = await build.core(Period(MONDAY - timedelta(days=1), MONDAY + timedelta(days=1)))
    assert (monday["emails"]["sent"], monday["emails"]["clicked"]) == (4, 0)  # clicks came later
    assert monday["before"]["handoff"]["outcomes"] == 0

    empty = await build.core(Period(MONDAY + timedelta(days=10), MONDAY + timedelta(days=11)))
    assert (empty["by_stream"], empty["before"]["handoff"]["average"]) == ({}, None)
    assert empty["emails"]["rates"]["open"] is None
    assert "per email sent: open -" in build.text(empty)


async def test_a_report_on_sqlite_reads_beside_an_open_write(walk: Walk) -> None:
    """On SQLite the report reads on a connection of its own: a transaction held open on
    the daemon's connection (the engine's claim, the click writer's batch) neither holds
    the report back nor shows it uncommitted rows. On PostgreSQL the pool does the same."""
    import asyncio

    from tortoise.transactions import in_transaction

    await scenario(walk)
    writing, done = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with in_transaction():
            await Lead.create(email="pending@example.com", source="webinar",
                              created_at=MONDAY, updated_at=MONDAY)  # fmt: skip
            writing.set()
            await done.wait()  # the transaction stays open until the report is built

    task = asyncio.create_task(writer())
    await writing.wait()
    try:
        data = await asyncio.wait_for(build.build(walk.app, WEEK), timeout=20)
    finally:
        done.set()
        await task
    assert data["funnel"]["total"]["new"] == 4  # not the uncommitted fifth
    after = await build.build(walk.app, WEEK)
    assert after["funnel"]["total"]["new"] == 5  # committed now
