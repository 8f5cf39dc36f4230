"""``lead export`` holds everything about a person; ``lead erase`` leaves no personal data
in any column of any table, nor in the SQLite file or its write-ahead log, keeps the
counts, and the person is never mailed again."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections

from nurtured.data.privacy import erase_lead, export_lead
from nurtured.data.relations import dumps
from nurtured.db import sqlite_path
from nurtured.intake import make_input, upsert
from nurtured.models import Delivery, Event, EventKind, Handoff, Lead, Link, Suppression

from .walk import MONDAY, Walk

EMAIL = "zebulon.quixley@example.org"
NEEDLES = re.compile(rb"(?i)zebulon|quixley|yak shaver|quixcorp|wants q3 only")


async def _person(walk: Walk) -> Lead:
    """A lead with a profile, emails sent, a reply, a click on a personal link, a handoff."""
    item = make_input({"email": EMAIL, "first_name": "Zebulon", "last_name": "Quixley",
                       "title": "Chief Yak Shaver", "company": "Quixcorp Ltd",
                       "interest": "a", "source": "webinar",
                       "note": "call Zebulon at noon"})  # fmt: skip
    _, (lead,) = await upsert([item], walk.app.catalog, walk.app.rules, MONDAY)
    await walk.engine.run_due(MONDAY)
    delivery = await Delivery.get(lead_id=lead.id)
    await Link.create(delivery_id=delivery.id, index=9,
                      url=f"https://acme.example/offer?who={EMAIL}")  # fmt: skip
    await Event.create(lead_id=lead.id, delivery_id=delivery.id, kind=EventKind.REPLY,
                       occurred_at=MONDAY + timedelta(hours=1), ref="<CAq@mail.quixley.example>",
                       data={"text": "Zebulon Quixley here: call me", "from": EMAIL,
                             "intent": "interested", "machine": False})  # fmt: skip
    await Handoff.create(lead_id=lead.id, owner="sales@acme.example", handed_at=MONDAY,
                         deadline=MONDAY + timedelta(days=1), state="returned",
                         reason="Zebulon wants Q3 only", category="timing")  # fmt: skip
    return lead


async def _every_value() -> list[tuple[str, str, Any]]:
    """(table, column, value) of every column of every table: nothing is left out."""
    conn = connections.get("default")
    found = []
    for model in Tortoise.apps["models"].values():
        table = model._meta.db_table
        _, rows = await conn.execute_query(f'SELECT * FROM "{table}"')
        for row in rows:
            for column, value in dict(row).items():
                found.append((table, column, value))
    return found


async def test_export_holds_every_table_and_is_logged_without_personal_data(walk: Walk) -> None:
    """The JSON names the lead, its deliveries, links, events and handoff; the EXPORTED
    event says how many rows, not whose."""
    lead = await _person(walk)
    data = json.loads(dumps(await export_lead(lead, MONDAY + timedelta(days=1))))
    assert data["leads"][0]["email"] == EMAIL
    assert data["companies"][0]["name"] == "Quixcorp Ltd"
    assert {"delivery", "event", "enrollment", "handoff", "link"} <= set(data["tables"])
    assert data["tables"]["handoff"][0]["reason"] == "Zebulon wants Q3 only"
    assert any(ev["kind"] == "reply" for ev in data["tables"]["event"])
    assert any("who=" in link["url"] for link in data["tables"]["link"])
    logged = await Event.get(lead_id=lead.id, kind=EventKind.EXPORTED)
    assert not NEEDLES.search(json.dumps(logged.data).encode())
    assert logged.data["rows"]["delivery"] == 1


async def test_erase_leaves_no_personal_data_anywhere(walk: Walk, db: str) -> None:
    """Every text column of every table, the db file and the -wal file: no trace of the
    person's address, name, title, company or words; the counts stay."""
    lead = await _person(walk)
    before = {m: await m.all().count() for m in (Delivery, Event, Handoff, Link)}
    assert any(NEEDLES.search(str(v).encode()) for _, _, v in await _every_value())
    counts = await erase_lead(lead, MONDAY + timedelta(days=2))
    assert counts["delivery"] == 1
    leaks = [(t, c, v) for t, c, v in await _every_value() if NEEDLES.search(str(v).encode())]
    assert leaks == []
    assert await Delivery.all().count() == before[Delivery]
    assert await Handoff.all().count() == before[Handoff]
    assert await Link.all().count() == before[Link]
    assert await Event.all().count() == before[Event] + 1  # ERASED, without personal data
    erased = await Lead.get(id=lead.id)
    assert erased.status == "unsubscribed"
    assert erased.source == "webinar"  # reports by source stay true
    assert await Suppression.filter(kind="hash").count() == 1
    path = sqlite_path(db)
    if path is not None:  # the PostgreSQL pass has no file to grep
        for name, data in _files(path).items():
            assert NEEDLES.search(data) is None, f"{name} still holds personal data"


def _files(path: str) -> dict[str, bytes]:
    """The database file and its write-ahead log (absent or empty after the checkpoint)."""
    found = {}
    for name in (path, path + "-wal"):
        file = Path(name)
        found[name] = file.read_bytes() if file.exists() else b""
    assert len(found[path]) > 0
    return found


async def test_an_erased_person_is_recognised_and_never_mailed_again(walk: Walk) -> None:
    """The hashed entry: the same address coming back through intake is not enrolled."""
    lead = await _person(walk)
    await erase_lead(lead, MONDAY + timedelta(days=2))
    item = make_input({"email": EMAIL.upper(), "interest": "a", "source": "webinar"})
    report, (_again,) = await upsert([item], walk.app.catalog, walk.app.rules, MONDAY)
    assert report.suppressed == {EMAIL: "erased"}
    assert report.enrolled == {}
    sent = len(walk.received(EMAIL))
    for day in range(3, 40, 3):
        await walk.engine.run_due(MONDAY + timedelta(days=day))
    assert len(walk.received(EMAIL)) == sent


async def test_erase_reaches_the_rows_a_merge_kept_apart(walk: Walk) -> None:
    """A merged lead's kept-apart delivery (its subject names the person) is scrubbed too."""
    from nurtured.data.merge import merge_leads

    lead = await _person(walk)
    item = make_input({"email": "zq@old.example", "first_name": "Zebulon", "interest": "a"})
    _, (old,) = await upsert([item], walk.app.catalog, walk.app.rules, MONDAY)
    await walk.engine.run_due(MONDAY)  # old gets intro too: "intro for Zebulon"
    assert await merge_leads(lead, old, MONDAY, timedelta(days=30)) == 1
    await erase_lead(lead, MONDAY + timedelta(days=2))
    leaks = [(t, c, v) for t, c, v in await _every_value() if NEEDLES.search(str(v).encode())]
    assert leaks == []
    assert await Delivery.filter(lead_id=old.id).count() == 1  # kept, without the name
