"""Test sends (``nurtured preview ... --to``): one email through the configured transport,
marked as a test, recorded nowhere, its links and unsubscribe URL tied to no lead."""

from __future__ import annotations

import asyncio
import email
import json
import mailbox
import re
from email import policy
from pathlib import Path
from urllib.parse import urlsplit

from nurtured.app import load_app
from nurtured.db import database
from nurtured.models import Delivery, Event, Lead, LeadStatus, Link
from nurtured.preview import TEST_HEADER, find_step, send_test
from nurtured.views import company_view, lead_view
from tests.test_cli import NOW, cmd, home
from tests.test_tracking import serving
from tests.walk import Walk

__all__ = ["home"]  # the fixture, used by name


async def _rows(config: Path) -> tuple[int, int, int]:
    async with database(load_app(config).settings.database.url):
        return await Delivery.all().count(), await Event.all().count(), await Link.all().count()


def test_preview_to_sends_one_marked_email_to_the_outbox_and_records_nothing(home: Path) -> None:
    """--to: one message in the outbox, "[TEST] " subject, X-Nurtured-Test, for the lead's
    data, to the tester; no delivery, event or link rows before or after."""
    add = cmd(home, "leads", "add", "grace@example.org", "--first-name", "Grace",
              "--interest", "product-a", "--source", "webinar", "--now", NOW)  # fmt: skip
    assert add.exit_code == 0, add.output
    before = asyncio.run(_rows(home / "config.toml"))
    result = cmd(home, "preview", "product-a", "pa-guide", "--lead", "grace@example.org",
                 "--to", "Me <me@example.com>")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("test email sent to me@example.com (outbox): [TEST] ")
    (message,) = [
        email.message_from_bytes(m.as_bytes(), policy=policy.default)
        for m in mailbox.Maildir(home / "outbox", create=False)
    ]
    assert str(message["Subject"]).startswith("[TEST] ")
    assert message[TEST_HEADER] == "1"
    assert message["To"] == "Me <me@example.com>"
    assert message["Delivered-To"] == "me@example.com"
    assert "Grace" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert message["Message-ID"].startswith("<test")
    assert asyncio.run(_rows(home / "config.toml")) == before
    assert before[0] == 0  # nothing was sent for real either


def test_preview_to_refuses_a_bad_address_and_an_unknown_variant(home: Path) -> None:
    """A bad --to or --variant is one error line, exit 1, and nothing is sent."""
    bad = cmd(home, "preview", "product-a", "0", "--to", "not an address")
    assert bad.exit_code == 1
    assert bad.output.startswith('error: --to: "not an address" is not an email address')
    variant = cmd(home, "preview", "product-a", "0", "--variant", "b", "--to", "me@example.com")
    assert variant.exit_code == 1
    assert "has no variant 'b' (variants: none: the step is no split test)" in variant.output
    assert not list(mailbox.Maildir(home / "outbox", create=True))


async def test_test_send_over_smtp_links_record_nothing_for_the_lead(walk: Walk) -> None:
    """Over SMTP the sink gets exactly one message; its click, pixel and unsubscribe URLs,
    hit on the real tracking server, record no event and unsubscribe nobody."""
    lead = await Lead.get(id=(await walk.add("ada@example.com")).id).select_related("company")
    stream = walk.app.catalog.stream("a")
    step = find_step(stream, "intro")
    events = await Event.all().values_list("kind", flat=True)  # the lead's "enrolled"
    message = await send_test(walk.app, stream, step, None, lead_view(lead), company_view(lead),
                              ("", "me@example.com"))  # fmt: skip
    (received,) = walk.sink.messages
    assert list(received.rcpt_tos) == ["me@example.com"]
    parsed = email.message_from_bytes(received.content, policy=policy.default)
    assert parsed["Subject"] == "[TEST] intro for Ada"
    assert parsed[TEST_HEADER] == "1"
    assert parsed["Message-ID"] == message["Message-ID"]
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    urls = re.findall(r"https?://[^\s<>\"]+/[cu]/[^\s<>\"]+", text)
    assert len(urls) == 2  # the tagged link and the unsubscribe URL
    async with serving(walk.app, walk.transport) as server:
        for url in urls:
            status, headers, _ = await server.request("GET", urlsplit(url).path)
            assert status == 404
            assert "Location" not in headers
        status, _, _ = await server.request("POST", urlsplit(urls[1]).path)
        assert status == 404
        await server.flush()
    assert await Event.all().values_list("kind", flat=True) == events
    assert await Delivery.all().count() == 0
    assert (await Lead.get(id=lead.id)).status == LeadStatus.ACTIVE


def test_splits_command_reports_the_variants_sent_by_a_run(home: Path) -> None:
    """Uncomment the example split test: a run sends both variants, stored per delivery,
    and `nurtured splits` counts them (text and --json); without variants it says so."""
    assert cmd(home, "splits").output == "no split tests: no step has variants\n"
    stream = home / "streams" / "product-a.toml"
    text = stream.read_text()
    for line in ("# variants = [", '#     { id = "welcome" }', '#     { id = "question"', "# ]",
                 "# winner = "):  # fmt: skip
        assert line in text
        text = text.replace(line, line[2:], 1)
    stream.write_text(text)
    assert cmd(home, "validate").exit_code == 0
    csv = home / "split.csv"
    csv.write_text("email,first_name,interest,source\n" + "".join(
        f"lead{i}@example.com,Lead,product-a,webinar\n" for i in range(20)))  # fmt: skip
    assert cmd(home, "leads", "import", str(csv), "--now", NOW).exit_code == 0
    run = cmd(home, "run", "--once", "--now", NOW)
    assert run.exit_code == 0, run.output
    subjects = [
        str(email.message_from_bytes(m.as_bytes(), policy=policy.default)["Subject"])
        for m in mailbox.Maildir(home / "outbox", create=False)
    ]
    question = subjects.count("Is your pipeline report telling the truth?")
    assert 0 < question < 20
    report = cmd(home, "splits", "--json", "--until", "2026-11-25T00:00:00+00:00")
    assert report.exit_code == 0, report.output
    (step,) = json.loads(report.output)["steps"]
    assert (step["stream"], step["content"], step["winner"]) == ("product-a", "pa-welcome", None)
    sent = {v["id"]: v["sent"] for v in step["variants"]}
    assert sent == {"welcome": 20 - question, "question": question}
    table = cmd(home, "splits", "--until", "2026-11-25T00:00:00+00:00").output
    assert table.startswith("split test product-a / pa-welcome (compared on click; winner rule")
    full = cmd(home, "report", "--json", "--now", "2026-11-25T00:00:00+00:00", "--since", NOW)
    assert full.exit_code == 0, full.output
    (in_report,) = json.loads(full.output)["variants"]["steps"]
    assert {v["id"]: v["sent"] for v in in_report["variants"]} == sent
