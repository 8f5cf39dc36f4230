"""Database set-up: one URL picks SQLite or PostgreSQL; schema changes are native migrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tortoise import Model, Tortoise
from tortoise.migrations.api import migrate

log = logging.getLogger(__name__)

APP = "models"


def tortoise_config(url: str) -> dict[str, Any]:
    """The Tortoise config for ``url``; the migrations package is nurtured.migrations."""
    return {
        "connections": {"default": url},
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


async def open_db(url: str, *, upgrade: bool = True) -> None:
    """Connect, and bring the schema up to date in place (migrations are idempotent)."""
    config = tortoise_config(url)
    if upgrade:
        await migrate(config=config)
    await Tortoise.init(config=config)


async def close_db() -> None:
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
