"""The daemon's job functions, the same whether they run in-process or in arq workers.

``nurtured run`` calls them from its own loop (embedded); ``nurtured worker`` wraps them
as arq jobs (scale-out). Every job is safe to run twice or side by side: due work is
leased by a conditional update and deliveries are claimed under a unique constraint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path

from nurtured.app import App, Runtime, load_app
from nurtured.engine import Engine
from nurtured.exceptions import ConfigError
from nurtured.lease import DUE_STATES
from nurtured.models import Enrollment
from nurtured.outcomes import PassReport

log = logging.getLogger(__name__)


def make_engine(runtime: Runtime) -> Engine:
    app = runtime.app
    return Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                  transport=runtime.transport, splits=runtime.splits)  # fmt: skip


async def send_due(
    runtime: Runtime,
    now: datetime | None = None,
    *,
    stop: asyncio.Event | None = None,
    max_batches: int = 10_000,
) -> PassReport:
    """Send everything due at ``now`` (default: the runtime's clock), or until ``stop``
    or ``max_batches`` batches."""
    engine = make_engine(runtime)
    return await engine.run_due(now or runtime.clock(), stop=stop, max_batches=max_batches)


async def recover(runtime: Runtime, now: datetime | None = None, gone: Collection[str] = ()) -> int:
    """Take back sends cut off by a crash (``gone``: lease holders known to be dead) and
    wake held leads whose streams grew."""
    return await make_engine(runtime).recover(now or runtime.clock(), gone)


async def check_sla(runtime: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Send the handoff reminders and escalations due at ``now``."""
    from nurtured.sales.timer import check_sla as check

    return await check(runtime.app, runtime.transport, now or runtime.clock())


async def due_count(now: datetime) -> int:
    return await Enrollment.filter(state__in=DUE_STATES, next_due_at__lte=now).count()


async def soonest_due() -> tuple[datetime, str] | None:
    """The soonest due time among current enrollments, and that lead's time zone name."""
    first = (
        await Enrollment.filter(state__in=DUE_STATES, next_due_at__not_isnull=True)
        .order_by("next_due_at")
        .first()
        .values_list("next_due_at", "lead__timezone")
    )
    return (first[0], first[1] or "") if first else None


async def next_due(now: datetime, limit: timedelta) -> datetime:
    """When the soonest enrollment is due, but no later than ``now + limit``."""
    first = await soonest_due()
    soonest = first[0] if first else None
    latest = now + limit
    return min(soonest, latest) if soonest and soonest > now else latest


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


class Reloader:
    """Reloads the marketer's files into ``runtime.app`` when they change and load cleanly.

    A bad edit is logged with file, key and reason; the last good version keeps running.
    """

    def __init__(self, runtime: Runtime, config_path: Path) -> None:
        self.runtime = runtime
        self.config_path = config_path
        self.seen = fingerprint(runtime.app)

    def check(self, *, force: bool = False) -> bool:
        """True when a new version was loaded; ``force`` (SIGHUP) loads even unchanged files."""
        current = fingerprint(self.runtime.app)
        if current == self.seen and not force:
            return False
        self.seen = current
        try:
            fresh = load_app(self.config_path)
        except ConfigError as exc:
            first, more = (exc.problems[0] if exc.problems else exc), len(exc.problems) - 1
            also = f" (and {more} more: `nurtured validate` lists them)" if more else ""
            log.error("reload refused, the last good version kept: %s%s", first, also)
            return False
        self.runtime.app = fresh
        log.info("reloaded %s: %d streams, %d templates", self.config_path,
                 len(fresh.catalog.streams), len(fresh.renderer.template_names()))  # fmt: skip
        return True
