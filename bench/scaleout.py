"""Scale-out: emails/s with 1, 2 and 3 ``nurtured worker`` processes (arq mode,
PostgreSQL + Redis) sending to one discarding SMTP sink, and each worker's share.

Only public entry points: each worker is a ``python -m nurtured worker`` process; the
due work is seeded through the intake, parked in the future while the workers start,
then made due at once. The rate is taken at the sink, from its first email to its last;
each worker's share is what its own log says it sent ("pass at ...: sent N").

Needs PostgreSQL (``NURTURED_BENCH_POSTGRES``, default postgres://postgres@127.0.0.1:5432/postgres:
a database is created and dropped) and Redis (``NURTURED_BENCH_REDIS``, default
redis://127.0.0.1:6379/6); skipped, with the reason, without them.

    python3 -m bench.scaleout --out FILE [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.common import ROOT, Figure, Sink, bench_env, log, skip, until, write_project

POSTGRES = os.environ.get("NURTURED_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("NURTURED_BENCH_REDIS", "redis://127.0.0.1:6379/6")
WORKERS = (1, 2, 3)
SENT = re.compile(r"pass at \S+: .*\bsent (\d+)")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def reachable() -> str | None:
    """Why the bench cannot run here, or None."""
    try:
        await _admin("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {urlsplit(POSTGRES).netloc} not reachable: {exc}"
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS)
    try:
        await client.ping()
    except Exception as exc:
        return f"Redis at {REDIS} not reachable: {exc}"
    finally:
        await client.aclose()
    return None


def project(root: Path, port: int, url: str, queue: str, parallel: int) -> Path:
    config = write_project(root, port=port, pool_size=4)
    with config.open("a") as handle:
        handle.write(
            f'\n[queue]\nbackend = "arq"\nredis_url = "{REDIS}"\nqueue_name = "{queue}"\n'
            f'parallel = {parallel}\ntick = "1s"\n\n[inbox]\nsource = "none"\n'
            f"\n[http]\nenabled = false\n"
        )
    text = config.read_text().replace('url = "sqlite://nurtured.db"', f'url = "{url}"')
    config.write_text(text)
    return config


async def seed_parked(config: Path, leads: int) -> None:
    """``leads`` leads through the intake, their first email parked a year ahead."""
    from nurtured.app import load_app
    from nurtured.db import database
    from nurtured.intake import make_input, upsert
    from nurtured.models import Enrollment

    app = load_app(config)
    now = datetime.now(UTC)
    async with database(app.settings.database.url):
        for start in range(0, leads, 1000):
            items = [
                make_input({"email": f"lead{i}@example{i % 97}.com", "first_name": "Ada",
                            "interest": "product-a" if i % 2 else "product-b"})
                for i in range(start, min(leads, start + 1000))
            ]  # fmt: skip
            await upsert(items, app.catalog, app.rules, now)
        await Enrollment.all().update(next_due_at=now + timedelta(days=365))


async def make_due(config: Path) -> None:
    from nurtured.app import load_app
    from nurtured.db import database
    from nurtured.models import Enrollment

    app = load_app(config)
    async with database(app.settings.database.url):
        await Enrollment.all().update(next_due_at=datetime.now(UTC) - timedelta(minutes=1))


Workers = list[tuple[subprocess.Popen[bytes], Path]]


def start_workers(config: Path, count: int, logs: Path) -> Workers:
    started: Workers = []
    for n in range(count):
        path = logs / f"worker{n}.log"
        with path.open("wb") as handle:
            proc = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "nurtured", "worker", "--config", str(config)],
                cwd=ROOT, env=bench_env(), stdout=subprocess.DEVNULL, stderr=handle,
            )  # fmt: skip
        started.append((proc, path))
    deadline = time.monotonic() + 60
    for proc, path in started:
        while " ready: " not in path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_workers(started)  # none left running after the bench
                raise RuntimeError(f"worker did not start: {path.read_text()[-500:]}")
            time.sleep(0.1)
    return started


def shares(workers: Workers) -> list[int]:
    """What each worker's log says it sent (its passes' summaries)."""
    return [sum(int(m) for m in SENT.findall(path.read_text(errors="replace")))
            for _, path in workers]  # fmt: skip


def stop_workers(workers: Workers) -> None:
    for proc, _ in workers:
        proc.send_signal(signal.SIGTERM)
    for proc, _ in workers:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a worker that ignores SIGTERM (issue 12)
            proc.kill()
            proc.wait()


async def one_run(count: int, leads: int, sink: Sink, logs: Path) -> tuple[float, list[int]]:
    """emails/s at the sink with ``count`` workers, and each worker's sent count."""
    name = f"nurtured_bench_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(POSTGRES)._replace(path=f"/{name}"))
    try:
        with tempfile.TemporaryDirectory(prefix="nurtured-bench-scaleout-") as tmp:
            config = project(Path(tmp), sink.port, url, f"bench-{name}", parallel=count)
            await seed_parked(config, leads)
            workers = start_workers(config, count, logs)
            try:
                base = sink.count()[0]
                await make_due(config)
                first = last = None
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    got = sink.count()[0] - base
                    if got and first is None:
                        first = (time.perf_counter(), got)
                    if got >= leads:
                        last = time.perf_counter()
                        break
                    await asyncio.sleep(0.05)
                # The passes end (and log what they sent) once their last batch is saved.
                await until(lambda: sum(shares(workers)) >= leads, deadline, 0.1)
                sent = shares(workers)
            finally:
                stop_workers(workers)
            if first is None or last is None or last <= first[0]:
                raise RuntimeError(f"{count} workers did not send {leads} emails: {sent}")
            return (leads - first[1]) / (last - first[0]), sent
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(args: argparse.Namespace) -> list[Figure]:
    why = await reachable()
    if why:
        return [skip("scaleout", "emails/s with 1, 2, 3 workers", why)]
    leads = 600 if args.quick else 10_000
    figures: list[Figure] = []
    rates: dict[int, float] = {}
    keep = os.environ.get("NURTURED_BENCH_KEEP_LOGS")  # a directory for the workers' logs
    with Sink() as sink, tempfile.TemporaryDirectory(prefix="nurtured-bench-logs-") as tmp:
        logs = keep or tmp
        for count in WORKERS:
            log(f"scaleout: {leads:,} leads, {count} worker(s)")
            rate, sent = await one_run(count, leads, sink, Path(logs))
            rates[count] = rate
            total = sum(sent) or 1
            share = ", ".join(f"{s / total:.0%}" for s in sent)
            reference = "1.00x" if count == 1 else f"{rate / rates[1]:.2f}x the 1-worker rate"
            figures.append(
                Figure(
                    "scaleout",
                    f"arq workers: {count}, {leads:,} emails",
                    round(rate),
                    "msg/s",
                    reference,
                    "INFO",
                    f"each worker's share: {share} (sent {sent})",
                    extra={"shares": sent},
                )
            )
    return figures


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run)
