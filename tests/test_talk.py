"""What `nurtured run` says (start lines, pass lines, one-line start errors, SIGHUP reload,
JSON logs, quiet libraries) and the CLI habits (--config before the command, times on the
lead's clock, `run --once` next due, `lead show` entry reasons, `error:` lines)."""

from __future__ import annotations

import errno
import http.client
import json
import mailbox
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from nurtured.cli import main
from nurtured.logs import JSON_KEYS
from nurtured.talk import refusal
from nurtured.when import shown, shown_both

from .smtp_sink import free_port
from .test_cli import cmd, daemon_env, home  # noqa: F401 (fixtures)

NOW = "2026-11-24T10:00:00+01:00"  # a Tuesday morning in Berlin
MONDAY = "2026-11-23T10:00:00+01:00"


class Lines:
    """A process's stderr, read line by line on a thread while it runs."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        assert proc.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def close(self) -> None:
        self._thread.join(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def wait(self, found: Callable[[str], bool]) -> str:
        """The first line ``found`` accepts (polling the other process's output)."""
        deadline = time.monotonic() + 30
        while True:
            for line in list(self.lines):
                if found(line):
                    return line
            assert self.proc.poll() is None or self._thread.is_alive(), self.lines
            assert time.monotonic() < deadline, self.lines
            time.sleep(0.05)


def listen_on(home: Path, port: int) -> None:  # noqa: F811
    config = home / "config.toml"
    config.write_text(config.read_text().replace('listen = "127.0.0.1:8080"',
                                                 f'listen = "127.0.0.1:{port}"'))  # fmt: skip


@contextmanager
def daemon(home: Path, env: dict[str, str], *args: str) -> Iterator[Lines]:  # noqa: F811
    """`python3 -m nurtured [ARGS...] run ...`, stopped by SIGTERM at the end (exit 0)."""
    words = list(args)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nurtured", *words],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = Lines(proc)
    try:
        yield lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, lines.lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        lines.close()


def add_lead(home: Path, email: str = "ada@example.org", *more: str) -> None:  # noqa: F811
    added = cmd(home, "leads", "add", email, "--interest", "product-a", "--source", "webinar",
                "--now", NOW, *more)  # fmt: skip
    assert added.exit_code == 0, added.output


def test_run_says_what_it_serves_at_start(home: Path, daemon_env: dict[str, str]) -> None:  # noqa: F811
    """Started a day before the lead's first email: one INFO line each for the config,
    transport, inbox, streams, leads, the next email (lead's clock and UTC) and the port."""
    port = free_port()
    listen_on(home, port)
    add_lead(home)
    config = str(home / "config.toml")
    with daemon(home, daemon_env, "run", "--config", config, "--now", MONDAY) as out:
        out.wait(lambda line: "listening on" in line)
    text = [line.split(" INFO nurtured.daemon: ", 1)[1] for line in out.lines
            if " INFO nurtured.daemon: " in line]  # fmt: skip
    assert text[:7] == [
        f"nurtured 0.1.0 starting with {home / 'config.toml'}, sending here",
        f"transport: outbox, a Maildir at {home / 'outbox'} (nothing leaves this machine)",
        f"inbox: the Maildir {home / 'inbox'}",
        "streams: 3 loaded (long-term, product-a, product-b), 13 templates",
        "leads: 1 active, 1 in a stream",
        "next email due 2026-11-24 10:00:00 +01:00 Europe/Berlin (09:00:00 UTC)",
        f"listening on http://127.0.0.1:{port} (tracking links, intake API, /healthz, /metrics)",
    ]
    assert not any(line.startswith("pass:") for line in text)  # nothing was due
    assert text[-1] == "nurtured stopped: nothing due"


def test_json_logs_pass_line_and_sighup_reload(home: Path, daemon_env: dict[str, str]) -> None:  # noqa: F811
    """--log-format json: every line is one object with the stable keys; a pass that sent
    says so, and so does the next one after a click; SIGHUP reloads files even when size
    and mtime did not change, and a bad edit is refused in one line while the last good
    version keeps running."""
    port = free_port()
    listen_on(home, port)
    add_lead(home)
    config = str(home / "config.toml")
    stream = home / "streams" / "product-a.toml"
    with daemon(home, daemon_env, "--log-format", "json", "run", "--config", config,
                "--now", NOW) as out:  # fmt: skip
        out.wait(lambda line: '"pass: sent 1"' in line)
        (message,) = mailbox.Maildir(home / "outbox", create=False)
        text_part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        body = text_part.get_payload(decode=True).decode()
        link = re.findall(r"http://localhost:8080(/c/\S+)", body)[0]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", link)  # the redirect is not followed: its target is not ours
        assert conn.getresponse().status == 302
        conn.close()
        out.wait(lambda line: '"pass: clicks 1"' in line)
        # Same size, same mtime: only SIGHUP notices this edit.
        before = stream.stat()
        text = stream.read_text()
        assert 'name = "Product A: learning"' in text
        stream.write_text(text.replace("Product A: learning", "Product A: learnin!"))
        os.utime(stream, ns=(before.st_atime_ns, before.st_mtime_ns))
        out.proc.send_signal(signal.SIGHUP)
        out.wait(lambda line: "reloaded" in line)
        stream.write_text(text.replace('wait = "3d"', 'wait = "3 dayz"', 1))
        out.proc.send_signal(signal.SIGHUP)
        refused = out.wait(lambda line: "reload refused" in line)
    records = [json.loads(line) for line in out.lines]  # every line parses
    assert all(tuple(r)[:4] == JSON_KEYS for r in records)
    assert json.loads(refused) == {
        "time": json.loads(refused)["time"], "level": "ERROR", "logger": "nurtured.jobs",
        "message": "reload refused, the last good version kept: "
                   'streams/product-a.toml: steps[1].wait: "3 dayz" is not a duration',
    }  # fmt: skip
    assert sum("reload refused" in r["message"] for r in records) == 1
    assert datetime.fromisoformat(records[0]["time"]).tzinfo is not None


def test_a_busy_port_is_one_line_naming_the_key(home: Path, daemon_env: dict[str, str]) -> None:  # noqa: F811
    """Port taken: stderr is one line naming [http] listen; exit code 3; nothing else said."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listen_on(home, port)
        run = subprocess.run(
            [sys.executable, "-m", "nurtured", "run", "--config", str(home / "config.toml")],
            env=daemon_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert run.returncode == 3
    assert run.stderr.splitlines() == [
        f"error: [http] listen 127.0.0.1:{port}: address already in use; "
        "set [http] listen to another port"
    ]


def test_refusals_name_the_key_to_change() -> None:
    """A missing permission or a foreign address reads as one line with the key."""
    denied = OSError(errno.EACCES, "Permission denied")
    assert refusal("http.listen", "0.0.0.0:80", denied) == (
        "[http] listen 0.0.0.0:80: permission denied; "
        "set [http] listen to a port above 1023 or one this user may bind"
    )
    assert refusal("mail.outbox", "/srv/outbox", denied) == (
        "[mail] outbox /srv/outbox: permission denied; "
        "make it writable for this user or set [mail] outbox to another place"
    )
    foreign = OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
    assert refusal("http.listen", "10.9.9.9:8080", foreign).endswith(
        "not an address of this machine; set [http] listen to an address of this machine"
    )


def test_no_driver_debug_lines_at_vv_but_with_debug_all(
    home: Path,  # noqa: F811
    daemon_env: dict[str, str],  # noqa: F811
) -> None:
    """-vv is nurtured's DEBUG only; --debug-all lets the database driver's lines through."""
    add_lead(home)
    config = str(home / "config.toml")

    def stderr(*flags: str) -> str:
        words = [*flags, "run", "--once", "--config", config, "--now", NOW]
        run = subprocess.run(
            [sys.executable, "-m", "nurtured", *words],
            env=daemon_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        return run.stderr

    quiet = stderr("-vv")
    assert "DEBUG nurtured." in quiet  # our own debug lines are there
    assert not [line for line in quiet.splitlines()
                if " tortoise" in line or " aiosqlite" in line or " asyncpg" in line]  # fmt: skip
    loud = stderr("--debug-all")
    assert any(f" {name}" in loud for name in ("tortoise", "aiosqlite", "asyncpg"))


def test_config_before_or_after_the_command(
    home: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--config works before the subcommand; the one after it wins; a missing file is
    one error line and exit 1."""
    config = str(home / "config.toml")
    monkeypatch.chdir(tmp_path)  # no config.toml here: the default would fail
    before = CliRunner().invoke(main, ["--config", config, "validate"])
    assert before.exit_code == 0, before.output
    assert before.output.startswith("ok: 3 streams")
    status = CliRunner().invoke(main, ["--config", config, "status", "--now", NOW])
    assert status.exit_code == 0, status.output
    wins = CliRunner().invoke(main, ["--config", "nope.toml", "status", "--config", config])
    assert wins.exit_code == 0, wins.output
    missing = CliRunner().invoke(main, ["--config", "nope.toml", "status"])
    assert missing.exit_code == 1
    assert missing.output == "error: nope.toml: no such file (create one with `nurtured init`)\n"


def test_times_are_shown_on_the_lead_clock_to_the_second() -> None:
    """when.shown: the zone's wall clock with the offset, rounded to the second."""
    at = datetime(2026, 11, 24, 14, 0, 0, 600_000, tzinfo=UTC)
    assert shown(at, ZoneInfo("America/New_York")) == "2026-11-24 09:00:01 -05:00"
    assert shown_both(at, ZoneInfo("Europe/Berlin")) == "2026-11-24 15:00:01 +01:00 (14:00:01 UTC)"
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert shown_both(late, ZoneInfo("Asia/Tokyo")) == (
        "2026-11-25 08:30:00 +09:00 (2026-11-24 23:30:00 UTC)"
    )


def test_lead_show_status_and_move_use_local_times_and_run_once_says_next_due(home: Path) -> None:  # noqa: F811
    """A New York lead's times in lead show are New York's with the offset; status is in
    [sending] timezone; run --once says when the next email is due, also when nothing is."""
    add_lead(home, "ny@example.org", "--timezone", "America/New_York")
    early = cmd(home, "run", "--once", "--now", NOW)
    assert early.exit_code == 0, early.output
    assert early.output == (
        "run --once: nothing due until 2026-11-24 09:00:00 -05:00 (14:00:00 UTC)\n"
    )
    sent = cmd(home, "run", "--once", "--now", "2026-11-24T14:00:00Z")
    assert sent.output == (
        "run --once: sent 1; next email due 2026-12-01 10:00:00 -05:00 (15:00:00 UTC)\n"
    )
    show = cmd(home, "lead", "show", "ny@example.org")
    assert show.exit_code == 0, show.output
    due = "step 1 next 2026-12-01 10:00:00 -05:00 (15:00:00 UTC)"
    assert f"  product-a            active   {due}" in show.output
    assert "  2026-11-24 04:00:00 -05:00  enrolled " in show.output
    assert "  2026-11-24 09:00:00 -05:00  email sent " in show.output
    status = cmd(home, "status", "--now", NOW)
    assert status.output.startswith("as of 2026-11-24 10:00:00 +01:00 (09:00:00 UTC)\n")
    assert "next due 2026-12-01 16:00:00 +01:00" in status.output
    moved = cmd(home, "move", "ny@example.org", "product-b", "--now", "2026-11-24T14:00:00Z")
    assert moved.output == (
        "ny@example.org: now in product-b (active), next email 2026-11-24 09:00:00 -05:00 "
        "(14:00:00 UTC)\n"
    )


def test_lead_show_and_leads_add_say_why_a_stream_was_not_entered(home: Path) -> None:  # noqa: F811
    """No source: product-a's entry rule wants one; leads add and lead show name the field."""
    add = cmd(home, "leads", "add", "solo@example.org", "--interest", "product-a", "--now", NOW)
    assert add.exit_code == 0, add.output
    assert add.output.splitlines() == [
        "solo@example.org: created; enrolled: long-term",
        "  not product-a: source (none) is not in entry.sources [badge-scan, webinar, white-paper]",
    ]
    show = cmd(home, "lead", "show", "solo@example.org")
    lines = show.output.splitlines()
    start = lines.index("entry rules (no source, interests product-a):")
    assert lines[start + 1 : start + 4] == [
        "  long-term  enters  any source and any interest match",
        "  product-a  no      source (none) is not in entry.sources "
        "[badge-scan, webinar, white-paper]",
        "  product-b  no      interests [product-a] have none of entry.interests [product-b]",
    ]
    data = json.loads(cmd(home, "lead", "show", "solo@example.org", "--json").output)
    assert [(r["stream"], r["enters"]) for r in data["entry_rules"]] == [
        ("long-term", True), ("product-a", False), ("product-b", False),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["lead", "show", "nobody@example.org"], 1, "error: no lead with email 'nobody@"),
        (["move", "nobody@example.org", "long-term"], 1, "error: no lead with email"),
        (["status", "--now", "yesterday"], 2, "error: Invalid value for '--now'"),
        (["preview", "nope", "0"], 1, "error: no stream 'nope'"),
        (["leads", "add", "bob@@example.org"], 1, "error: "),
        (["report", "--since", "soon"], 2, "error: Invalid value for '--since'"),
        (["handoffs", "--bogus"], 2, "error: No such option '--bogus'"),
        (["handoff", "accept", "nobody@example.org"], 1, "error: no lead with email"),
    ],
)
def test_errors_are_one_error_line_and_an_exit_code(
    home: Path,  # noqa: F811
    args: list[str],
    code: int,
    message: str,
) -> None:
    """Bad input to a command: `error: ...`, no traceback, exit 1 (bad input) or 2 (usage)."""
    result = cmd(home, *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert "Error:" not in result.output


def test_handoffs_show_the_deadline_on_the_lead_clock(home: Path) -> None:  # noqa: F811
    """A Tokyo lead's handoff deadline is printed in Tokyo time with the offset."""
    add = cmd(home, "leads", "add", "demo@example.org", "--source", "demo-request",
              "--timezone", "Asia/Tokyo", "--now", NOW)  # fmt: skip
    assert add.exit_code == 0, add.output
    listed = cmd(home, "handoffs", "--now", "2026-11-24T12:00:00+01:00")
    assert listed.exit_code == 0, listed.output
    (row,) = listed.output.splitlines()
    assert row.startswith("demo@example.org ")
    assert row.endswith(" 2.0h  ok       due 2026-11-27 02:00:00 +09:00")


def test_a_database_that_cannot_be_opened_is_one_line(
    home: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SQLite file in a directory that does not exist: one line naming [database] url,
    exit 3 (it used to hang); a password in a URL is never printed."""
    missing = tmp_path / "no" / "such" / "dir" / "n.db"
    monkeypatch.setenv("NURTURED_DATABASE_URL", f"sqlite://{missing}")
    result = cmd(home, "status")
    assert result.exit_code == 3
    assert result.output == (
        f"error: [database] url sqlite://{missing}: no such file or directory; check "
        "[database] url (the environment variable NURTURED_DATABASE_URL overrides it)\n"
    )
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("NURTURED_DATABASE_URL", f"postgres://u:hunter2@127.0.0.1:{port}/x")
    refused = cmd(home, "status")
    assert refused.exit_code == 3
    assert refused.output.startswith(
        f"error: [database] url postgres://u:***@127.0.0.1:{port}/x: connection refused; "
    )
