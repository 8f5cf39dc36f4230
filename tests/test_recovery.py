"""No lead left behind by a crash: claims never handed to SMTP are sent after a restart;
only those whose transaction had begun may end "unknown"."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nurtured.exceptions import ClaimLost
from nurtured.lease import _HOST, holder_is_dead, new_lease
from nurtured.marks import StartMarks
from nurtured.models import Delivery, DeliveryStatus, Enrollment
from tests.smtp_sink import SmtpSink
from tests.walk import MONDAY, Walk, config, write_project


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_lease_says_whether_its_holder_is_gone() -> None:
    """Our own lease is alive; a finished process's or an earlier start's with our pid is
    dead; another machine's, or an old-style lease, is left to run out."""
    assert not holder_is_dead(new_lease())
    assert holder_is_dead(f"{_HOST}-{dead_pid()}-abcd-00000000")
    assert holder_is_dead(f"{_HOST}-{os.getpid()}-zzzz-00000000")  # a restarted container
    assert not holder_is_dead(f"{_HOST}-1-abcd-00000000")  # pid 1 runs (or is not ours)
    assert not holder_is_dead(f"ffffff-{dead_pid()}-abcd-00000000")  # another machine
    assert not holder_is_dead("0123456789abcdef")
    assert len(new_lease()) <= 32


async def crash_mid_pass(walk: Walk, count: int, started: int, holder: str) -> list[Delivery]:
    """Leave the state a kill -9 leaves: ``count`` leads leased by ``holder`` and claimed,
    the first ``started`` of them handed to SMTP."""
    for i in range(count):
        await walk.add(f"lead{i}@example.com")
    enrollments = await Enrollment.all().order_by("id")
    await Enrollment.filter(id__in=[e.id for e in enrollments]).update(
        lease=holder, next_due_at=MONDAY + timedelta(minutes=10)
    )
    deliveries = []
    for i, enrollment in enumerate(enrollments):
        status = DeliveryStatus.SENDING if i < started else DeliveryStatus.CLAIMED
        deliveries.append(
            await Delivery.create(
                lead_id=enrollment.lead_id,
                content_id="intro",
                stream_id="a",
                step_index=0,
                token=f"tok{i:019d}",
                message_id=f"<tok{i:019d}@acme.example>",
                status=status,
                claimed_at=MONDAY,
            )
        )
    return deliveries


async def test_a_restart_at_once_sends_what_was_claimed_but_not_started(walk: Walk) -> None:
    """The dead process's claims are taken back at start, not after the lease: unstarted
    ones are sent (same Message-ID), started ones are unknown and not resent."""
    await crash_mid_pass(walk, 5, 2, f"{_HOST}-{dead_pid()}-abcd-00000000")
    soon = MONDAY + timedelta(seconds=5)  # restarted at once: the lease has 10 min to run
    assert await walk.engine.recover(soon) == 5
    statuses = dict(await Delivery.all().values_list("token", "status"))
    assert [statuses[f"tok{i:019d}"] for i in range(5)] == ["unknown"] * 2 + ["deferred"] * 3
    report = await walk.engine.run_due(soon)
    assert report["sent"] == 3
    rcpts = sorted(r for m in walk.sink.messages for r in m.rcpt_tos)
    assert rcpts == [f"lead{i}@example.com" for i in (2, 3, 4)]
    (message,) = walk.received("lead3@example.com")
    assert message["Message-ID"] == f"<tok{3:019d}@acme.example>"
    # The unknown ones never get intro again; their walk goes on with a1.
    await walk.engine.run_due(soon + timedelta(days=3))
    assert walk.subjects("lead0@example.com") == ["a1"]
    assert walk.subjects("lead3@example.com") == ["intro", "a1"]


async def test_a_live_holders_claims_are_left_alone(walk: Walk) -> None:
    """Claims of a process that still runs (here: this one) are not touched at start."""
    await crash_mid_pass(walk, 3, 1, new_lease())
    assert await walk.engine.recover(MONDAY + timedelta(seconds=5)) == 0
    assert await Delivery.filter(status=DeliveryStatus.CLAIMED).count() == 2
    # Once the lease has run out they are anyone's to recover.
    assert await walk.engine.recover(MONDAY + timedelta(minutes=11)) == 3
    assert await Delivery.filter(status=DeliveryStatus.DEFERRED).count() == 2
    assert await Delivery.filter(status=DeliveryStatus.UNKNOWN).count() == 1


async def test_start_marks_are_group_committed(walk: Walk) -> None:
    """40 emails over 4 senders: every delivery is marked before its transaction, in far
    fewer statements than emails, and none is left 'claimed' or 'sending'."""
    text = config(walk.sink.port).replace("batch_size = 2", "batch_size = 40")
    root = Path(str(walk.app.settings.base_dir)) / "big"
    from nurtured.app import load_app
    from nurtured.engine import Engine

    app = load_app(write_project(root, walk.sink.port, **{"config.toml": text}))
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=walk.transport)  # fmt: skip
    for i in range(40):
        await walk.add(f"lead{i}@example.com")
    assert (await engine.run_due(MONDAY))["sent"] == 40
    assert 1 <= engine.marks.statements < 40
    assert await Delivery.filter(status=DeliveryStatus.SENT).count() == 40


