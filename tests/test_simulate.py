"""``nurtured simulate`` on the example project: the real engine on a throwaway copy."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tortoise import connections

from nurtured.app import load_app
from nurtured.cli import main
from nurtured.cockpit.script import (
    Script,
    ScriptError,
    parse_as,
    parse_click,
    parse_ooo,
    parse_reply,
)
from nurtured.cockpit.simulate import simulate
from nurtured.db import close_db, open_db
from nurtured.models import Delivery, Enrollment, Event, Lead

from .conftest import TABLES

START = "2026-12-02T09:00:00+00:00"  # a Wednesday: 18:00 in Tokyo
TOKYO = "source=webinar,interest=product-a,timezone=Asia/Tokyo"


def cmd(home: Path, *args: str) -> Result:
    words = 2 if args[0] in ("leads", "lead") else 1
    config = ["--config", str(home / "config.toml")]
    return CliRunner().invoke(main, [*args[:words], *config, *args[words:]])


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project on SQLite, its leads imported and the first emails in the outbox."""
    monkeypatch.delenv("NURTURED_DATABASE_URL", raising=False)
    root = tmp_path / "demo"
    assert CliRunner().invoke(main, ["init", str(root)]).exit_code == 0
    assert cmd(root, "leads", "import", str(root / "leads.csv"), "--now", START).exit_code == 0
    result = cmd(root, "run", "--once", "--now", "2026-12-02T10:00:00+00:00")
    assert result.exit_code == 0, result.output
    return root


def snapshot(home: Path) -> dict[str, str]:
    """Every file of the database and the outbox, by content."""
    files = [*home.glob("nurtured.db*"), *(home / "outbox").rglob("*")]
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(files) if p.is_file() and not p.name.endswith("-shm")}  # fmt: skip


