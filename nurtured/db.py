"""Database set-up: one URL picks SQLite or PostgreSQL; schema changes are native migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from tortoise import Model, Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate

log = logging.getLogger(__name__)

APP = "models"


def tortoise_config(url: str) -> dict[str, Any]:
    """The Tortoise config for ``url``; the migrations package is nurtured.migrations.
    SQLite's automatic checkpoints are off: a ``Checkpointer`` does them (see there).
    ``secure_delete`` zeroes what SQLite frees, so text that was updated or deleted (an
    erased lead's, say) lingers in no free space of the file (``nurtured.data.privacy``)."""
    connection: str | dict[str, Any] = url
    if sqlite_path(url) is not None:
        connection = expand_db_url(url)
        connection["credentials"]["wal_autocheckpoint"] = 0
        connection["credentials"]["secure_delete"] = "ON"
    return {
        "connections": {"default": connection},
        "apps": {
            APP: {
                "models": ["nurtured.models"],
                "default_connection": "default",
                "migrations": "nurtured.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def sqlite_path(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory one or another backend."""
    if not url.startswith("sqlite://"):
        return None
    path: str = expand_db_url(url)["credentials"]["file_path"]
    return None if path == ":memory:" else path


class Checkpointer:
    """Copies SQLite's write-ahead log back into the database file, every ``interval``
    seconds, on a connection and thread of its own.

    With SQLite's automatic checkpoints, the commit that took the log past 1,000 pages
    did the copying (and an fsync of the database file) before returning: at a million
    leads, where each due row sits on a page of its own, that was most of a lease's or a
    claim's commit, and it held up everything queued behind it on the one connection.
    A passive checkpoint never blocks a writer or reader; once the whole log is copied,
    the next write starts it over from the beginning (``journal_size_limit`` trims it).
    """

    def __init__(self, path: str, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="nurtured-wal-checkpoint")

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint (blocking: call it in a thread): (busy, log pages,
        pages copied), as ``PRAGMA wal_checkpoint`` reports them."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        busy, pages, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(pages), int(copied)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as exc:  # the log waits for the next try; nothing is lost
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)

    async def close(self) -> None:
        """Stop, with a last checkpoint (the last connection to close makes another)."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with suppress(sqlite3.Error):
                await asyncio.to_thread(conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
            await asyncio.to_thread(conn.close)


_checkpointer: Checkpointer | None = None

# pg_advisory_lock key of the migrations: any fixed bigint; this one is b"nurtured".
MIGRATION_LOCK = 0x6E75727475726564


@asynccontextmanager
async def migration_lock(url: str) -> AsyncIterator[None]:
    """Held while migrating, so that processes started together migrate one at a time
    (the first applies, the others find nothing left to do). PostgreSQL: a session
    advisory lock, released when its connection closes (also when the holder dies).
    SQLite: an ``flock`` on ``<database>.migrate-lock`` next to the file; an in-memory
    database has one process anyway. Other backends: none."""
    path = sqlite_path(url)
    if path is not None:
        import fcntl

        with open(f"{path}.migrate-lock", "a") as handle:  # noqa: ASYNC230 - instant
            await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    config = expand_db_url(url)
    if not config["engine"].endswith(("asyncpg", "psycopg")):
        yield
        return
    import asyncpg  # type: ignore[import-untyped]

    credentials = {k: v for k, v in config["credentials"].items()
                   if k in ("host", "port", "user", "password", "database", "ssl")}  # fmt: skip
    conn = await asyncpg.connect(**credentials)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        yield
    finally:
        await conn.close()  # closing the session releases the lock


async def open_db(url: str, *, upgrade: bool = True) -> None:
    """Connect, and bring the schema up to date in place (migrations are idempotent);
    for a SQLite file, start its ``Checkpointer``."""
    global _checkpointer
    config = tortoise_config(url)
    if upgrade:
        async with migration_lock(url):
            await migrate(config=config)
    await Tortoise.init(config=config)
    path = sqlite_path(url)
    if path is not None:
        _checkpointer = Checkpointer(path)
        _checkpointer.start()


async def close_db() -> None:
    global _checkpointer
    if _checkpointer is not None:
        checkpointer, _checkpointer = _checkpointer, None
        await checkpointer.close()
    await Tortoise.close_connections()


@asynccontextmanager
async def database(url: str, *, upgrade: bool = True) -> AsyncIterator[None]:
    await open_db(url, upgrade=upgrade)
    try:
        yield
    finally:
        await close_db()


async def update_rows(model: type[Model], instances: Sequence[Any], fields: Sequence[str]) -> None:
    """``UPDATE model SET fields WHERE pk`` for every instance, as one prepared statement
    executed many times (inside the caller's transaction, if any). An instance is a model
    object or any object with the primary key and ``fields`` as attributes (a plain row).

    Tortoise's ``bulk_update`` builds one ``CASE WHEN pk=...`` expression per field over
    the whole batch; the database then evaluates each CASE for every row, which made it
    the slowest part of saving a batch. Values go through each field's ``to_db_value``,
    as in ``Model.save``.
    """
    if not instances:
        return
    db = model._meta.db
    sql = db.executor_class(model=model, db=db).get_update_sql(list(fields), None)
    meta = model._meta
    converters = [meta.fields_map[name].to_db_value for name in fields]
    to_pk, pk_attr = meta.pk.to_db_value, meta.pk_attr
    rows = [
        [convert(getattr(obj, name), obj) for convert, name in zip(converters, fields, strict=True)]
        + [to_pk(getattr(obj, pk_attr), obj)]
        for obj in instances
    ]
    await db.execute_many(sql, rows)


async def insert_rows(
    model: type[Model],
    rows: Iterable[Mapping[str, Any]],
    *,
    ignore_conflicts: bool = False,
    pace: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """``INSERT INTO model`` each row (field name -> value; a field left out takes its
    default) as one prepared statement executed many times, in the caller's transaction.
    With ``ignore_conflicts``, a row that breaks a unique constraint is skipped
    (``ON CONFLICT DO NOTHING``, as ``bulk_create(ignore_conflicts=True)``).
    ``await pace()`` runs before each row, for callers that share the loop with requests.

    A model object per row cost more than the statement: Tortoise's ``__init__`` checks
    and converts every field. Values go through each field's ``to_db_value`` as in
    ``bulk_create``.
    """
    db = model._meta.db
    executor = db.executor_class(model=model, db=db)
    if ignore_conflicts:
        # The statement bulk_create builds for ignore_conflicts=True, for this backend
        # (on PostgreSQL the clause must come before RETURNING).
        columns = executor._prepare_insert_columns()[1]
        sql = executor._prepare_insert_statement(columns, ignore_conflicts=True).get_sql()
    else:
        sql = executor.insert_query
    fields_map = model._meta.fields_map
    fields = [
        (name, fields_map[name].to_db_value, fields_map[name].default)
        for name in executor.regular_columns
    ]
    values: list[list[Any]] = []
    for row in rows:
        if pace is not None:
            await pace()
        line = []
        for name, convert, default in fields:
            # A field left out takes its default, as Model.__init__ gives it.
            value = row[name] if name in row else (default() if callable(default) else default)
            line.append(convert(value, model))
        values.append(line)
    if values:
        await db.execute_many(sql, values)
