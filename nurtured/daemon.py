"""The runner: the walk in a loop, the tracking server, the inbox, live reload, clean stop.

Lifecycle: load and validate everything (refuse to start on any problem), open the
database (migrating in place), start the transport, recover interrupted sends, start
the HTTP server (tracking and intake) and the inbox reader, then loop: process due
work, sleep until the next due time or the poll interval. With ``[queue] backend =
"arq"`` the sending is left to ``nurtured worker`` processes; this loop serves HTTP and
tries for the leader lease, and the leader runs the inbox reader and the tick (one
process at a time: ``nurtured.scaleout``). SIGINT or SIGTERM lets the batch in hand
finish (its claims are recorded), then stops the server and the inbox reader and
closes the transport and the database. Edited config/streams/templates are
re-validated while running; a bad edit is logged with file, key and reason and the last
good version stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

from nurtured import jobs
from nurtured.app import Runtime, load_app, make_transport
from nurtured.db import database
from nurtured.outcomes import PassReport
from nurtured.redact import guard_logs

log = logging.getLogger(__name__)

POLL = timedelta(seconds=5)


async def serve(config_path: Path, *, once: bool = False, now: datetime | None = None) -> None:
    app = load_app(config_path)  # any problem: refuse to start, with the same messages
    guard_logs()  # no delivery token in a log line, from the first SQL statement on
    async with database(app.settings.database.url):
        transport = make_transport(app.settings)
        await transport.start()
        runtime = Runtime(app, transport)
        if now is not None and not once:  # replays and tests: the clock stands still
            runtime.clock = lambda: now
        try:
            if once:
                await run_once(runtime, now)
            else:
                await run_forever(runtime, config_path)
        finally:
            await transport.close()


async def run_once(runtime: Runtime, now: datetime | None) -> PassReport:
    """``run --once``: recover, then send what is due at ``now`` and return."""
    await jobs.recover(runtime, now)
    await jobs.check_sla(runtime, now)
    settings = runtime.app.settings
    if settings.inbox.source == "maildir":  # a local inbox is read once too; IMAP is not
        from nurtured.inbox.process import Stats
        from nurtured.inbox.runner import drain
        from nurtured.inbox.source import MaildirSource

        if now is not None:
            runtime.clock = lambda: now
        stats = Stats()
        source = MaildirSource(settings.path(settings.inbox.maildir))
        await source.open()
        try:
            await drain(runtime, source, stats)
        finally:
            await source.close()
        if stats.counts:
            print("inbox: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.counts.items())))
    report = await jobs.send_due(runtime, now)
    print(f"run --once: {report.summary()}")
    return report


def freeze_startup_heap() -> None:
    """What exists once the daemon has started (the ORM, the app, the routes) lives as
    long as the process: frozen, a full garbage collection no longer scans it. Unfrozen,
    each full collection held the event loop ~40 ms (the click p99 under load), ~5 ms now."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def side_services(
    runtime: Runtime, reloader: jobs.Reloader, stop: asyncio.Event
) -> AsyncIterator[None]:
    """The HTTP server and the inbox reader, for as long as the loop runs. With arq, the
    inbox reader (and the tick) run in whichever process leads (``nurtured.scaleout``);
    this one tries for the lead like every worker."""
    settings = runtime.app.settings
    tasks: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:
        if settings.http.enabled:
            from nurtured.tracking import start_server

            runner = await start_server(runtime)
            stack.push_async_callback(runner.cleanup)
            freeze_startup_heap()
            log.info("tracking and intake on http://%s:%d", *settings.http.listen)
        if settings.queue.backend == "arq":
            from nurtured.worker import connect, leadership

            redis = await connect(settings)
            stack.push_async_callback(redis.aclose)
            await stack.enter_async_context(leadership(runtime, reloader, redis, stop))
        elif settings.inbox.source != "none":
            from nurtured.inbox import run_inbox

            tasks.append(asyncio.create_task(run_inbox(runtime, stop), name="inbox"))
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=10)


async def run_forever(runtime: Runtime, config_path: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    settings = runtime.app.settings
    embedded = settings.queue.backend == "embedded"
    log.info("nurtured running: %d streams, transport %s, sending %s",
             len(runtime.app.catalog.streams), settings.mail.transport,
             "here" if embedded else "by arq workers")  # fmt: skip
    total = PassReport()
    reloader = jobs.Reloader(runtime, config_path)
    try:
        await jobs.recover(runtime)
        async with side_services(runtime, reloader, stop):
            while not stop.is_set():
                if embedded:  # with arq, the leader's tick does all this
                    if reloader.check():
                        await jobs.recover(runtime)  # wakes held leads when streams grew
                    await jobs.check_sla(runtime)
                    report = await jobs.send_due(runtime, stop=stop)
                    total.counts.update(report.counts)
                    wake = await jobs.next_due(runtime.clock(), POLL)
                else:
                    reloader.check()  # the tracking server's copy, led or not
                    wake = runtime.clock() + POLL
                delay = max((wake - runtime.clock()).total_seconds(), 0.05)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("nurtured stopped: %s", total.summary() if embedded else "workers send")
