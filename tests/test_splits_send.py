"""Split tests on the send path, against a real SMTP server: each lead's variant, no
repeat whatever the variant, the winner rule flipping sends, and the per-variant report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nurtured.app import load_app, make_transport
from nurtured.engine import Engine
from nurtured.enrollment import move_lead
from nurtured.models import Delivery, Event, EventKind
from nurtured.splits.report import format_variants, variants_report
from nurtured.splits.spec import choose, split_key
from tests.walk import MONDAY, STREAMS, Walk, config, write_project

SPLIT_A = STREAMS["streams/a.toml"].replace(
    """        [[steps]]
        content = "intro"
""",
    """        [[steps]]
        content = "intro"
        variants = [ { id = "x" }, { id = "y", subject = "Y subject" } ]
        winner = { metric = "click", min_sample = 10, confidence = 0.95 }
""",
    1,
)


@pytest.fixture
async def split(tmp_path: Path, db: str, smtp_sink: Any) -> AsyncIterator[Walk]:
    """The walk project with a split test on stream a's first step, batches of 8."""
    settings = config(smtp_sink.port).replace("batch_size = 2", "batch_size = 8")
    files = {"config.toml": settings, "streams/a.toml": SPLIT_A}
    app = load_app(write_project(tmp_path, smtp_sink.port, **files))
    transport = make_transport(app.settings)
    await transport.start()
    try:
        yield Walk(app, new_engine(app, transport), transport, smtp_sink)
    finally:
        await transport.close()


def new_engine(app: Any, transport: Any) -> Engine:
    return Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                  transport=transport)  # fmt: skip


def expected(address: str) -> str:
    from nurtured.splits.spec import Variant

    variants = (Variant("x", "intro", None, 1.0), Variant("y", "intro", "Y subject", 1.0))
    return choose(variants, split_key(address, "a", "intro")).id


async def test_each_lead_gets_its_hashed_variant_stored_on_the_delivery(split: Walk) -> None:
    """The variant is the hash's, stored on the delivery; its subject is sent; rerun sends none."""
    addresses = [f"lead{i}@example.com" for i in range(24)]
    for address in addresses:
        await split.add(address)
    assert (await split.engine.run_due(MONDAY))["sent"] == 24
    rows = await Delivery.all().values_list("lead__email", "content_id", "variant", "subject")
    assert {content for _, content, _, _ in rows} == {"intro"}  # the step's content id
    assert {email: variant for email, _, variant, _ in rows} == {a: expected(a) for a in addresses}
    assert {variant for _, _, variant, _ in rows} == {"x", "y"}
    for address in addresses:
        (subject,) = split.subjects(address)
        assert subject == ("Y subject" if expected(address) == "y" else "intro")
    # Another engine (another worker, a restart) sends nothing again and picks the same.
    again = await new_engine(split.app, split.transport).run_due(MONDAY + timedelta(hours=1))
    assert again["sent"] == 0
    assert await Delivery.all().count() == 24


async def test_no_repeat_across_variants_when_moved_to_a_stream_with_that_content(
    split: Walk,
) -> None:
    """Stream b also starts with "intro": a lead sent either variant of it never gets it again."""
    leads = [await split.add(f"mover{i}@example.com") for i in range(4)]
    await split.engine.run_due(MONDAY)
    assert {expected(lead.email) for lead in leads} == {"x", "y"}
    for lead in leads:
        await move_lead(lead, "b", split.app.catalog, split.app.rules, MONDAY + timedelta(hours=1))
    for days in range(1, 4):
        await split.engine.run_due(MONDAY + timedelta(days=days))
    for lead in leads:
        assert split.subjects(lead.email) == [
            "Y subject" if expected(lead.email) == "y" else "intro", "b1"
        ]  # fmt: skip
        assert await Delivery.filter(lead_id=lead.id, content_id="intro").count() == 1


async def click(delivery: Delivery, *, machine: bool = False, kind: EventKind = EventKind.CLICK
                ) -> None:  # fmt: skip
    await Event.create(lead_id=delivery.lead_id, delivery_id=delivery.id, kind=kind,
                       stream_id=delivery.stream_id, occurred_at=MONDAY + timedelta(minutes=5),
                       data={"machine": True, "reason": "agent"} if machine else {})  # fmt: skip