async def test_a_claim_taken_back_before_its_mark_is_not_sent(walk: Walk) -> None:
    """If recovery gave the claim to someone else, the mark fails and nothing is sent, and
    the delivery row is left as the new owner wrote it."""
    lead = await walk.add("ada@example.com")
    delivery = await Delivery.create(
        lead_id=lead.id, content_id="intro", stream_id="a", step_index=0, token="t" * 22,
        message_id="<x@acme.example>", status=DeliveryStatus.DEFERRED, claimed_at=MONDAY,
    )  # fmt: skip
    marks = StartMarks()
    assert await marks.start(delivery.id) is False
    assert (await Delivery.get(id=delivery.id)).status == DeliveryStatus.DEFERRED
    await Delivery.filter(id=delivery.id).update(status=DeliveryStatus.CLAIMED)
    assert await marks.start(delivery.id) is True
    assert (await Delivery.get(id=delivery.id)).status == DeliveryStatus.SENDING


async def test_engine_sends_nothing_for_a_lost_claim(walk: Walk, monkeypatch: Any) -> None:
    """A lost mark: no SMTP transaction, the pass counts it, the row is not overwritten."""
    await walk.add("ada@example.com")

    async def lost(self: StartMarks, delivery_id: int) -> bool:
        await Delivery.filter(id=delivery_id).update(status=DeliveryStatus.DEFERRED)
        return False

    monkeypatch.setattr(StartMarks, "start", lost)
    report = await walk.engine.run_due(MONDAY)
    assert (report["claim_lost"], report["sent"]) == (1, 0)
    assert walk.sink.messages == []
    assert (await Delivery.get(content_id="intro")).status == DeliveryStatus.DEFERRED
    assert ClaimLost.__mro__[1].__name__ == "SendError"


# -- kill -9 of a real daemon ---------------------------------------------------------

LEADS = 7_500
NOW = "2026-11-23T10:00:00+00:00"


def daemon(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "NURTURED_DATABASE_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "nurtured", *args, "--config", str(root / "config.toml")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.timeout(300)
async def test_kill_9_mid_send_leaves_no_lead_behind(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """kill -9 during a 7,500-lead send, restart at once: every lead is mailed exactly once
    except at most the transactions in flight, which are 'unknown' (never resent)."""
    text = config(smtp_sink.port).replace("batch_size = 2", "batch_size = 500")
    text += f'\n[database]\nurl = "sqlite://{tmp_path}/crash.db"\n'
    root = tmp_path / "p"
    write_project(root, smtp_sink.port, **{"config.toml": text})
    with (root / "leads.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "interests", "source"])
        writer.writerows([f"lead{i}@example.com", "a", "webinar"] for i in range(LEADS))
    imported = daemon(root, "leads", "import", str(root / "leads.csv"), "--now", NOW)
    _, err = await asyncio.to_thread(imported.communicate, timeout=240)
    assert imported.returncode == 0, err

    first = daemon(root, "run", "--once", "--now", NOW)
    try:
        await wait_until(lambda: len(smtp_sink.messages) >= 2_000, first)
    finally:
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.communicate, timeout=30)
    with sqlite3.connect(tmp_path / "crash.db") as db:
        at_kill = dict(db.execute("SELECT status, count(*) FROM delivery GROUP BY status"))
    in_flight = at_kill.get("sending", 0)
    workers = 2 * 2  # two senders per SMTP connection, pool_size = 2
    # Each sender: the transaction it is in, and the one it finished whose "sent" mark
    # rides with its next start mark.
    assert in_flight <= 2 * workers
    assert at_kill.get("claimed", 0) > 0  # the next batch was claimed ahead: not lost

    second = daemon(root, "run", "--once", "--now", NOW)
    _, err = await asyncio.to_thread(second.communicate, timeout=240)
    assert second.returncode == 0, err

    with sqlite3.connect(tmp_path / "crash.db") as db:
        after = dict(db.execute("SELECT status, count(*) FROM delivery GROUP BY status"))
    rcpts = [r for m in smtp_sink.messages for r in m.rcpt_tos]
    assert len(rcpts) == len(set(rcpts))  # 0 duplicates
    assert after.get("unknown", 0) == in_flight
    assert after.get("sent", 0) + after.get("unknown", 0) == LEADS
    assert set(rcpts) >= set(sent_leads(tmp_path / "crash.db"))
    assert len(set(rcpts)) >= LEADS - in_flight


def sent_leads(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT lead.email FROM delivery JOIN lead ON lead.id = delivery.lead_id"
            " WHERE delivery.status = 'sent'"
        )
        return [email for (email,) in rows]


async def wait_until(condition: Any, proc: subprocess.Popen[str]) -> None:
    """Poll another process's visible effects (not waiting for time to pass)."""
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the daemon did not get there in 120 s"
        await asyncio.sleep(0.005)
