"""The marketer's report: funnel by stream and source, handoff touches, last touch."""

from __future__ import annotations

from datetime import timedelta

from nurtured.models import Delivery, EventKind
from nurtured.reactions import Signal, react
from nurtured.reports import format_report, report
from tests.walk import MONDAY, Walk


async def test_funnel_attribution_and_machine_clicks_apart(walk: Walk) -> None:
    ada = await walk.add("ada@example.com")
    bob = await walk.add("bob@example.com")
    await walk.engine.run_due(MONDAY)
    await walk.engine.run_due(MONDAY + timedelta(days=2))  # a1 to both
    intro = await Delivery.get(lead_id=ada.id, content_id="intro")
    later = MONDAY + timedelta(days=2, hours=1)
    await react(walk.app, [
        Signal(ada.id, EventKind.CLICK, later, intro.id, machine=True),
        Signal(ada.id, EventKind.CLICK, later, intro.id),
        Signal(bob.id, EventKind.REPLY, later),
        *[Signal(ada.id, EventKind.CLICK, later) for _ in range(19)],  # 5 x 20 = 100
    ])  # fmt: skip

    data = await report(MONDAY - timedelta(days=1), MONDAY + timedelta(days=3))
    a = data["by_stream"]["a"]
    assert (a["entered"], a["sent"], a["clicked"], a["replied"]) == (2, 4, 20, 1)
    assert a["sales_ready"] == 1
    assert data["machine"] == {"clicked": 1}
    assert data["by_source"]["webinar"]["sent"] == 4
    assert data["touches_to_handoff"] == 2
    assert data["last_touch"] == {"reply": {"a1": 1}, "sales_ready": {"a1": 1}}
    text = format_report(data)
    assert "emails before handoff to sales, on average: 2" in text
    assert "machine (scanners, image proxies), not counted above: clicked 1" in text

    empty = await report(MONDAY + timedelta(days=10), MONDAY + timedelta(days=11))
    assert (empty["by_stream"], empty["touches_to_handoff"]) == ({}, None)
