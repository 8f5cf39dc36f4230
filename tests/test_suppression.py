"""Suppression beats every path that could mail a lead: stream, move, return to nurture,
intake and import; checked at the send gate with one query per batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise import connections

from nurtured.config import load_config
from nurtured.config_sections import Suppression as SuppressionList
from nurtured.data import suppression
from nurtured.data.addresses import normal_domain, parent_domains
from nurtured.data.importing import import_csv
from nurtured.engine import Engine
from nurtured.enrollment import move_lead
from nurtured.exceptions import ConfigError
from nurtured.intake import make_input, upsert
from nurtured.models import (
    CURRENT,
    Enrollment,
    Handoff,
    Lead,
    LeadStatus,
    Suppression,
    SuppressionKind,
)
from nurtured.sales.commands import Command
from nurtured.sales.handoff import act

from .walk import MONDAY, Walk

LATER = MONDAY + timedelta(days=60)


async def _suppress(*entries: str) -> None:
    await suppression.add([suppression.parse_entry(e) for e in entries], MONDAY)


async def _current(lead: Lead) -> Enrollment | None:
    return await Enrollment.filter(lead_id=lead.id, state__in=CURRENT).first()


def test_entries_are_normalised_and_domains_cover_subdomains() -> None:
    """An address is lower-cased, an IDN domain punycoded; a domain covers its subdomains."""
    assert suppression.parse_entry(" Ada@Example.COM ") == (SuppressionKind.ADDRESS,
                                                             "ada@example.com")  # fmt: skip
    assert suppression.parse_entry("@Bücher.example") == (SuppressionKind.DOMAIN,
                                                           "xn--bcher-kva.example")  # fmt: skip
    assert parent_domains("mail.eu.example.com") == [
        "mail.eu.example.com", "eu.example.com", "example.com"]  # fmt: skip
    with pytest.raises(ValueError, match="not a domain"):
        normal_domain("localhost")


async def test_a_suppressed_lead_in_a_stream_gets_nothing_more(walk: Walk) -> None:
    """Stream: the first email went; after `suppress add` the next one never does."""
    lead = await walk.add("ada@example.com")
    await walk.engine.run_due(MONDAY)
    assert walk.subjects("ada@example.com") == ["intro"]
    await _suppress("ada@example.com")
    report = await walk.engine.run_due(LATER)
    assert report["suppressed"] == 1
    assert walk.subjects("ada@example.com") == ["intro"]
    assert await _current(lead) is None
    ended = await Enrollment.filter(lead_id=lead.id).order_by("-id").first()
    assert ended is not None
    assert ended.reason == "suppressed (address)"


async def test_a_config_domain_beats_a_move(walk: Walk) -> None:
    """Move: a lead moved after its domain is suppressed in config gets nothing."""
    settings = replace(walk.app.settings,
                       suppression=SuppressionList(domains=["corp.example"]))  # fmt: skip
    engine = Engine(settings=settings, catalog=walk.app.catalog, renderer=walk.app.renderer,
                    transport=walk.transport)  # fmt: skip
    lead = await walk.add("bob@eu.corp.example", interest="zzz")  # no entry rule but long
    await move_lead(lead, "b", walk.app.catalog, walk.app.rules, MONDAY)
    assert (await engine.run_due(MONDAY))["suppressed"] == 1
    assert walk.received("bob@eu.corp.example") == []


async def test_suppression_beats_a_return_to_nurture(walk: Walk) -> None:
    """Return to nurture: sales give a suppressed lead back; it is enrolled, never mailed."""
    lead = await walk.add("cy@example.com")
    await walk.engine.run_due(MONDAY)
    lead.status = LeadStatus.SALES
    await lead.save(update_fields=["status"])
    ended = Enrollment.filter(lead_id=lead.id, state__in=CURRENT)
    await ended.update(state="ended", active_lead=None)
    await Handoff.create(lead_id=lead.id, owner="sales@acme.example", handed_at=MONDAY,
                         deadline=MONDAY + timedelta(days=1))  # fmt: skip
    await _suppress("example.com")
    await act(walk.app, lead, Command("return", reason="timing", category="timing"),
              MONDAY + timedelta(days=1), actor="cli", via="cli")  # fmt: skip
    assert await _current(lead) is not None  # back in a stream ...
    await walk.engine.run_due(LATER)
    assert walk.subjects("cy@example.com") == ["intro"]  # ... and nothing more is sent


async def test_intake_stores_but_does_not_enroll_a_suppressed_address(walk: Walk) -> None:
    """Intake: the lead is kept, not enrolled, and the report says why."""
    await _suppress("blocked.example")
    item = make_input({"email": "dee@blocked.example", "interest": "a"})
    report, (lead,) = await upsert([item], walk.app.catalog, walk.app.rules, MONDAY)
    assert report.suppressed == {"dee@blocked.example": "domain blocked.example"}
    assert report.enrolled == {}
    assert await _current(lead) is None
    await walk.engine.run_due(LATER)
    assert walk.received("dee@blocked.example") == []


async def test_import_names_suppressed_lines_and_enrolls_the_rest(walk: Walk, tmp_path: Path
                                                                  ) -> None:  # fmt: skip
    """Import: the suppressed line is named, the other row is enrolled and mailed."""
    await _suppress("eve@example.com")
    path = tmp_path / "leads.csv"
    path.write_text("email,interest\nfay@example.com,a\neve@example.com,a\n")
    report = await import_csv(path, walk.app.catalog, walk.app.rules, MONDAY)
    assert "line 3: eve@example.com (address)" in report.summary()
    assert report.counts.enrolled == {"a": 1}
    await walk.engine.run_due(MONDAY)
    assert walk.subjects("fay@example.com") == ["intro"]
    assert walk.received("eve@example.com") == []


async def test_removing_an_entry_lets_a_move_mail_again(walk: Walk) -> None:
    """`suppress remove` takes an address off the list; a move then mails it."""
    lead = await walk.add("gus@example.com")
    await _suppress("gus@example.com")
    await walk.engine.run_due(MONDAY)
    assert await suppression.remove(SuppressionKind.ADDRESS, "gus@example.com") == 1
    assert await Suppression.all().count() == 0
    await move_lead(lead, "a", walk.app.catalog, walk.app.rules, MONDAY)
    await walk.engine.run_due(MONDAY)
    assert walk.subjects("gus@example.com") == ["intro"]


async def test_the_send_gate_asks_once_per_batch(walk: Walk, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:  # fmt: skip
    """One suppression query per batch, whatever the batch size (batch_size is 2 here)."""
    for i in range(6):
        await walk.add(f"lead{i}@example.com")
    await walk.engine.suppression.check(["warm@example.com"])  # the salt is read once
    conn = connections.get("default")
    queries: list[str] = []
    original = conn.execute_query

    async def counting(query: str, values: list[object] | None = None) -> object:
        queries.append(query)
        return await original(query, values)

    monkeypatch.setattr(conn, "execute_query", counting)
    report = await walk.engine.run_due(MONDAY)
    assert report["sent"] == 6
    assert sum('"suppression"' in q for q in queries) == 3  # 3 batches of 2


def test_config_entries_are_checked_with_their_key(project: Callable[..., Path]) -> None:
    """A bad [suppression] entry is a config error naming the key and the item."""
    path = project()
    text = path.read_text().replace("domains = []", 'domains = ["Corp.Example", "localhost"]')
    path.write_text(text.replace("addresses = []", 'addresses = ["Ada@Example.com"]'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert str(problem) == (
        "config.toml: suppression.domains[1]: 'localhost' is not a domain like example.com"
    )
    path.write_text(path.read_text().replace(', "localhost"', ""))
    settings = load_config(path).suppression
    assert (settings.addresses, settings.domains) == (["ada@example.com"], ["corp.example"])
