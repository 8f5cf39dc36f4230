"""Scale-out as a user runs it: real ``nurtured worker`` processes on PostgreSQL and Redis.

The workers' clock stands at ``--now``; the later steps are due at times the test passes
in with the send jobs it queues itself. Waiting is for events (a count in the database,
a line in a log), with timeouts; nothing sleeps for time to pass.
"""

from __future__ import annotations

import re
import secrets
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from nurtured.app import load_app
from nurtured.config import Settings
from nurtured.intake import make_input, upsert
from nurtured.models import Delivery, DeliveryStatus, Enrollment
from nurtured.worker import connect, enqueue_sends
from tests.scaleout import (
    REDIS,
    ROOT,
    Proc,
    Procs,
    forget_queues,
    pg,
    procs,
    received,
    scaleout_project,
    until,
)
from tests.walk import MONDAY

__all__ = ["pg", "procs"]  # fixtures

T1 = MONDAY
T2 = MONDAY + timedelta(days=2, minutes=1)  # stream a's second step ("a1") is due
T3 = T2 + timedelta(days=2, minutes=1)  # and its third ("a2")
OPEN = (DeliveryStatus.CLAIMED, DeliveryStatus.SENDING)


async def add_leads(config_path: Path, count: int) -> None:
    app = load_app(config_path)
    items = [make_input({"email": f"lead{i}@example.com", "interest": "a"}) for i in range(count)]
    await upsert(items, app.catalog, app.rules, T1)


async def sent() -> int:
    return await Delivery.filter(status=DeliveryStatus.SENT).count()


async def drive(settings: Settings, now: datetime, target: int, within: float) -> None:
    """Queue send jobs at ``now`` (again while some are still to go) until ``target``
    deliveries are sent and none is open."""
    redis = await connect(settings)

    async def done() -> bool:
        await enqueue_sends(redis, settings, now=now)  # an id queued or running is skipped
        return await sent() >= target and not await Delivery.filter(status__in=OPEN).count()

    try:
        await until(done, within, f"{target} sent", every=0.2)
    finally:
        await redis.aclose()


@pytest.mark.timeout(240)  # real processes on a shared 2-core machine
async def test_three_workers_send_each_due_email_exactly_once(
    tmp_path: Path, db: str, smtp_sink: Any, procs: Procs
) -> None:
    """3 workers, 5,000 leads, two steps: 10,000 emails, none twice, every worker a share."""
    config_path = scaleout_project(tmp_path, smtp_sink.port)
    workers = [procs.worker(config_path, T1, name=f"w{i}") for i in range(3)]
    for proc in workers:
        await proc.wait_for("ready")
    await add_leads(config_path, 5000)  # the leader's tick queues the first step's jobs

    async def first_step_done() -> bool:
        return await sent() >= 5000

    await until(first_step_done, 120, "the first step")
    await drive(load_app(config_path).settings, T2, 10_000, within=120)

    counts = received(smtp_sink)
    expected = {
        (f"lead{i}@example.com", f"{c} for you") for i in range(5000) for c in ("intro", "a1")
    }
    assert set(counts) == expected
    assert max(counts.values()) == 1
    assert await Delivery.filter(status=DeliveryStatus.SENT).count() == 10_000
    assert await Delivery.all().count() == 10_000
    await until(lambda: _logged_sent(workers, 10_000), 15, "the workers' pass lines")
    shares = [proc.sent() for proc in workers]
    assert sum(shares) == 10_000
    assert min(shares) >= 1000, shares  # each worker did a share, not one of them all
    assert await procs.stop_all() == [0, 0, 0]


@pytest.mark.timeout(150)  # real processes on a shared 2-core machine
async def test_a_killed_worker_s_share_is_finished_by_the_others_in_seconds(
    tmp_path: Path, db: str, smtp_sink: Any, procs: Procs
) -> None:
    """SIGKILL one of 3 workers mid-batch: the others finish its leads within seconds;
    nothing is sent twice, and what the dead one had handed to SMTP is "unknown"."""
    config_path = scaleout_project(tmp_path, smtp_sink.port, batch_size=25)
    workers = [procs.worker(config_path, T1, name=f"w{i}") for i in range(3)]
    for proc in workers:
        await proc.wait_for("ready")
    await add_leads(config_path, 1500)

    victim = workers[0]
    found = re.search(r"worker (\S+) ready", victim.text())
    assert found
    holder = found.group(1)  # host-pid-start, as its leases name it

    held = Enrollment.filter(lease__startswith=f"{holder}-")

    async def victim_mid_batch() -> bool:
        return victim.sent() >= 100 and await held.count() > 0

    await until(victim_mid_batch, 60, "w0 sending")
    victim.popen.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await victim.exit_code()
    assert await sent() < 1500  # work was left for the others

    async def taken_back() -> bool:
        return not await held.count()

    await until(taken_back, 20, "the dead worker's leads taken back")
    assert time.monotonic() - killed < 10  # seconds, not the lease's 10 minutes

    async def all_settled() -> bool:
        settled = await Delivery.filter(
            status__in=(DeliveryStatus.SENT, DeliveryStatus.UNKNOWN)
        ).count()
        return settled == 1500 and not await Delivery.filter(status__in=OPEN).count()

    await until(all_settled, 90, "every lead settled")
    counts = received(smtp_sink)
    assert max(counts.values()) == 1
    unknown = await Delivery.filter(status=DeliveryStatus.UNKNOWN).count()
    assert unknown <= 8  # at most the transactions in flight at the kill
    assert len(counts) >= 1500 - unknown  # every lead got its email (unknown ones may have)
    assert await procs.stop_all() == [-signal.SIGKILL, 0, 0]