def journey(home: Path, *args: str) -> dict[str, Any]:
    result = cmd(home, "simulate", "--from", START, "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def emails(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in data["rows"] if row["kind"] == "email"]


def test_hypothetical_lead_in_tokyo_gets_local_times_in_the_window_and_moves_on_a_click(
    home: Path,
) -> None:
    """Emails at the lead's local time inside the send window (the step's own for
    pa-guide); a scripted click on pa-guide's product-b link moves the lead to product-b,
    where it gets nothing it already had; the database and outbox stay byte for byte."""
    before = snapshot(home)
    data = journey(home, "--as", TOKYO, "--click", "pa-guide:interest:product-b@+2d")
    assert snapshot(home) == before
    assert not (home / "nurtured.db-wal").exists()  # no log made beside a closed database
    sent = emails(data)
    assert [(e["content"], e["local"]) for e in sent[:2]] == [
        ("pa-welcome", "2026-12-03T09:00:00+09:00"),  # Wed 18:00 is after hours: Thu 09:00
        ("pa-guide", "2026-12-08T10:00:00+09:00"),  # +3d is a Sunday; its window: Tue 10-16
    ]
    for e in sent:
        local = datetime.fromisoformat(e["local"])
        assert e["zone"] == "Asia/Tokyo"
        assert local.utcoffset() == timedelta(hours=9)
        assert local.weekday() < 5, e
        assert 9 <= local.hour < 17, e
        assert local.date() not in {date(2026, 12, 24), date(2026, 12, 25), date(2027, 1, 1)}
    kinds = [(r["kind"], r["stream"]) for r in data["rows"]]
    click = kinds.index(("click", "product-a"))
    assert kinds[click + 1] == ("moved", "product-b")
    assert data["rows"][click]["at"] == "2026-12-10T01:00:00+00:00"  # 2 days after pa-guide
    after = [e for e in sent if e["at"] >= data["rows"][click]["at"]]
    assert after[0]["content"] == "pb-welcome"
    assert after[0]["stream"] == "product-b"
    contents = [e["content"] for e in sent]
    assert len(contents) == len(set(contents))  # acme-overview is in both streams: sent once
    assert data["messages"] == len(sent)


def test_reply_not_now_march_pauses_until_march(home: Path) -> None:
    """A reply "not now, March" is read as later: the stream pauses until 1 March and
    sends nothing in between; then it resumes."""
    data = journey(home, "--as", TOKYO, "--until", "+120d", "--reply", "not now, March@+5d")
    rows = data["rows"]
    reply = next(n for n, r in enumerate(rows) if r["kind"] == "reply")
    assert rows[reply]["data"]["intent"] == "later"
    assert rows[reply]["at"] == "2026-12-07T09:00:00+00:00"
    assert rows[reply + 1]["kind"] == "paused"
    assert rows[reply + 1]["data"]["until"] == "2027-03-01T00:00:00+00:00"
    later = [e for e in emails(data) if e["at"] > rows[reply]["at"]]
    assert later
    assert all(e["at"] >= "2027-03-01" for e in later)
    assert "resumed" in [r["kind"] for r in rows[reply:]]
    assert not any(r["kind"] == "alert" for r in rows)  # "later" bothers no salesperson


def test_out_of_office_pauses_until_the_day_after(home: Path) -> None:
    data = journey(home, "--as", TOKYO, "--ooo", "2026-12-07..2026-12-11")
    rows = data["rows"]
    ooo = next(n for n, r in enumerate(rows) if r["kind"] == "auto_reply")
    assert rows[ooo - 1]["content"] == "pa-guide"  # the email sent while away
    assert rows[ooo + 1]["data"]["until"] == "2026-12-12T00:00:00+00:00"
    assert all(not ("2026-12-08T02" < e["at"] < "2026-12-12") for e in emails(data))


def test_lead_of_the_database_is_read_from_a_live_database_and_left_alone(home: Path) -> None:
    """With a daemon's connection open (a write-ahead log beside the file), the lead's
    rows are read with what the log holds; neither file changes."""
    daemon = sqlite3.connect(home / "nurtured.db", isolation_level=None)
    try:
        daemon.execute("PRAGMA wal_autocheckpoint=0")
        daemon.execute("UPDATE lead SET timezone = 'Asia/Tokyo' WHERE email = ?",
                       ("maria.keller@example.com",))  # fmt: skip
        assert (home / "nurtured.db-wal").stat().st_size > 0
        before = snapshot(home)
        data = journey(home, "maria.keller@example.com", "--until", "+30d")
        assert snapshot(home) == before
    finally:
        daemon.close()
    assert data["leads"] == ["maria.keller@example.com"]
    sent = emails(data)
    assert sent
    assert {e["zone"] for e in sent} == {"Asia/Tokyo"}
    assert "pa-welcome" not in [e["content"] for e in sent]  # it had that one already


def test_click_on_an_email_never_sent_is_noted(home: Path) -> None:
    data = journey(home, "maria.keller@example.com", "--until", "+5d",
                   "--click", "pa-welcome:interest:product-b@+1d")  # fmt: skip
    assert not [r for r in data["rows"] if r["kind"] == "click"]
    assert any("pa-welcome was not sent in the simulation" in n for n in data["notes"])


def test_sample_walks_several_leads(home: Path) -> None:
    data = journey(home, "--sample", "3", "--until", "+14d")
    assert len(data["leads"]) == 3
    assert {r["lead"] for r in data["rows"]} <= set(data["leads"])


def test_table_says_nothing_was_sent(home: Path) -> None:
    result = cmd(home, "simulate", "--from", START, "--as", TOKYO, "--until", "+10d")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "simulated journey of someone@example.com, Wed 2026-12-02 18:00 +09:00"
    )
    assert any(line.startswith("Thu 2026-12-03 09:00 +09:00  product-a  email") for line in lines)
    assert lines[-1].startswith("nothing was written to the database or sent")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--click", "pa-guide@+2d"], "error: --click:"),
        (["--reply", "hello"], "error: --reply:"),
        (["--ooo", "2027-01-04..2026-12-20"], "ends before it begins"),
        (["--until", "soon"], "error: --until:"),
        (["--as", "timezone=Mars/Olympus"], "error: --as: timezone"),
    ],
)
def test_bad_script_is_a_clear_error(home: Path, args: list[str], message: str) -> None:
    extra = [] if args[0] == "--as" else ["--as", TOKYO]
    result = cmd(home, "simulate", "--from", START, *extra, *args)
    assert result.exit_code == 1
    assert message in result.output


def test_one_subject_only(home: Path) -> None:
    result = cmd(home, "simulate", "maria.keller@example.com", "--as", TOKYO)
    assert result.exit_code == 2
    assert "give one of EMAIL" in result.output


def test_unknown_lead_is_an_error(home: Path) -> None:
    result = cmd(home, "simulate", "nobody@example.com")
    assert result.exit_code == 1
    assert "error: no lead with email" in result.output


