"""The embedded runner: the walk in a loop, live reload of marketer files, clean shutdown.

Lifecycle: load and validate everything (refuse to start on any problem), open the
database (migrating in place), start the transport, recover interrupted sends, then
loop: process due work, sleep until the next due time or the poll interval. SIGINT or
SIGTERM lets the batch in hand finish (its claims are recorded), then closes the
transport and the database. Edited config/streams/templates are re-validated while
running; a bad edit is logged with file, key and reason and the last good version stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nurtured.app import App, load_app, make_transport
from nurtured.db import database
from nurtured.engine import Engine, PassReport
from nurtured.enrollment import wake_held
from nurtured.exceptions import ConfigError
from nurtured.mailer import Transport
from nurtured.models import Enrollment, EnrollmentState

log = logging.getLogger(__name__)

POLL = timedelta(seconds=5)


def fingerprint(app: App) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of every marketer file: a change means reload."""
    settings = app.settings
    paths = [settings.config_path]
    for directory in (settings.paths.streams, settings.paths.templates):
        if directory.is_dir():
            paths.extend(p for p in directory.rglob("*") if p.is_file())
    result = []
    for path in sorted(paths):
        with contextlib.suppress(OSError):
            stat = path.stat()
            result.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(result)


async def next_wake(now: datetime) -> datetime:
    first = (
        await Enrollment.filter(
            state__in=(EnrollmentState.ACTIVE, EnrollmentState.PAUSED), next_due_at__not_isnull=True
        )
        .order_by("next_due_at")
        .first()
        .only("next_due_at")
    )
    soonest = first.next_due_at if first else None
    limit = now + POLL
    return min(soonest, limit) if soonest and soonest > now else limit


async def serve(config_path: Path, *, once: bool = False, now: datetime | None = None) -> None:
    app = load_app(config_path)  # any problem: refuse to start, with the same messages
    async with database(app.settings.database.url):
        transport = make_transport(app.settings)
        await transport.start()
        try:
            await _loop(app, config_path, transport, once=once, now=now)
        finally:
            await transport.close()


async def _loop(
    app: App, config_path: Path, transport: Transport, *, once: bool, now: datetime | None
) -> None:
    engine = _engine(app, transport)
    await engine.recover(now or datetime.now(UTC))
    if once:
        report = await engine.run_due(now or datetime.now(UTC))
        print(f"run --once: {report.summary()}")
        return

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("nurtured running: %d streams, transport %s", len(app.catalog.streams),
             app.settings.mail.transport)  # fmt: skip
    total = PassReport()
    seen = fingerprint(app)
    try:
        while not stop.is_set():
            current = fingerprint(app)
            if current != seen:
                seen = current
                app, engine = _reload(app, engine, config_path, transport)
                await wake_held(app.catalog, datetime.now(UTC))
            report = await engine.run_due(datetime.now(UTC))
            total.counts.update(report.counts)
            wake = await next_wake(datetime.now(UTC))
            delay = max((wake - datetime.now(UTC)).total_seconds(), 0.05)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("nurtured stopped: %s", total.summary())


def _engine(app: App, transport: Transport) -> Engine:
    return Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                  transport=transport, signer=app.signer)  # fmt: skip


def _reload(
    app: App, engine: Engine, config_path: Path, transport: Transport
) -> tuple[App, Engine]:
    try:
        fresh = load_app(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("reload refused: %s", problem)
        log.error("keeping the last good streams and templates")
        return app, engine
    log.info("reloaded: %d streams", len(fresh.catalog.streams))
    return fresh, _engine(fresh, transport)
