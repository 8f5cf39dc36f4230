"""Database set-up: one URL picks SQLite or PostgreSQL; schema changes are native migrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
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
