"""A throwaway world for ``nurtured simulate``: a temporary SQLite database holding copies
of the chosen leads' rows, and a transport that keeps what it is given.

Nothing here writes to the real database or sends anything. A SQLite source is read
through SQLite's backup API on a read-only connection (``mode=ro``; ``immutable`` when
there is no write-ahead log, so no ``-wal`` file is made beside it), into a temporary
file; PostgreSQL is only read (no migrations). The Tortoise state of each phase lives in
a ``TortoiseContext`` of its own, so no connection outlives the phase and none that was
open before (a test's, say) is touched.
"""

from __future__ import annotations

import email.policy
import random
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tortoise import Model, Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate

from nurtured.db import sqlite_path, tortoise_config
from nurtured.exceptions import NurturedError
from nurtured.models import (
    Company,
    Delivery,
    Enrollment,
    Event,
    Handoff,
    Lead,
    LeadStatus,
    Link,
    Setting,
    Suppression,
)
from nurtured.queries import find_lead

__all__ = ["CapturingTransport", "Sent", "copied_leads", "sandbox_db", "scratch_dir"]

Rows = dict[type[Model], list[dict[str, Any]]]


@dataclass(frozen=True)
class Sent:
    sender: str
    recipients: tuple[str, ...]
    raw: bytes


@dataclass
class CapturingTransport:
    """A mail transport that sends nothing: every message is kept in ``sent``."""

    sent: list[Sent] = field(default_factory=list)
    pool_size: int = 1

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: Sequence[str]
    ) -> None:
        raw = message if isinstance(message, bytes) else message.as_bytes(policy=email.policy.SMTP)
        self.sent.append(Sent(sender, tuple(recipients), raw))


MODELS = (Company, Lead, Enrollment, Delivery, Link, Event, Handoff, Suppression, Setting)
_BOUND = ("basetable", "basequery", "basequery_all_fields", "default_connection")


@asynccontextmanager
async def _tortoise(url: str, *, upgrade: bool) -> AsyncIterator[None]:
    """Tortoise on ``url`` in a context of its own, closed on the way out.

    Some of Tortoise's state is not kept in the context: each model's base query (built
    with the dialect of the database last opened) and the cache of executors (insert
    statements, by connection name and table). Both are set aside here and put back
    afterwards, so a database open before (PostgreSQL, say) goes on as it was.
    """
    bound = {model: [getattr(model._meta, name) for name in _BOUND] for model in MODELS}
    cached = dict(EXECUTOR_CACHE)
    EXECUTOR_CACHE.clear()
    try:
        async with TortoiseContext():
            config = tortoise_config(url)
            if upgrade:
                await migrate(config=config)
            await Tortoise.init(config=config)
            yield
    finally:
        EXECUTOR_CACHE.clear()
        EXECUTOR_CACHE.update(cached)
        for model, values in bound.items():
            for name, value in zip(_BOUND, values, strict=True):
                setattr(model._meta, name, value)


def _backup(path: str, target: Path) -> None:
    if not Path(path).is_file():
        raise NurturedError(f"no database at {path}")
    wal = Path(f"{path}-wal").exists()
    uri = f"file:{quote(path)}?mode=ro" + ("" if wal else "&immutable=1")
    source = sqlite3.connect(uri, uri=True)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()


async def _pick(email: str | None, sample: int) -> list[int]:
    if email is not None:
        return [(await find_lead(email)).id]
    rows = await Lead.filter(status=LeadStatus.ACTIVE).order_by("id").values_list("id")
    ids: list[int] = [pk for (pk,) in rows]
    return sorted(random.Random(0).sample(ids, min(sample, len(ids))))  # the same every time


async def _read(lead_ids: Sequence[int]) -> Rows:
    leads = await Lead.filter(id__in=lead_ids).values()
    companies = {row["company_id"] for row in leads if row["company_id"] is not None}
    deliveries = await Delivery.filter(lead_id__in=lead_ids).values()
    return {
        Company: await Company.filter(id__in=companies).values() if companies else [],
        Lead: leads,
        Enrollment: await Enrollment.filter(lead_id__in=lead_ids).values(),
        Delivery: deliveries,
        Link: await Link.filter(delivery_id__in=[d["id"] for d in deliveries]).values(),
        Event: await Event.filter(lead_id__in=lead_ids).values(),
        Handoff: await Handoff.filter(lead_id__in=lead_ids).values(),
        # The whole suppression list (and its hash salt): a suppressed lead gets nothing.
        Suppression: await Suppression.all().values(),
        Setting: await Setting.all().values(),
    }


async def _write(rows: Rows) -> None:
    """Insert rows as read, primary keys included, in the sandbox (SQLite)."""
    db = connections.get("default")
    for model, items in rows.items():
        if not items:
            continue
        meta = model._meta
        names = list(items[0])
        columns = ", ".join(f'"{meta.fields_db_projection[n]}"' for n in names)
        # Table and column names come from the models, never from data.
        marks = ", ".join("?" for _ in names)
        sql = f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ({marks})'  # noqa: S608
        convert = [meta.fields_map[n].to_db_value for n in names]
        await db.execute_many(sql, [_values(item, names, convert, model) for item in items])


def _values(item: dict[str, Any], names: Iterable[str], convert: Iterable[Any], model: Any
            ) -> list[Any]:  # fmt: skip
    return [to_db(item[name], model) for name, to_db in zip(names, convert, strict=True)]


async def copied_leads(url: str, scratch: Path, email: str | None, sample: int) -> Rows:
    """The rows of lead ``email`` (or of ``sample`` active leads) in the database at
    ``url``, read without writing there."""
    path = sqlite_path(url)
    if url.startswith("sqlite://"):
        if path is None:
            raise NurturedError("simulate needs a database file, not an in-memory database")
        copy = scratch / "source.db"
        _backup(path, copy)
        url, upgrade = f"sqlite://{copy}", True  # the copy may need this version's schema
    else:
        upgrade = False  # PostgreSQL: read, never migrated or written
    async with _tortoise(url, upgrade=upgrade):
        return await _read(await _pick(email, sample))


@asynccontextmanager
async def sandbox_db(scratch: Path, rows: Rows) -> AsyncIterator[None]:
    """A fresh SQLite database in ``scratch`` holding ``rows``, open for the duration."""
    async with _tortoise(f"sqlite://{scratch / 'simulate.db'}", upgrade=True):
        await _write(rows)
        yield


@asynccontextmanager
async def scratch_dir() -> AsyncIterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nurtured-simulate-") as name:
        yield Path(name)
