"""The runner: the walk in a loop, the tracking server, the inbox, live reload, clean stop.

Lifecycle: load and validate everything (refuse to start on any problem), open the
database (migrating in place), start the transport, recover interrupted sends, start the
HTTP server (tracking and intake) and the inbox reader, then loop: process due work,
sleep until the next due time or the poll interval. With ``[queue] backend = "arq"`` the
sending is left to ``nurtured worker`` processes; this loop serves HTTP and tries for
the leader lease, and the leader runs the inbox reader and the tick (one process at a
time: ``nurtured.scaleout``). SIGINT or SIGTERM lets the batch in hand finish (its
claims are recorded), then stops the server and the inbox reader and closes the
transport and the database. Edited config/streams/templates are re-validated while
running (and at once on SIGHUP); a bad edit is one log line with file, key and reason,
and the last good version stays. What it says at start and per pass is in talk.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

from nurtured import jobs, talk
from nurtured.app import Runtime, load_app, make_transport
from nurtured.logs import use_config_format
from nurtured.outcomes import PassReport
from nurtured.redact import guard_logs

log = logging.getLogger(__name__)

POLL = timedelta(seconds=5)


async def serve(config_path: Path, *, once: bool = False, now: datetime | None = None) -> None:
    """``now`` with ``once``: that pass at that time. ``now`` alone: the daemon's clock
    starts at ``now`` and runs on from there (replays, tests)."""
    app = load_app(config_path)  # any problem: refuse to start, with the same messages
    use_config_format(app.settings.log.format)
    guard_logs()  # no delivery token in a log line, from the first SQL statement on
    async with talk.opened_database(app.settings.database.url):
        transport = make_transport(app.settings)
        mail = app.settings.mail  # an outbox that cannot be made: one line naming the key
        naming = talk.naming("mail.outbox", mail.outbox) if mail.transport == "outbox" else None
        with naming or contextlib.nullcontext():
            await transport.start()
        runtime = Runtime(app, transport)
        try:
            if once:
                await run_once(runtime, now)
            else:
                if now is not None:
                    runtime.clock = running_from(now)
                await run_forever(runtime, config_path)
        finally:
            await transport.close()


def running_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads ``start`` now and advances with real time."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


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
    at = now or runtime.clock()
    print(talk.once_line(report, at, await jobs.soonest_due(), runtime.app.rules))
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
) -> AsyncIterator[list[str]]:
    """The HTTP server and the inbox reader, for as long as the loop runs; yields what
    they serve, in words (for the start lines). With arq, the inbox reader (and the tick)
    run in whichever process leads (``nurtured.scaleout``); this one tries for the lead
    like every worker."""
    settings = runtime.app.settings
    said: list[str] = []
    if settings.inbox.source == "maildir":  # a refusal here is said before anything starts
        from nurtured.inbox.source import MaildirSource

        maildir = settings.path(settings.inbox.maildir)
        with talk.naming("inbox.maildir", maildir):
            await MaildirSource(maildir).open()
    tasks: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:
        if settings.http.enabled:
            from nurtured.tracking import start_server

            host, port = settings.http.listen
            with talk.naming("http.listen", f"{host}:{port}"):
                runner = await start_server(runtime)
            stack.push_async_callback(runner.cleanup)
            freeze_startup_heap()
            said.append(f"listening on http://{host}:{port} (tracking links, intake API, "
                        "/healthz, /metrics)")  # fmt: skip
        else:
            said.append("HTTP server off ([http] enabled = false): links in emails are not tracked")
        if settings.queue.backend == "arq":
            from nurtured.worker import connect, leadership

            redis = await connect(settings)
            stack.push_async_callback(redis.aclose)
            await stack.enter_async_context(leadership(runtime, reloader, redis, stop))
            said.append("inbox reader, tick and SLA timer: in the process holding the leader lease")
        elif settings.inbox.source != "none":
            from nurtured.inbox import run_inbox

            tasks.append(asyncio.create_task(run_inbox(runtime, stop), name="inbox"))
        try:
            yield said
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=10)


async def run_forever(runtime: Runtime, config_path: Path) -> None:
    stop, hup = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    embedded = runtime.app.settings.queue.backend == "embedded"
    total = PassReport()
    reloader = jobs.Reloader(runtime, config_path)
    activity = talk.Activity()
    started = False
    try:
        await activity.start()
        await jobs.recover(runtime)
        async with side_services(runtime, reloader, stop) as serving:
            for line in [*await talk.start_lines(runtime.app, runtime.clock()), *serving]:
                log.info("%s", line)
            started = True
            while not stop.is_set():
                report = PassReport()
                reloaded = reloader.check(force=hup.is_set())  # led or not, with arq too
                hup.clear()
                if reloaded:
                    use_config_format(runtime.app.settings.log.format)
                if embedded:  # with arq, the leader's tick does the rest
                    if reloaded:
                        await jobs.recover(runtime)  # wakes held leads when streams grew
                    await jobs.check_sla(runtime)
                    report = await jobs.send_due(runtime, stop=stop)
                    total.counts.update(report.counts)
                    wake = await jobs.next_due(runtime.clock(), POLL)
                else:
                    wake = runtime.clock() + POLL
                said = talk.pass_line(report, await activity.take())
                if said:
                    log.info("%s", said)
                delay = max((wake - runtime.clock()).total_seconds(), 0.05)
                await first_of(stop, hup, seconds=delay)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if started:
            log.info("nurtured stopped: %s", total.summary() if embedded else "workers send")


async def first_of(*events: asyncio.Event, seconds: float) -> None:
    """Return when one of ``events`` is set, or after ``seconds``."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
