"""Database set-up: one URL picks SQLite or PostgreSQL; schema changes are native migrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise import Tortoise
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
