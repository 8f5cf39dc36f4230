"""Scale-out: the job functions of jobs.py as arq jobs, for workers on many machines.

``nurtured worker`` runs one worker process; start as many as the load needs, on any
machine that reaches the PostgreSQL database and Redis named in config.toml
(``[queue] backend = "arq"``). One process at a time leads (``nurtured.scaleout``): it
runs the tick, which recovers sends cut off by a dead worker and, when anything is due,
queues ``parallel`` send jobs. Each worker runs ``max_jobs`` of them at once; a send job
leases batches until nothing is due (or for ``CHUNKS`` chunks), reloading edited files
between chunks, so the workers drain the due work side by side, kept apart by the
engine's leases. A running job's in-progress mark in Redis lives ``liveness`` and is
renewed while the job runs, so a killed worker's job is taken up by another within
seconds. SIGTERM/SIGINT: no new job is taken, running jobs stop after their batches in
hand (at most ``drain``), exit 0.
arq is in maintenance mode upstream, so this module is the only one that imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arq import func
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from arq.worker import Worker

from nurtured import jobs
from nurtured.app import Runtime, load_app, make_transport, utcnow
from nurtured.config import Settings
from nurtured.db import database
from nurtured.lease import holder
from nurtured.redact import guard_logs
from nurtured.scaleout.leader import Heartbeats, Leader, lead
from nurtured.scaleout.tick import singletons

log = logging.getLogger(__name__)

SEND_JOB = "send_due"
CHUNK = 4  # batches a send job leases between two looks for edited files
CHUNKS = 50  # then the job ends (the next tick queues it again), well within:
JOB_TIMEOUT = 3600  # seconds


def _parse_now(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@contextlib.asynccontextmanager
async def _in_progress(ctx: dict[str, Any]) -> AsyncIterator[None]:
    """Keep this job's in-progress mark alive for ``liveness`` at a time while it runs:
    arq sets it for the whole job timeout, so a killed worker's job would be stuck that
    long; this way another worker takes the job up once the mark has expired."""
    redis: ArqRedis = ctx["redis"]
    key = in_progress_key_prefix + ctx["job_id"]
    ttl = ctx["runtime"].app.settings.queue.liveness.total_seconds()

    async def renew() -> None:
        while True:
            await redis.pexpire(key, int(ttl * 1000))
            await asyncio.sleep(ttl / 3)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def send_due_job(ctx: dict[str, Any], now: str | None = None) -> dict[str, int]:
    """Lease and send batches until nothing is due, the worker stops, or ``CHUNKS`` times
    ``CHUNK`` batches (a job with hours of work ends within the job timeout; the next
    tick queues it again). Before every ``CHUNK`` batches, edited files are reloaded.
    Returns the counts."""
    runtime: Runtime = ctx["runtime"]
    stop: asyncio.Event = ctx["stop"]
    total: Counter[str] = Counter()
    async with _in_progress(ctx):
        for _ in range(CHUNKS):
            if stop.is_set():
                break
            ctx["reloader"].check()
            at = _parse_now(now) or runtime.clock()
            report = await jobs.send_due(runtime, at, stop=stop, max_batches=CHUNK)
            if not report.counts:
                break
            # The worker's own account of what it sent (run prints its pass lines itself).
            log.info("pass at %s: %s", at.isoformat(), report.summary())
            total.update(report.counts)
    return dict(total)


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


def heartbeats(redis: ArqRedis, settings: Settings) -> Heartbeats:
    return Heartbeats(redis, settings.queue.queue_name, settings.queue.liveness)


@contextlib.asynccontextmanager
async def leadership(
    runtime: Runtime, reloader: jobs.Reloader, redis: ArqRedis, stop: asyncio.Event
) -> AsyncIterator[None]:
    """Try for the leader lease in the background; the leader runs the singletons.
    Leaving stops them and hands the lease back."""
    settings = runtime.app.settings
    queue = settings.queue
    leader = Leader(redis, f"{queue.queue_name}:leader", holder(), queue.liveness)
    beats = heartbeats(redis, settings)

    async def enqueue() -> int:
        return await enqueue_sends(redis, runtime.app.settings)

    task = asyncio.create_task(
        lead(leader, stop, lambda resign: singletons(runtime, reloader, beats, enqueue, resign))
    )
    try:
        yield
    finally:
        stop.set()
        await task


def make_worker(
    config_path: Path,
    *,
    burst: bool = False,
    open_database: bool = True,
    clock: Callable[[], datetime] = utcnow,
    **options: Any,
) -> Worker:
    """An arq Worker for the project at ``config_path`` (validated now: refuse to start).

    ``open_database``: ``run`` opens (and closes) the database around the worker;
    False uses the one the caller opened (tests);
    ``clock`` is what the tick and send jobs take for now (tests pass a fixed one).
    A burst worker drains the queue and exits; it does not try to lead.
    """
    app = load_app(config_path)
    settings = app.settings
    stop = asyncio.Event()

    async def startup(ctx: dict[str, Any]) -> None:
        guard_logs()  # no delivery token in a log line (the SQL drivers log them at DEBUG)
        stack = contextlib.AsyncExitStack()
        transport = make_transport(settings)
        await transport.start()
        stack.push_async_callback(transport.close)
        runtime = Runtime(load_app(config_path), transport, clock)
        reloader = jobs.Reloader(runtime, config_path)
        ctx.update(stack=stack, runtime=runtime, reloader=reloader)
        redis: ArqRedis = ctx["redis"]
        if not burst:
            beats = heartbeats(redis, settings)
            me = holder()
            stack.push_async_callback(beats.leave, me)  # runs after the beats stop
            beat = asyncio.create_task(beats.run(me, stop))
            stack.push_async_callback(asyncio.wait_for, beat, None)
            await stack.enter_async_context(leadership(runtime, reloader, redis, stop))
        log.info("worker %s ready: %d streams, queue %s", holder(), len(app.catalog.streams),
                 settings.queue.queue_name)  # fmt: skip

    async def shutdown(ctx: dict[str, Any]) -> None:
        stop.set()
        stack = ctx.get("stack")
        if stack is not None:
            await stack.aclose()

    send_function = func(send_due_job, name=SEND_JOB, keep_result=0, max_tries=20,
                         timeout=JOB_TIMEOUT)  # fmt: skip
    options.setdefault("handle_signals", False)  # run() handles them (arq's would cancel)
    return Worker(
        functions=[send_function],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=redis_settings(settings),
        queue_name=settings.queue.queue_name,
        burst=burst,
        timezone=UTC,
        max_jobs=settings.queue.max_jobs,
        job_completion_wait=max(1, round(settings.queue.drain.total_seconds())),
        ctx={"stop": stop, "database_url": settings.database.url if open_database else None},
        **options,
    )


async def run(worker: Worker) -> None:
    """Run ``worker`` until it is done (burst) or signalled: on SIGTERM/SIGINT it takes
    no new job, lets the running send jobs finish their batches in hand (they stop
    between batches; past ``[queue] drain`` arq cancels them), then closes and returns."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Event = worker.ctx["stop"]

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            return
        stop.set()
        worker.handle_sig_wait_for_completion(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    # Opened here, not in the worker's startup: arq runs that in its main task, whose
    # context (where Tortoise keeps its connections) closing would not see.
    url: str | None = worker.ctx["database_url"]
    async with database(url) if url else contextlib.nullcontext():
        try:
            await worker.async_run()
        except asyncio.CancelledError:  # arq cancels its main task once drained
            if not stop.is_set():
                raise
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await worker.close()
    log.info("worker %s stopped: %d jobs complete, %d failed", holder(), worker.jobs_complete,
             worker.jobs_failed)  # fmt: skip
