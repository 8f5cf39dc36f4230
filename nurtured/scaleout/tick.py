"""The singletons of scale-out: what exactly one process runs, while it leads.

The tick (every ``[queue] tick``): reload edited files, take back sends cut off by a
dead worker, send the SLA reminders, and queue send jobs when anything is due. Beside
it, the inbox reader. Both are safe if a successor starts before a lost leader has
noticed (leases and claims keep sends apart; the SLA timer and the inbox record what
they did before acting on it), but they are meant to run once: twice is wasted work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from nurtured import jobs
from nurtured.app import Runtime
from nurtured.scaleout.leader import Heartbeats

log = logging.getLogger(__name__)


async def tick(
    runtime: Runtime,
    reloader: jobs.Reloader,
    heartbeats: Heartbeats,
    enqueue: Callable[[], Awaitable[int]],
) -> int:
    """One tick; returns how many send jobs were queued."""
    reloader.check()
    now = runtime.clock()
    gone = await heartbeats.gone()
    if gone:
        log.warning("workers gone (no heartbeat): %s; taking their sends back",
                    ", ".join(sorted(gone)))  # fmt: skip
    await jobs.recover(runtime, now, gone)
    await heartbeats.forget(gone)
    await jobs.check_sla(runtime, now)
    if not await jobs.due_count(now):
        return 0
    return await enqueue()


async def singletons(
    runtime: Runtime,
    reloader: jobs.Reloader,
    heartbeats: Heartbeats,
    enqueue: Callable[[], Awaitable[int]],
    resign: asyncio.Event,
) -> None:
    """The tick and the inbox reader, until ``resign``."""
    settings = runtime.app.settings
    inbox: asyncio.Task[None] | None = None
    if settings.inbox.source != "none":
        from nurtured.inbox import run_inbox

        inbox = asyncio.create_task(run_inbox(runtime, resign), name="inbox")
    try:
        while not resign.is_set():
            try:
                await tick(runtime, reloader, heartbeats, enqueue)
            except Exception:  # a database or Redis hiccup: the next tick tries again
                log.exception("tick failed")
            with contextlib.suppress(TimeoutError):
                interval = runtime.app.settings.queue.tick.total_seconds()
                await asyncio.wait_for(resign.wait(), timeout=interval)
    finally:
        if inbox is not None:
            resign.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(inbox, timeout=10)
