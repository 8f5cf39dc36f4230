"""Merging two leads that are one person keeps every row of both histories, and the
no-repeat guarantee spans both: content either got is never sent to the survivor."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nurtured.data.merge import change_address, merge_leads, tombstone_email
from nurtured.exceptions import LeadError
from nurtured.models import (
    CURRENT,
    Delivery,
    Enrollment,
    Event,
    EventKind,
    Handoff,
    Lead,
    LeadStatus,
)

from .walk import MONDAY, Walk

HALF_LIFE = timedelta(days=30)


async def _two_histories(walk: Walk) -> tuple[Lead, Lead]:
    """Ada got intro; her old address got intro and a1 (and has a handoff and a click)."""
    keep = await walk.add("ada@new.example")
    other = await walk.add("ada@old.example", now=MONDAY - timedelta(days=3))
    await walk.engine.run_due(MONDAY - timedelta(days=3))  # old: intro
    await walk.engine.run_due(MONDAY)  # new: intro; old: a1
    assert walk.subjects("ada@new.example") == ["intro"]
    assert walk.subjects("ada@old.example") == ["intro", "a1"]
    await Handoff.create(lead_id=other.id, owner="sales@acme.example", handed_at=MONDAY,
                         deadline=MONDAY + timedelta(days=1), state="returned")  # fmt: skip
    delivery = await Delivery.get(lead_id=other.id, content_id="a1")
    await Event.create(lead_id=other.id, delivery_id=delivery.id, kind=EventKind.CLICK,
                       occurred_at=MONDAY, data={"tag": "interest:b"})  # fmt: skip
    await Lead.filter(id=other.id).update(score=40, score_at=MONDAY, title="CFO")
    return await Lead.get(id=keep.id), await Lead.get(id=other.id)


async def test_merge_keeps_both_histories_and_never_repeats_content(walk: Walk) -> None:
    """Every delivery, event, enrollment and handoff is kept; the duplicate intro stays on
    the merged row (the unique key holds); the survivor never gets intro or a1 again."""
    keep, other = await _two_histories(walk)
    counts = {m: await m.all().count() for m in (Delivery, Event, Enrollment, Handoff)}
    apart = await merge_leads(keep, other, MONDAY, HALF_LIFE)
    assert apart == 1  # both got intro
    for model, count in counts.items():
        extra = 1 if model is Event else 0  # the MERGED event
        assert await model.all().count() == count + extra, model
    assert sorted(await Delivery.filter(lead_id=keep.id).values_list("content_id", flat=True)
                  ) == ["a1", "intro"]  # fmt: skip
    assert await Handoff.filter(lead_id=keep.id).count() == 1
    assert await Event.filter(lead_id=keep.id, kind=EventKind.CLICK).count() == 1
    tomb = await Lead.get(id=other.id)
    assert tomb.status == LeadStatus.MERGED
    assert tomb.email == tombstone_email(other.id)
    assert tomb.title == ""
    assert await Delivery.filter(lead_id=other.id).values_list("content_id", flat=True) == ["intro"]
    survivor = await Lead.get(id=keep.id)
    assert survivor.title == "CFO"  # a blank filled from the other
    assert survivor.score == 40
    assert await Enrollment.filter(lead_id__in=[keep.id, other.id], state__in=CURRENT
                                   ).count() == 1  # fmt: skip
    for day in range(1, 60):
        await walk.engine.run_due(MONDAY + timedelta(days=day))
    got = walk.subjects("ada@new.example")
    assert got.count("intro") == 1
    assert "a1" not in got  # the old address had it
    assert "a2" in got  # the stream went on where the joint history left it


async def test_merge_without_shared_content_deletes_the_other_row(walk: Walk) -> None:
    """Nothing to keep apart: the other lead row goes, all its rows point at the survivor."""
    keep = await walk.add("one@example.com", interest="b")
    other = await walk.add("two@example.com", interest="a")
    await Delivery.create(lead_id=other.id, content_id="a1", stream_id="a", step_index=1,
                          token="t1", message_id="<t1@x>", claimed_at=MONDAY)  # fmt: skip
    assert await merge_leads(keep, other, MONDAY, HALF_LIFE) == 0
    assert await Lead.get_or_none(id=other.id) is None
    assert await Delivery.filter(lead_id=keep.id, content_id="a1").exists()
    merged = await Event.get(lead_id=keep.id, kind=EventKind.MERGED)
    assert merged.data == {"from_lead": other.id, "kept_apart": 0}


async def test_an_address_change_into_an_existing_lead_merges_it(walk: Walk) -> None:
    """`lead set OLD email=NEW`: a new address; a lead already at NEW is merged in."""
    lead = await walk.add("carl@old.example")
    assert await change_address(lead, "carl@new.example", MONDAY, HALF_LIFE) == "changed"
    assert (await Lead.get(id=lead.id)).email == "carl@new.example"
    twin = await walk.add("carl@work.example")
    await walk.engine.run_due(MONDAY)
    how = await change_address(lead, "carl@work.example", MONDAY, HALF_LIFE)
    assert "merged in" in how
    assert (await Lead.get(id=lead.id)).email == "carl@work.example"
    assert await Delivery.filter(lead_id=lead.id).count() == 1  # intro; the twin's stays
    assert (await Lead.get(id=twin.id)).status == LeadStatus.MERGED
    with pytest.raises(LeadError):
        await merge_leads(lead, lead, MONDAY, HALF_LIFE)


async def test_the_report_counts_a_merged_person_once_and_both_emails(walk: Walk) -> None:
    """The merged row keeps the old address's intro (the survivor got intro too): the
    report still counts three emails, but two people were new and mailed, not three."""
    from nurtured.report import build
    from nurtured.report.queries import Period

    keep, other = await _two_histories(walk)
    await walk.add("bob@example.com", now=MONDAY - timedelta(days=3))
    await walk.engine.run_due(MONDAY - timedelta(days=3))  # bob: intro
    period = Period(MONDAY - timedelta(days=7), MONDAY + timedelta(days=1))
    before = await build.build(walk.app, period)
    assert before["emails"]["sent"] == 4  # ada new: intro; ada old: intro, a1; bob: intro
    assert before["emails"]["leads"] == 3
    assert (before["funnel"]["total"]["new"], before["funnel"]["total"]["mailed"]) == (3, 3)

    await merge_leads(keep, other, MONDAY, HALF_LIFE)
    after = await build.build(walk.app, period)
    assert after["emails"]["sent"] == 4  # every email sent stays counted
    assert after["emails"]["leads"] == 2  # ada (both addresses) and bob
    assert (after["funnel"]["total"]["new"], after["funnel"]["total"]["mailed"]) == (2, 2)