@pytest.mark.timeout(120)  # real processes on a shared 2-core machine
async def test_the_leader_killed_is_replaced(
    tmp_path: Path, db: str, smtp_sink: Any, procs: Procs
) -> None:
    """Kill the worker holding the leader lease: another takes it within seconds, and
    its tick sends what becomes due."""
    config_path = scaleout_project(tmp_path, smtp_sink.port)
    queue = load_app(config_path).settings.queue.queue_name
    workers = [procs.worker(config_path, T1, name=f"w{i}") for i in range(2)]
    for proc in workers:
        await proc.wait_for("ready")
    redis = Redis.from_url(REDIS)
    try:
        holders: list[str] = []

        async def led() -> bool:
            value = await redis.get(f"{queue}:leader")
            if value:
                holders.append(value.decode())
            return bool(value)

        await until(led, 10, "a leader")
        pid = int(holders[-1].split("-")[1])
        leader = next(proc for proc in workers if proc.popen.pid == pid)
        other = next(proc for proc in workers if proc is not leader)
        leader.popen.send_signal(signal.SIGKILL)

        async def replaced() -> bool:
            value = await redis.get(f"{queue}:leader")
            return bool(value) and int(value.decode().split("-")[1]) == other.popen.pid

        await until(replaced, 10, "a new leader")
    finally:
        await redis.aclose()
    await add_leads(config_path, 50)

    async def all_sent() -> bool:
        return await sent() == 50

    await until(all_sent, 30, "the new leader's tick to send")
    # A pass logs what it sent once its outcomes are saved: the line follows the rows.
    await until(lambda: _logged_sent([other], 50), 15, "the survivor's pass line")
    assert other.sent() == 50
    assert max(received(smtp_sink).values()) == 1
    expected = [-signal.SIGKILL if proc is leader else 0 for proc in workers]
    assert await procs.stop_all() == expected


@pytest.mark.timeout(150)  # real processes on a shared 2-core machine
async def test_sigterm_stops_taking_work_finishes_its_sends_and_exits_0(
    tmp_path: Path, db: str, smtp_sink: Any, procs: Procs
) -> None:
    """SIGTERM mid-work: exit 0 within the drain, no delivery left claimed or sending,
    work left due for the next worker, which sends it: each email exactly once."""
    config_path = scaleout_project(tmp_path, smtp_sink.port, batch_size=25, drain="10s")
    worker = procs.worker(config_path, T1, name="w0")
    await worker.wait_for("ready")
    await add_leads(config_path, 1000)

    async def sending() -> bool:
        return await sent() >= 100

    await until(sending, 60, "sending")
    worker.popen.send_signal(signal.SIGTERM)
    assert await worker.exit_code(within=15) == 0
    assert "stopped" in worker.text()
    assert not await Delivery.filter(status__in=OPEN).count()
    assert not await Delivery.filter(status=DeliveryStatus.UNKNOWN).count()
    assert await sent() < 1000  # it stopped taking work

    successor = procs.worker(config_path, T1, name="w1")
    await successor.wait_for("ready")

    async def all_sent() -> bool:
        return await sent() == 1000

    await until(all_sent, 60, "the successor to finish")
    counts = received(smtp_sink)
    assert len(counts) == 1000
    assert max(counts.values()) == 1
    assert await procs.stop_all() == [0, 0]


