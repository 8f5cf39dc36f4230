"""The pieces under scale-out: the leader lease and heartbeats in Redis, recovery of a
dead worker's sends named by its heartbeat, and migrations run once by many processes."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from nurtured.app import Runtime, load_app
from nurtured.enrollment import LEASE
from nurtured.jobs import recover
from nurtured.lease import holder_of
from nurtured.models import Delivery, DeliveryStatus, Enrollment
from nurtured.scaleout.leader import Heartbeats, Leader, lead
from tests.conftest import _admin
from tests.scaleout import REDIS, ROOT, Procs, forget_queues, scaleout_project, until
from tests.walk import MONDAY, write_project

TTL = timedelta(milliseconds=300)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS)
    try:
        await client.ping()
    except OSError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS}: {exc}")
    yield client
    await client.aclose()


@pytest.fixture
def key() -> str:
    return f"nurtured-test-{secrets.token_hex(4)}"


async def test_one_leader_at_a_time_renewed_and_taken_over_after_expiry(
    redis: Redis, key: str
) -> None:
    """Only the holder renews or releases; the key expires when it stops renewing."""
    a, b = Leader(redis, key, "a", TTL), Leader(redis, key, "b", TTL)
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.renew()
    assert not await b.renew()
    await b.release()  # not b's to release
    assert await a.holder_now() == "a"

    async def taken() -> bool:  # a stops renewing, as a dead process does
        return await b.acquire()

    await until(taken, 5, "b to take the lease", every=0.05)
    assert await b.holder_now() == "b"
    assert not await a.renew()
    await b.release()
    assert await a.holder_now() is None


async def test_lead_runs_the_singletons_in_one_process_and_hands_over_on_stop(
    redis: Redis, key: str
) -> None:
    """Two candidates: one runs the singletons; when it stops, the other takes over."""
    running: list[str] = []

    def singletons(name: str) -> Any:
        async def run(resign: asyncio.Event) -> None:
            running.append(name)
            await resign.wait()
            running.remove(name)

        return run

    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(lead(Leader(redis, key, "a", TTL), stop_a, singletons("a")))

    async def a_leads() -> bool:
        return running == ["a"]

    await until(a_leads, 5, "a to lead", every=0.02)
    task_b = asyncio.create_task(lead(Leader(redis, key, "b", TTL), stop_b, singletons("b")))
    await asyncio.sleep(0)
    assert running == ["a"]
    stop_a.set()
    await task_a

    async def b_leads() -> bool:
        return running == ["b"]

    await until(b_leads, 5, "b to take over", every=0.02)
    stop_b.set()
    await task_b
    assert running == []
    assert await redis.get(key) is None


async def test_a_worker_whose_heartbeat_expired_is_gone_until_forgotten(
    redis: Redis, key: str
) -> None:
    beats = Heartbeats(redis, key, TTL)
    await beats.beat("host-1-aa")
    await beats.beat("host-2-bb")
    assert await beats.gone() == set()
    await beats.leave("host-2-bb")  # a clean stop is never "gone"

    async def expired() -> bool:
        return await beats.gone() == {"host-1-aa"}

    await until(expired, 5, "the heartbeat to expire", every=0.05)
    await beats.forget({"host-1-aa"})
    assert await beats.gone() == set()


async def test_recover_takes_back_the_sends_of_a_gone_holder_on_another_machine(
    tmp_path: Path, db: str, smtp_sink: Any
) -> None:
    """A lease of another machine's worker runs 10 minutes; named gone, it is taken
    back at once: claimed becomes a retry, sending becomes unknown, the lead due now."""
    from nurtured.app import make_transport
    from nurtured.intake import make_input, upsert

    app = load_app(write_project(tmp_path, smtp_sink.port))
    await upsert([make_input({"email": f"l{i}@example.com", "interest": "a"}) for i in range(3)],
                 app.catalog, app.rules, MONDAY)  # fmt: skip
    lease = "ffffff-4242-abcd-00000001"  # not this machine: holder_is_dead cannot tell
    await Enrollment.all().update(lease=lease, next_due_at=MONDAY + LEASE)
    enrollments = await Enrollment.all().order_by("id")
    for enrollment, status in zip(enrollments, (DeliveryStatus.CLAIMED, DeliveryStatus.SENDING),
                                  strict=False):  # fmt: skip
        await Delivery.create(lead_id=enrollment.lead_id, stream_id="a", content_id="intro",
                              step_index=0, status=status, claimed_at=MONDAY,
                              token=f"t{enrollment.id}",
                              message_id=f"<{enrollment.id}@x>")  # fmt: skip
    runtime = Runtime(app, make_transport(app.settings))
    assert await recover(runtime, MONDAY) == 0  # alive as far as anyone here can tell
    assert await recover(runtime, MONDAY, {holder_of(lease)}) == 2
    statuses = sorted(str(d.status) for d in await Delivery.all())
    assert statuses == sorted([str(DeliveryStatus.DEFERRED), str(DeliveryStatus.UNKNOWN)])
    assert await Enrollment.filter(next_due_at=MONDAY, lease__isnull=True).count() == 3


def _start_status(config_path: Path, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NURTURED_DATABASE_URL": url}
    return subprocess.Popen(  # the command migrates the database at start
        [sys.executable, "-m", "nurtured", "status", "--config", str(config_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _all_exit_0(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode()


def test_processes_started_together_migrate_a_fresh_postgresql_database_once(
    tmp_path: Path, postgres_url: str | None
) -> None:
    """Four processes on a new database at once: the advisory lock lets one migrate."""
    if postgres_url is None:
        pytest.skip("needs PostgreSQL: set NURTURED_TEST_POSTGRES")
    name = f"nurtured_fresh_{secrets.token_hex(4)}"
    parts = urlsplit(postgres_url)
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        config_path = write_project(tmp_path, 2525)
        url = urlunsplit(parts._replace(path=f"/{name}"))
        _all_exit_0([_start_status(config_path, url) for _ in range(4)])
    finally:
        asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_processes_started_together_migrate_a_fresh_sqlite_file_once(tmp_path: Path) -> None:
    """The same on SQLite, where a file lock next to the database does it."""
    config_path = write_project(tmp_path, 2525)
    _all_exit_0([_start_status(config_path, f"sqlite://{tmp_path}/fresh.db") for _ in range(4)])
    assert (tmp_path / "fresh.db.migrate-lock").exists()


async def test_a_worker_on_sqlite_stops_on_sigterm_and_leaves_no_trace(tmp_path: Path) -> None:
    """SIGTERM on an idle worker: exit 0 at once, the leader key and heartbeat gone.
    (Its database, opened outside arq's main task, is closed: SQLite's thread would
    otherwise keep the process alive.)"""
    config_path = scaleout_project(tmp_path, 2525)
    queue = load_app(config_path).settings.queue.queue_name
    procs = Procs(tmp_path, f"sqlite://{tmp_path}/worker.db")
    worker = procs.worker(config_path, MONDAY)
    try:
        await worker.wait_for(" took ")  # it leads: the only candidate
        worker.popen.send_signal(signal.SIGTERM)
        assert await worker.exit_code(within=15) == 0
        client = Redis.from_url(REDIS)
        try:
            assert await client.get(f"{queue}:leader") is None
            assert await client.smembers(f"{queue}:workers") == set()
        finally:
            await client.aclose()
    finally:
        if worker.popen.poll() is None:
            worker.popen.kill()
            worker.popen.wait()
        forget_queues()