async def test_winner_rule_flips_sends_after_min_sample_and_the_report_shows_it(
    split: Walk,
) -> None:
    """Below the sample nothing is decided; once y's clicks are clearly better, y wins (an
    event, once), every new lead gets y, on this engine and a fresh one; the report shows
    per variant sent, human opens and clicks, replies, rates, the p-value and the winner."""
    for i in range(30):
        await split.add(f"lead{i}@example.com")
    await split.engine.run_due(MONDAY)
    sent = {v: await Delivery.filter(variant=v).count() for v in ("x", "y")}
    assert min(sent.values()) >= 10, sent  # the rule's min_sample, reached by this pass
    assert not await Event.filter(kind=EventKind.SPLIT_WINNER).exists()
    ys = await Delivery.filter(variant="y")
    xs = await Delivery.filter(variant="x")
    for delivery in ys:
        await click(delivery)
        await click(delivery)  # a second click by the same lead counts once
    await click(xs[0], machine=True)  # a scanner: no interest, not counted
    await click(xs[1], kind=EventKind.OPEN)
    await click(xs[2], kind=EventKind.OPEN, machine=True)
    await click(ys[0], kind=EventKind.REPLY)

    for i in range(6):
        await split.add(f"late{i}@example.com", now=MONDAY + timedelta(hours=1))
    assert (await split.engine.run_due(MONDAY + timedelta(hours=1)))["sent"] == 6
    late = await Delivery.filter(lead__email__startswith="late").values_list("variant", flat=True)
    assert list(late) == ["y"] * 6
    assert any(expected(f"late{i}@example.com") == "x" for i in range(6))  # it did flip some
    (decided,) = await Event.filter(kind=EventKind.SPLIT_WINNER)
    assert decided.stream_id == "a"
    assert decided.data["variant"] == "y"
    assert decided.data["metric"] == "click"
    assert decided.data["p_value"] < 0.05
    assert decided.data["tallies"] == {"x": [0, sent["x"]], "y": [sent["y"], sent["y"]]}

    for i in range(4):
        await split.add(f"later{i}@example.com", now=MONDAY + timedelta(hours=2))
    await new_engine(split.app, split.transport).run_due(MONDAY + timedelta(hours=2))
    later = await Delivery.filter(lead__email__startswith="later").values_list("variant", flat=True)
    assert list(later) == ["y"] * 4
    assert await Event.filter(kind=EventKind.SPLIT_WINNER).count() == 1

    data = await variants_report(split.app.catalog, MONDAY - timedelta(days=1),
                                 MONDAY + timedelta(minutes=30))  # fmt: skip
    (step,) = data["steps"]
    assert (step["stream"], step["content"], step["metric"]) == ("a", "intro", "click")
    x, y = step["variants"]
    assert (x["id"], x["sent"], x["opened"], x["clicked"], x["replied"]) == (
        "x",
        sent["x"],
        1,
        0,
        0,
    )
    assert (y["id"], y["sent"], y["clicked"], y["replied"]) == ("y", sent["y"], sent["y"], 1)
    assert y["click_rate"] == 1.0
    assert x["open_rate"] == round(1 / sent["x"], 4)
    assert y["leader"]
    assert not x["leader"]
    assert x["p_vs_leader"] < 0.05
    assert step["winner"]["variant"] == "y"
    text = format_variants(data)
    assert "split test a / intro" in text
    assert "winner: y" in text
    assert "leader" in text.splitlines()[3]


async def test_a_retry_sends_the_variant_its_claim_recorded(split: Walk) -> None:
    """Deferred as x, then y is declared the winner: the retry still sends x, as the
    delivery row says; a new lead gets y."""
    address = next(a for a in (f"r{i}@example.com" for i in range(20)) if expected(a) == "x")
    lead = await split.add(address)
    split.sink.fail_next("451 4.3.0 try again later", at="rcpt")
    assert (await split.engine.run_due(MONDAY))["deferred"] == 1
    await Event.create(lead_id=lead.id, kind=EventKind.SPLIT_WINNER, stream_id="a",
                       data={"variant": "y"}, occurred_at=MONDAY,
                       ref="split-winner:a:intro")  # fmt: skip
    newcomer = next(a for a in (f"n{i}@example.com" for i in range(20)) if expected(a) == "x")
    await split.add(newcomer, now=MONDAY + timedelta(minutes=15))
    engine = new_engine(split.app, split.transport)
    assert (await engine.run_due(MONDAY + timedelta(minutes=15)))["sent"] == 2
    assert split.subjects(address) == ["intro"]  # x: the template's own subject
    assert split.subjects(newcomer) == ["Y subject"]
    rows = await Delivery.all().order_by("id").values_list("lead__email", "variant", "attempts")
    assert rows == [(address, "x", 2), (newcomer, "y", 1)]


