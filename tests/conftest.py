"""Shared fixtures: a real database per test (SQLite, or PostgreSQL when asked), projects.

Set NURTURED_TEST_POSTGRES=postgres://user@host:port/db to run every database test
against PostgreSQL: the run creates a database of its own next to that one and drops
it at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import settings
from tortoise import connections

from nurtured.db import close_db, open_db

pytest_plugins = ["tests.smtp_sink", "tests.walk", "tests.dovecot"]

# Property tests are deterministic (the same examples every run, so CI never fails on a
# lucky draw) and untimed (a loaded machine must not turn a slow example into a failure).
settings.register_profile("nurtured", derandomize=True, deadline=None, database=None)
settings.load_profile("nurtured")

SCAFFOLD = Path(__file__).parent.parent / "nurtured" / "scaffold"
TABLES = (
    "link", "event", "delivery", "enrollment", "score_change", "lead", "company", "suppression",
    "setting",
)  # fmt: skip


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that touch a database are marked ``db`` (scripts/test reruns them on PostgreSQL)."""
    for item in items:
        if {"db", "postgres_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A PostgreSQL database of this run's own, or None when running on SQLite."""
    base = os.environ.get("NURTURED_TEST_POSTGRES")
    if not base:
        yield None
        return
    name = f"nurtured_test_{secrets.token_hex(4)}"
    parts = urlsplit(base)
    try:
        asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.exit(f"PostgreSQL at {parts.netloc} is not reachable: {exc}", returncode=3)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db(tmp_path: Path, postgres_url: str | None) -> AsyncIterator[str]:
    """An empty, migrated database; yields its URL."""
    url = postgres_url or f"sqlite://{tmp_path}/test.db"
    await open_db(url)
    if postgres_url:
        conn = connections.get("default")
        await conn.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    try:
        yield url
    finally:
        await close_db()


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Make a project dir from the scaffold; keyword args replace or add files.

    ``project(**{"streams/x.toml": "...", "config.toml": "..."})``; a value of None
    deletes that file. Returns the config.toml path.
    """

    def make(**files: str | None) -> Path:
        root = tmp_path / "project"
        if not root.exists():
            shutil.copytree(SCAFFOLD, root)
        for name, text in files.items():
            target = root / name
            if text is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text))
        return root / "config.toml"

    return make
