"""Helpers for the scale-out tests: a project on PostgreSQL and Redis with short
lease and tick settings, and real ``python3 -m nurtured worker`` processes."""

from __future__ import annotations

import asyncio
import email
import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.walk import config, write_project

ROOT = Path(__file__).parent.parent
REDIS = os.environ.get("NURTURED_TEST_REDIS", "redis://127.0.0.1:6379/15")
QUEUES: list[str] = []  # made by scaleout_project; their keys are deleted after the test


def scaleout_project(root: Path, port: int, *, batch_size: int = 100, drain: str = "5s") -> Path:
    """A project sending through arq on a queue of its own; ticks and liveness of 1 s."""
    queue = f"nurtured-test-{secrets.token_hex(4)}"
    QUEUES.append(queue)
    text = (
        config(port).replace("batch_size = 2", f"batch_size = {batch_size}")
        + f"""
        [queue]
        backend = "arq"
        redis_url = "{REDIS}"
        queue_name = "{queue}"
        parallel = 3
        max_jobs = 1
        tick = "1s"
        liveness = "1s"
        drain = "{drain}"
    """
    )
    return write_project(root, port, **{"config.toml": text})


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def sent(self, at: datetime | None = None) -> int:
        """Emails this process reported sent (in passes at ``at``), from its
        "pass at <now>: ..., sent N" lines."""
        total = 0
        mark = " pass at " + (at.isoformat() if at else "")
        for line in self.text().splitlines():
            if mark in line:
                counts = dict(part.rsplit(" ", 1) for part in line.split(": ", 2)[-1].split(", "))
                total += int(counts.get("sent", 0))
        return total

    async def wait_for(self, text: str, within: float = 30) -> None:
        await until(lambda: _has(self, text), within, f"{self.name}: {text!r}")

    async def exit_code(self, within: float = 30) -> int:
        for _ in range(int(within * 10)):
            if self.popen.poll() is not None:
                return self.popen.returncode
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} still running after {within}s:\n{self.text()}")


async def _has(proc: Proc, text: str) -> bool:
    if proc.popen.poll() is not None and text not in proc.text():
        raise AssertionError(f"{proc.name} exited {proc.popen.returncode}:\n{proc.text()}")
    return text in proc.text()


@dataclass
class Procs:
    tmp: Path
    database_url: str
    started: list[Proc] = field(default_factory=list)

    def start(self, *args: str, name: str | None = None) -> Proc:
        name = name or f"p{len(self.started)}"
        log = self.tmp / f"{name}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NURTURED_DATABASE_URL": self.database_url}
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "nurtured", *args], cwd=self.tmp, env=env,
            stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
        handle.close()
        proc = Proc(name, popen, log)
        self.started.append(proc)
        return proc

    def worker(self, config_path: Path, now: datetime, name: str | None = None) -> Proc:
        return self.start("worker", "--config", str(config_path), "--now", now.isoformat(),
                          name=name)  # fmt: skip

    async def stop_all(self) -> list[int]:
        for proc in self.started:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        return [await proc.exit_code() for proc in self.started]


@pytest.fixture
def procs(tmp_path: Path, pg: str) -> Iterator[Procs]:
    made = Procs(tmp_path, pg)
    yield made
    for proc in made.started:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait()
    forget_queues()


def forget_queues() -> None:
    """Delete what the test's queues left in Redis (queued jobs, arq's job keys)."""
    client = redis.Redis.from_url(REDIS)
    try:
        for queue in QUEUES:
            keys = list(client.scan_iter(match=f"*{queue}*"))
            if keys:
                client.delete(*keys)
    finally:
        client.close()
    QUEUES.clear()


@pytest.fixture
def pg(postgres_url: str | None) -> str:
    """The PostgreSQL database of the run: scale-out is tested on PostgreSQL only."""
    if postgres_url is None:
        pytest.skip("scale-out runs against PostgreSQL: set NURTURED_TEST_POSTGRES")
    return postgres_url


async def until(
    check: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.1
) -> None:
    """Poll ``check`` until true; fail after ``within`` seconds."""
    for _ in range(int(within / every)):
        if await check():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def received(sink: Any) -> Counter[tuple[str, str]]:
    """(recipient, subject) -> how many times the sink got it."""
    counts: Counter[tuple[str, str]] = Counter()
    for message in list(sink.messages):
        subject = str(email.message_from_bytes(message.content)["Subject"])
        for rcpt in message.rcpt_tos:
            counts[(rcpt, subject)] += 1
    return counts
