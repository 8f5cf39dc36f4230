"""The ``nurtured`` command on the example project: init, validate, import, run, inspect."""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nurtured.cli import main
from nurtured.db import close_db, open_db

from .conftest import TABLES
from .smtp_sink import free_port

NOW = "2026-11-24T10:00:00+01:00"  # a Tuesday morning in Berlin


@pytest.fixture
def home(tmp_path: Path, postgres_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initialised example project; its database is SQLite in it, or this run's PostgreSQL."""
    monkeypatch.delenv("NURTURED_DATABASE_URL", raising=False)
    if postgres_url:
        monkeypatch.setenv("NURTURED_DATABASE_URL", postgres_url)

        async def truncate() -> None:
            from tortoise import connections

            await open_db(postgres_url)
            await connections.get("default").execute_script(
                f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"
            )
            await close_db()

        asyncio.run(truncate())
    root = tmp_path / "demo"
    result = CliRunner().invoke(main, ["init", str(root)])
    assert result.exit_code == 0, result.output
    return root


def cmd(home: Path, *args: str) -> Result:
    """Run a command with --config added after the (sub)command words."""
    words = 2 if args[0] in ("leads", "lead") else 1
    config = ["--config", str(home / "config.toml")]
    return CliRunner().invoke(main, [*args[:words], *config, *args[words:]])


def test_init_writes_a_project_and_keeps_existing_files(home: Path) -> None:
    """init scaffolds config, streams, templates and leads; a second init overwrites nothing."""
    assert (home / "config.toml").is_file()
    assert sorted(p.name for p in (home / "streams").glob("*.toml")) == [
        "long-term.toml", "product-a.toml", "product-b.toml",
    ]  # fmt: skip
    (home / "config.toml").write_text((home / "config.toml").read_text() + "\n# mine\n")
    result = CliRunner().invoke(main, ["init", str(home)])
    assert result.exit_code == 0
    assert "kept" in result.output
    assert (home / "config.toml").read_text().endswith("# mine\n")


def test_validate_accepts_the_example_project(home: Path) -> None:
    """The scaffold is valid out of the box."""
    result = cmd(home, "validate")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 3 streams")


def test_broken_stream_file_is_named_by_validate_and_run(home: Path) -> None:
    """A bad wait: validate prints file: key: reason and exits 1; run refuses to start."""
    stream = home / "streams" / "product-a.toml"
    text = stream.read_text()
    assert 'wait = "3d"' in text
    stream.write_text(text.replace('wait = "3d"', 'wait = "3 dayz"', 1))
    result = cmd(home, "validate")
    assert result.exit_code == 1
    assert 'streams/product-a.toml: steps[1].wait: "3 dayz" is not a duration' in result.output
    run = cmd(home, "run", "--once", "--now", NOW)
    assert run.exit_code == 1
    assert 'streams/product-a.toml: steps[1].wait: "3 dayz" is not a duration' in run.output


def test_broken_template_is_named_by_validate(home: Path) -> None:
    """A template using an unknown field fails validation with its file name."""
    template = next((home / "templates").glob("pa-*.j2"))
    broken = template.read_text().replace(
        "{% block subject %}", "{% block subject %}{{ lead.nope }}"
    )
    template.write_text(broken)
    result = cmd(home, "validate")
    assert result.exit_code == 1
    assert f"templates/{template.name}" in result.output
    assert "nope" in result.output


def test_import_run_status_show(home: Path) -> None:
    """Import the example leads, send what is due into the Maildir outbox, inspect the result."""
    bad = home / "more.csv"
    bad.write_text(
        "email,first_name,interest,timezone\n"
        "not-an-email,X,product-a,\n"
        "ADA@Example.com,Ada,product-a,\n"
        "zed@example.com,Zed,product-a,Mars/Olympus\n"
        "ok@example.com,Ok,product-b,America/New_York\n"
    )
    first = cmd(home, "leads", "import", str(home / "leads.csv"), "--now", NOW)
    assert first.exit_code == 0, first.output
    assert "invalid 0" in first.output
    assert "to sales: 1" in first.output  # the contact-sales row is never nurtured
    assert "handed to sales: 1" in first.output
    second = cmd(home, "leads", "import", str(bad), "--now", NOW)
    assert second.exit_code == 0, second.output
    assert "more.csv:2: email" in second.output
    assert "more.csv:4: timezone" in second.output
    assert "invalid 2" in second.output

    run = cmd(home, "run", "--once", "--now", NOW)
    assert run.exit_code == 0, run.output
    outbox = mailbox.Maildir(home / "outbox", create=False)
    alerts = [m for m in outbox if m["Auto-Submitted"] == "auto-generated"]
    assert len(alerts) == 1  # the contact-sales lead's handoff alert, written at import
    messages = [m for m in outbox if m["Auto-Submitted"] != "auto-generated"]
    assert messages, "nothing was written to the outbox"
    assert all(m["Message-ID"] and m["List-Unsubscribe"] for m in messages)

    status = cmd(home, "status", "--json", "--now", NOW)
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["deliveries"]["sent"] == len(messages)
    assert sum(s["states"].get("active", 0) for s in data["streams"].values()) >= 1

    report = cmd(home, "report", "--until", "2026-12-01T00:00", "--json")
    assert report.exit_code == 0, report.output
    funnel = json.loads(report.output)["by_stream"]
    assert sum(row["sent"] for row in funnel.values()) == len(messages)
    table = cmd(home, "report", "--until", "2026-12-01T00:00")
    assert "product-a" in table.output

    again = cmd(home, "run", "--once", "--now", NOW)
    assert "sent" not in again.output.split(":", 1)[1]  # nothing is sent twice
    assert len(list(mailbox.Maildir(home / "outbox", create=False))) == len(messages) + 1

    show = cmd(home, "lead", "show", "ok@example.com", "--json")
    assert show.exit_code == 0, show.output
    timeline = json.loads(show.output)
    assert timeline["timezone"] == "America/New_York"
    assert [e["stream"] for e in timeline["enrollments"]] == ["product-b"]
    text = cmd(home, "lead", "show", "ok@example.com")
    assert "product-b" in text.output


def test_add_move_and_preview(home: Path) -> None:
    """leads add enrolls by entry rules; move keeps history; preview renders a step."""
    add = cmd(home, "leads", "add", "grace@example.org", "--first-name", "Grace",
              "--interest", "product-a", "--source", "webinar", "--now", NOW)  # fmt: skip
    assert add.exit_code == 0, add.output
    assert "product-a" in add.output
    moved = cmd(home, "move", "grace@example.org", "product-b", "--now", NOW)
    assert moved.exit_code == 0, moved.output
    assert "now in product-b" in moved.output
    unknown = cmd(home, "move", "grace@example.org", "nope", "--now", NOW)
    assert unknown.exit_code == 1
    assert "nope" in unknown.output

    preview = cmd(home, "preview", "product-a", "0", "--lead", "grace@example.org")
    assert preview.exit_code == 0, preview.output
    assert "To: Grace <grace@example.org>" in preview.output
    assert "----- HTML -----" in preview.output
    raw = cmd(home, "preview", "product-a", "0", "--raw")
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw.output
    missing = cmd(home, "preview", "product-a", "99")
    assert missing.exit_code == 1


def test_bad_email_on_add_is_refused(home: Path) -> None:
    """leads add with an unusable address says why and creates nothing."""
    result = cmd(home, "leads", "add", "bob@@example.org")
    assert result.exit_code != 0
    assert "email" in result.output


def test_idn_domain_is_imported_and_sent_as_punycode_non_ascii_local_parts_refused(
    home: Path,
) -> None:
    """CSV import and leads add store an internationalised domain in its ASCII form and
    the outbox gets it so; a non-ASCII local part (it needs SMTPUTF8) is refused, with
    the reason, as is text that is not valid Unicode."""
    leads = home / "idn.csv"
    leads.write_text(
        "email,first_name,interest,source\n"
        "Ascii@Bücher.example.com,Ascii,product-a,webinar\n"
        "jürgen@bücher.example.com,Jürgen,product-a,webinar\n",
        encoding="utf-8",
    )
    imported = cmd(home, "leads", "import", str(leads), "--now", NOW)
    assert imported.exit_code == 0, imported.output
    assert "idn.csv:3: email: 'jürgen@bücher.example.com': the local part is not ASCII" in (
        imported.output
    )
    assert "created 1," in imported.output
    added = cmd(home, "leads", "add", "b@xn--bcher-kva.example.com", "--interest", "product-a",
                "--source", "webinar", "--now", NOW)  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output.startswith("b@xn--bcher-kva.example.com: created")
    refused = cmd(home, "leads", "add", "jürgen@bücher.example.com", "--now", NOW)
    assert refused.exit_code != 0
    assert "SMTPUTF8" in refused.output
    surrogate = cmd(home, "leads", "add", "c@example.com", "--first-name", "\udcff", "--now", NOW)
    assert surrogate.exit_code != 0
    assert "first_name: contains a lone surrogate" in surrogate.output

    run = cmd(home, "run", "--once", "--now", NOW)
    assert run.exit_code == 0, run.output
    sent = sorted(m["To"] for m in mailbox.Maildir(home / "outbox", create=False))
    assert sent == ["Ascii <ascii@xn--bcher-kva.example.com>", "b@xn--bcher-kva.example.com"]


@pytest.fixture
def daemon_env(home: Path, postgres_url: str | None) -> dict[str, str]:
    env = {**os.environ}
    if postgres_url:
        env["NURTURED_DATABASE_URL"] = postgres_url
    return env


def test_daemon_sends_serves_http_and_stops_cleanly(home: Path, daemon_env: dict[str, str]) -> None:
    """`nurtured run` sends due mail into the outbox, serves the tracking server (health,
    one-click unsubscribe from the email's own header), then SIGTERM makes it exit 0."""
    config = str(home / "config.toml")
    port = free_port()
    # The example window is office hours; use an always-open window for this test.
    text = (home / "config.toml").read_text()
    text = (text.replace('hours = "09:00-17:00"', 'hours = "00:00-24:00"')
                .replace('days = ["mon", "tue", "wed", "thu", "fri"]', 'days = ["everyday"]')
                .replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{port}"')
                .replace('base_url = "http://localhost:8080"',
                         f'base_url = "http://127.0.0.1:{port}"'))  # fmt: skip
    (home / "config.toml").write_text(text)
    for address in ("live@example.org", "other@example.org"):
        add = cmd(home, "leads", "add", address, "--interest", "product-a", "--source", "webinar")
        assert add.exit_code == 0, add.output
    proc = subprocess.Popen(
        [sys.executable, "-m", "nurtured", "run", "--config", config],
        env=daemon_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        outbox = mailbox.Maildir(home / "outbox", create=True)
        wait_for(lambda: len(list(outbox)) == 2, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.read().strip() == b"ok"
        (message,) = [m for m in outbox if "live@example.org" in m["To"]]
        unsubscribe = str(message["List-Unsubscribe"]).split(">")[0].strip("< \r\n\t")
        assert unsubscribe.startswith(f"http://127.0.0.1:{port}/u/")
        one_click = urllib.request.Request(
            unsubscribe, data=b"List-Unsubscribe=One-Click", method="POST"
        )
        with urllib.request.urlopen(one_click, timeout=10) as answer:
            assert answer.status == 200
        # The other lead replies: the message lands in the local inbox Maildir.
        (sent,) = [m for m in outbox if "other@example.org" in m["To"]]
        reply = (
            f"From: Other <other@example.org>\r\nTo: {sent['Reply-To']}\r\n"
            f"Subject: Re: {sent['Subject']}\r\nIn-Reply-To: {sent['Message-ID']}\r\n"
            "Message-ID: <answer-1@example.org>\r\n\r\nInteresting, tell me more.\r\n"
        )
        inbox = mailbox.Maildir(home / "inbox", create=True)
        inbox.add(reply.encode())
        wait_for(
            lambda: (
                not list(mailbox.Maildir(home / "inbox").iterkeys())
                or all("S" in m.get_flags() for m in mailbox.Maildir(home / "inbox"))
            ),
            proc,
        )
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    show = cmd(home, "lead", "show", "live@example.org", "--json")
    data = json.loads(show.output)
    assert data["status"] == "unsubscribed"
    assert "unsubscribe" in [item["what"] for item in data["timeline"]]
    other = json.loads(cmd(home, "lead", "show", "other@example.org", "--json").output)
    assert other["status"] == "replied"
    (replied,) = [item for item in other["timeline"] if item["what"] == "reply"]
    assert "Interesting, tell me more." in replied["text"]
    alerts = [m for m in outbox if m["Auto-Submitted"] == "auto-generated"]
    assert len(alerts) == 1  # sales heard of the reply


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    """Poll another process's visible effects (not waiting for time to pass)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the daemon did not get there in 30 s"
        time.sleep(0.05)


def test_a_sales_source_goes_to_sales_from_leads_add_and_move_says_why(home: Path) -> None:
    """leads add with a sales source: never nurtured, handed off with an alert; moving a
    lead that is with sales is refused with the command that gives it back."""
    add = cmd(home, "leads", "add", "demo@example.org", "--source", "demo-request",
              "--interest", "product-a", "--now", NOW)  # fmt: skip
    assert add.exit_code == 0, add.output
    assert "to sales" in add.output
    assert "handed to sales: 1" in add.output
    data = json.loads(cmd(home, "lead", "show", "demo@example.org", "--json").output)
    assert (data["status"], data["stage"]) == ("sales", "sql")
    assert data["enrollments"] == []
    assert "handoff" in [item["what"] for item in data["timeline"]]
    handoffs = json.loads(cmd(home, "handoffs", "--json", "--now", NOW).output)
    assert [h["email"] for h in handoffs] == ["demo@example.org"]
    moved = cmd(home, "move", "demo@example.org", "long-term")
    assert moved.exit_code == 1
    assert "nurtured handoff return" in moved.output
    back = cmd(home, "handoff", "return", "demo@example.org", "--reason", "timing, Q3",
               "--now", NOW)  # fmt: skip
    assert back.exit_code == 0, back.output
    data = json.loads(cmd(home, "lead", "show", "demo@example.org", "--json").output)
    assert (data["status"], data["stage"]) == ("active", "returned")
    assert [e["state"] for e in data["enrollments"] if not e["left_at"]] == ["paused"]


def test_report_html_now_and_a_bad_period(home: Path) -> None:
    """report --now sets the period's end; --html writes the page (saying so on stderr,
    so --json stays clean); --since after --until is an error, not a traceback."""
    imported = cmd(home, "leads", "import", str(home / "leads.csv"), "--now", NOW)
    assert imported.exit_code == 0, imported.output
    assert cmd(home, "run", "--once", "--now", NOW).exit_code == 0
    page = home / "report.html"
    result = CliRunner().invoke(main, ["report", "--config", str(home / "config.toml"),
                                       "--now", "2026-11-25T00:00", "--html", str(page),
                                       "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["until"] == "2026-11-25T00:00:00+00:00"
    assert data["emails"]["sent"] >= 1
    assert f"wrote {page}" in result.stderr
    assert page.read_text().count("<svg") >= 3
    before = cmd(home, "report", "--now", "2026-11-20T00:00", "--json")
    assert json.loads(before.output)["emails"]["sent"] == 0  # nothing was sent by then
    bad = cmd(home, "report", "--since", "2026-12-01", "--until", "2026-11-01")
    assert bad.exit_code == 1
    assert "error: --since 2026-12-01T00:00:00+00:00 is not before --until" in bad.output