async def test_preview_shows_and_test_sends_a_chosen_variant(split: Walk, tmp_path: Path) -> None:
    """preview --variant y shows y's subject; with --to it sends y marked as a test."""
    from nurtured.preview import render_preview

    lines: list[str] = []
    config_path = tmp_path / "config.toml"
    await render_preview(config_path, "a", "intro", None, False, lines.append, variant_name="y")
    assert lines[0] == "Variant: y (of x, y; pick one with --variant)"
    assert "Subject: Y subject" in lines
    lines.clear()
    await render_preview(config_path, "a", "0", None, False, lines.append)
    assert lines[0].startswith("Variant: x ")  # the first, without --variant
    await render_preview(config_path, "a", "intro", None, False, lines.append,
                         to="me@example.com", variant_name="y")  # fmt: skip
    assert lines[-1].startswith("test email sent to me@example.com (smtp): [TEST] Y subject")
    (received,) = split.sink.messages
    assert b"Subject: [TEST] Y subject" in received.content
    assert await Delivery.all().count() == 0


def statements_in_assign(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Statements each SplitTests.assign call issues (its own task only: batches overlap)."""
    from tortoise import connections

    from nurtured.splits.assign import SplitTests

    statements: list[tuple[object, str]] = []  # (task, SQL)
    client = type(connections.get("default"))
    for name in ("execute_query", "execute_query_dict", "execute_many", "execute_insert"):
        original = getattr(client, name)

        def counted(self: Any, sql: str, *args: Any, _original: Any = original) -> Any:
            statements.append((asyncio.current_task(), sql))
            return _original(self, sql, *args)

        monkeypatch.setattr(client, name, counted)
    real_assign = SplitTests.assign
    per_call: list[int] = []

    async def assign(self: SplitTests, jobs: Any, now: Any) -> None:
        before, me = len(statements), asyncio.current_task()
        await real_assign(self, jobs, now)
        per_call.append(sum(1 for task, _ in statements[before:] if task is me))

    monkeypatch.setattr(SplitTests, "assign", assign)
    return per_call


async def test_choosing_variants_costs_the_same_few_statements_whatever_the_batch(
    split: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """assign() reads a fixed number of times per batch (none per lead): the same for a
    batch of 2 leads as for 8, and nothing at all for a batch without split steps."""
    per_batch = statements_in_assign(monkeypatch)
    monkeypatch.setattr("nurtured.splits.assign.RECHECK", timedelta(0))  # check every batch
    for i in range(10):  # a batch of 8, then one of 2
        await split.add(f"lead{i}@example.com")
    assert (await split.engine.run_due(MONDAY))["sent"] == 10
    # Each: the recorded winners, the sends by variant, the reactions to them.
    assert per_batch == [3, 3]
    per_batch.clear()
    assert (await split.engine.run_due(MONDAY + timedelta(days=2)))["sent"] == 10  # step a1
    assert per_batch == [0, 0]  # no split step in these batches: not one statement


async def test_the_daemon_checks_an_open_test_at_most_every_ten_minutes(
    split: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passes of one runtime share what they know: a pass 5 minutes after a check reads
    nothing to choose variants, one 11 minutes after it checks again."""
    from nurtured.app import Runtime
    from nurtured.jobs import send_due

    per_batch = statements_in_assign(monkeypatch)
    runtime = Runtime(split.app, split.transport)
    for minutes, expected_reads in ((0, 3), (5, 0), (11, 3)):
        now = MONDAY + timedelta(minutes=minutes)
        await split.add(f"at{minutes}@example.com", now=now)
        per_batch.clear()
        assert (await send_due(runtime, now))["sent"] == 1
        assert per_batch == [expected_reads], minutes