def test_script_parsing() -> None:
    start = datetime(2026, 12, 2, tzinfo=UTC)
    click = parse_click("pa-guide:interest:product-b@+2d")
    assert (click.content, click.tag, click.after) == ("pa-guide", "interest:product-b",
                                                        timedelta(days=2))  # fmt: skip
    reply = parse_reply("see you @ the fair, March@+5d", start)
    assert (reply.text, reply.at) == ("see you @ the fair, March", start + timedelta(days=5))
    assert parse_reply("ok@2026-12-10T10:00+01:00", start).at == datetime(2026, 12, 10, 9,
                                                                          tzinfo=UTC)  # fmt: skip
    assert parse_ooo("2026-12-20..2027-01-04").covers(date(2027, 1, 4))
    assert parse_as(("source=webinar,interest=product-a,product-b", "timezone=Asia/Tokyo")) == {
        "source": "webinar",
        "interest": "product-a;product-b",
        "timezone": "Asia/Tokyo",
    }
    for bad in ("pa-guide@+2d", "pa-guide:x@2d", "pa-guide:x@+2 dayz", ":x@+1d"):
        with pytest.raises(ScriptError):
            parse_click(bad)


async def test_simulating_in_process_leaves_the_open_database_alone(
    db: str, tmp_path: Path
) -> None:
    """Run beside an open Tortoise connection (this test's database, PostgreSQL in the
    second pass): the simulation uses a context of its own, this database gets no row,
    and its statements still speak its own dialect afterwards."""
    root = tmp_path / "demo"
    assert CliRunner().invoke(main, ["init", str(root)]).exit_code == 0
    app = load_app(root / "config.toml")
    start = datetime(2026, 12, 2, 9, tzinfo=UTC)
    await Lead.create(email="before@example.com", created_at=start, updated_at=start)
    found = await simulate(app, Script(), start, start + timedelta(days=20),
                           hypothetical={"source": "webinar", "interest": "product-a"})  # fmt: skip
    assert [r.content for r in found.rows if r.kind == "email"][:2] == ["pa-welcome", "pa-guide"]
    assert await Lead.all().values_list("email", flat=True) == ["before@example.com"]
    assert (await Delivery.all().count(), await Event.all().count()) == (0, 0)
    await Lead.create(email="after@example.com", created_at=start, updated_at=start)
    assert await Lead.all().count() == 2


def test_lead_of_the_configured_database_is_only_read(
    tmp_path: Path, postgres_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lead is read from the project's database (PostgreSQL in the second pass), whose
    rows stay as they were."""
    monkeypatch.delenv("NURTURED_DATABASE_URL", raising=False)
    if postgres_url:
        monkeypatch.setenv("NURTURED_DATABASE_URL", postgres_url)
    root = tmp_path / "demo"
    assert CliRunner().invoke(main, ["init", str(root)]).exit_code == 0
    url = postgres_url or f"sqlite://{root / 'nurtured.db'}"

    async def counts(empty: bool = False) -> tuple[int, ...]:
        await open_db(url)
        try:
            if empty and postgres_url:  # the run's PostgreSQL is shared by the tests
                conn = connections.get("default")
                await conn.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
            models = (Lead, Delivery, Event, Enrollment)
            return tuple([await m.all().count() for m in models])
        finally:
            await close_db()

    asyncio.run(counts(empty=True))
    assert cmd(root, "leads", "import", str(root / "leads.csv"), "--now", START).exit_code == 0
    before = asyncio.run(counts())
    data = journey(root, "maria.keller@example.com", "--until", "+30d")
    assert asyncio.run(counts()) == before
    assert [e["content"] for e in emails(data)][:2] == ["pa-welcome", "pa-guide"]


def test_now_is_never_called_a_dry_run() -> None:
    """--now's help says the command acts for real; run's help points to simulate."""
    for command in ("run", "status", "move"):
        text = CliRunner().invoke(main, [command, "--help"]).output
        assert "Not a dry run" in " ".join(text.split())
    assert "use `nurtured simulate`" in CliRunner().invoke(main, ["run", "--help"]).output


def test_a_suppressed_lead_gets_nothing_in_the_simulation_either(home: Path) -> None:
    """The suppression list is copied into the sandbox: the journey holds no email."""
    email = "maria.keller@example.com"
    assert emails(journey(home, email, "--until", "+30d"))
    config = ["--config", str(home / "config.toml")]
    added = CliRunner().invoke(main, ["suppress", "add", *config, "--now", START, email])
    assert added.exit_code == 0, added.output
    assert emails(journey(home, email, "--until", "+30d")) == []