@pytest.mark.timeout(150)  # real processes on a shared 2-core machine
async def test_template_edits_reach_every_worker_and_a_bad_edit_is_refused_by_all(
    tmp_path: Path, db: str, smtp_sink: Any, procs: Procs
) -> None:
    """Edits while 3 workers run: a broken template is refused by each (the last good
    one is sent), a good edit is sent by each from its next job on."""
    config_path = scaleout_project(tmp_path, smtp_sink.port, batch_size=20)
    templates = config_path.parent / "templates"
    workers = [procs.worker(config_path, T1, name=f"w{i}") for i in range(3)]
    for proc in workers:
        await proc.wait_for("ready")
    await add_leads(config_path, 600)

    async def first_step_done() -> bool:
        return await sent() >= 600

    await until(first_step_done, 60, "the first step")

    settings = load_app(config_path).settings
    good_a1 = (templates / "a1.j2").read_text()
    (templates / "a1.j2").write_text("{% block subject %}{{ broken {% endblock %}\n")
    await drive(settings, T2, 1200, within=60)
    (templates / "a1.j2").write_text(good_a1)
    new_a2 = (templates / "a2.j2").read_text().replace("a2 for", "NEW a2 for")
    (templates / "a2.j2").write_text(new_a2)
    await drive(settings, T3, 1800, within=60)

    counts = received(smtp_sink)
    assert {subject for (_, subject) in counts} == {"intro for you", "a1 for you",
                                                   "NEW a2 for you"}  # fmt: skip
    assert len(counts) == 1800
    assert max(counts.values()) == 1
    # Every worker that sent after an edit had looked at it first.
    await until(lambda: _logged_sent(workers, 1800), 15, "the workers' pass lines")
    refused = [proc for proc in workers if proc.sent(at=T2)]
    reloaded = [proc for proc in workers if proc.sent(at=T3)]
    assert len(refused) >= 2
    assert len(reloaded) >= 2
    for proc in refused:
        assert "reload refused" in proc.text()
        assert "a1.j2" in proc.text()
    for proc in reloaded:
        assert "reloaded" in proc.text()
    assert await procs.stop_all() == [0, 0, 0]


@pytest.mark.timeout(120)  # real processes on a shared 2-core machine
async def test_run_and_workers_started_together_on_a_fresh_database(
    tmp_path: Path, smtp_sink: Any, pg: str
) -> None:
    """Two `nurtured run` on one port and two workers, started at once on a database
    never migrated: all come up (one migrates, the others wait), one of the four leads,
    the leads are sent once each, both tracking servers answer, SIGTERM stops all with 0."""
    import aiohttp

    from nurtured.db import database
    from tests.conftest import _admin
    from tests.smtp_sink import free_port

    name = f"nurtured_fresh_{secrets.token_hex(4)}"
    await _admin(pg, f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(pg)._replace(path=f"/{name}"))
    port = free_port()
    config_path = scaleout_project(tmp_path, smtp_sink.port)
    text = config_path.read_text().replace("[mail]", f'[http]\nlisten = "127.0.0.1:{port}"\n[mail]')
    config_path.write_text(text)
    procs = Procs(tmp_path, url)
    try:
        run = ("-v", "run", "--config", str(config_path), "--now", T1.isoformat())
        servers = [procs.start(*run, name=f"run{i}") for i in range(2)]
        workers = [procs.worker(config_path, T1, name=f"w{i}") for i in range(2)]
        for proc in servers:
            await proc.wait_for("listening on http:")
        for proc in workers:
            await proc.wait_for("ready")
        async with database(url), aiohttp.ClientSession() as http:
            for _ in range(4):  # the kernel spreads the connections over both servers
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
            await add_leads(config_path, 200)
            await until(lambda: _sent_is(200), 60, "200 sent")
            # The leader alone reads the inbox: a reply is taken once, by one process.
            delivery = await Delivery.get(lead__email="lead7@example.com")
            reply = (ROOT / "tests" / "corpus" / "reply-en-gmail.eml").read_bytes()
            inbox = config_path.parent / "inbox"
            (inbox / "new" / "1.reply").write_bytes(
                reply.replace(b"<REPLACE-ME@acme.example>", delivery.message_id.encode())
            )

            async def read() -> bool:
                return (inbox / "cur" / "1.reply:2,S").exists()

            await until(read, 30, "the reply read")
            await until(lambda: _logged("-> recorded", procs), 10, "the reply recorded")
            assert sum(proc.text().count("inbound <") for proc in procs.started) == 1
        assert max(received(smtp_sink).values()) == 1
        assert sum(" took " in proc.text() for proc in procs.started) == 1  # one leader
        assert await procs.stop_all() == [0, 0, 0, 0]
    finally:
        for proc in procs.started:
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait()
        forget_queues()
        await _admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _logged(text: str, procs: Procs) -> bool:
    return any(text in proc.text() for proc in procs.started)


async def _sent_is(count: int) -> bool:
    return await sent() == count


async def _logged_sent(workers: list[Proc], total: int) -> bool:
    """The workers' pass lines account for ``total`` emails (a pass logs what it sent
    right after saving it: the rows can be seen a moment before the line)."""
    return sum(proc.sent() for proc in workers) >= total
