"""Scale-out: the job functions of jobs.py as arq jobs, for workers on many machines.

``nurtured worker`` runs one worker process; start as many as the load needs, on any
machine that reaches the PostgreSQL database and Redis named in config.toml
(``[queue] backend = "arq"``). A cron tick on every worker (arq runs each tick once,
whichever worker takes it) recovers interrupted sends, reloads edited marketer files
and, when anything is due, queues ``parallel`` send jobs; those drain the due work side
by side, kept apart by the engine's leases. arq is in maintenance mode upstream, so
this module is the only one that imports it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arq import cron, func
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker

from nurtured import jobs
from nurtured.app import Runtime, load_app, make_transport, utcnow
from nurtured.config import Settings
from nurtured.db import database
from nurtured.redact import guard_logs

log = logging.getLogger(__name__)

SEND_JOB = "send_due"


def _parse_now(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def send_due_job(ctx: dict[str, Any], now: str | None = None) -> dict[str, int]:
    """One worker's share of the due work; returns the pass's counts."""
    report = await jobs.send_due(ctx["runtime"], _parse_now(now))
    return dict(report.counts)


async def tick_job(ctx: dict[str, Any]) -> int:
    """Recover, reload, and queue send jobs when work is due; returns how many queued."""
    runtime: Runtime = ctx["runtime"]
    ctx["reloader"].check()
    now = runtime.clock()
    await jobs.recover(runtime, now)
    await jobs.check_sla(runtime, now)
    if not await jobs.due_count(now):
        return 0
    return await enqueue_sends(ctx["redis"], runtime.app.settings)


async def enqueue_sends(redis: ArqRedis, settings: Settings, now: datetime | None = None) -> int:
    """Queue ``parallel`` send jobs; an id already queued or running is not queued twice."""
    queued = 0
    for i in range(settings.queue.parallel):
        job = await redis.enqueue_job(
            SEND_JOB,
            now.isoformat() if now else None,
            _job_id=f"{settings.queue.queue_name}:{SEND_JOB}:{i}",
            _queue_name=settings.queue.queue_name,
        )
        queued += job is not None
    return queued


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.queue.redis_url)


async def connect(settings: Settings) -> ArqRedis:
    return await create_pool(redis_settings(settings))


def make_worker(
    config_path: Path,
    *,
    burst: bool = False,
    open_database: bool = True,
    clock: Callable[[], datetime] = utcnow,
    **options: Any,
) -> Worker:
    """An arq Worker for the project at ``config_path`` (validated now: refuse to start).

    ``open_database=False`` uses the database the caller already opened (tests);
    ``clock`` is what the tick and send jobs take for now (tests pass a fixed one).
    """
    app = load_app(config_path)
    settings = app.settings

    async def startup(ctx: dict[str, Any]) -> None:
        guard_logs()  # no delivery token in a log line (the SQL drivers log them at DEBUG)
        stack = contextlib.AsyncExitStack()
        if open_database:
            await stack.enter_async_context(database(settings.database.url))
        transport = make_transport(settings)
        await transport.start()
        stack.push_async_callback(transport.close)
        runtime = Runtime(load_app(config_path), transport, clock)
        ctx.update(stack=stack, runtime=runtime, reloader=jobs.Reloader(runtime, config_path))
        log.info("worker ready: %d streams, queue %s", len(app.catalog.streams),
                 settings.queue.queue_name)  # fmt: skip

    async def shutdown(ctx: dict[str, Any]) -> None:
        stack = ctx.get("stack")
        if stack is not None:
            await stack.aclose()

    tick = int(settings.queue.tick.total_seconds())
    seconds = set(range(0, 60, max(1, min(tick, 59))))
    return Worker(
        functions=[func(send_due_job, name=SEND_JOB, keep_result=0, max_tries=3)],
        cron_jobs=[cron(tick_job, name="tick", second=seconds, unique=True, keep_result=0)],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=redis_settings(settings),
        queue_name=settings.queue.queue_name,
        burst=burst,
        timezone=UTC,
        **options,
    )
