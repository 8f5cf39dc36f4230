"""Raw aggregate SQL for the report, on SQLite and PostgreSQL alike.

The report's questions (distinct leads, emails that got a human open, the content sent
last before a handoff) are GROUP BY statements with a correlated subquery or two, which
the ORM cannot say; this module runs them with ``:name`` parameters and fills in the few
expressions the two dialects spell differently (a JSON flag, a day, an ordered list).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.config_generator import expand_db_url

_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")


@dataclass(frozen=True)
class Dialect:
    postgres: bool

    def flag(self, column: str, key: str) -> str:
        """True when the JSON object in ``column`` has ``key`` set to true."""
        if self.postgres:
            return f"(COALESCE({column}->>'{key}', '') = 'true')"
        return f"(COALESCE(json_extract({column}, '$.{key}'), 0) = 1)"

    def day(self, column: str) -> str:
        """The UTC calendar day of a timestamp column, as 'YYYY-MM-DD' text."""
        if self.postgres:
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"substr({column}, 1, 10)"

    def ordered_list(self, column: str, order: str) -> str:
        """The values of ``column`` in a group joined by " > " in ``order``. SQLite before
        3.44 has no ORDER BY in group_concat: its callers feed rows already in order from
        a subquery with ORDER BY, which SQLite never flattens into an aggregate."""
        if self.postgres:
            return f"string_agg({column}, ' > ' ORDER BY {order})"
        return f"group_concat({column}, ' > ')"

    def by_lead(self, column: str) -> str:
        """``column`` in a condition that must not steer SQLite's choice of index: without
        statistics it would scan delivery by (status, retry_at) instead of seeking the
        lead's rows by (lead_id, content_id). SQLite's unary + keeps a column out of index
        choice; PostgreSQL plans by its statistics and needs no hint."""
        return column if self.postgres else f"+{column}"

    def value(self, value: Any) -> Any:
        # Tortoise keeps SQLite timestamps as UTC ISO text ("2026-11-23 10:00:00+00:00"):
        # a parameter in the same form compares as the instant it is.
        if isinstance(value, datetime) and not self.postgres:
            return value.astimezone(UTC).isoformat(sep=" ")
        return value


def dialect() -> Dialect:
    name = connections.get("default").capabilities.dialect
    return Dialect(postgres=name.startswith("postgres"))


async def fetch(sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``sql``, whose ``:name`` markers take ``params`` (by name, repeatable)."""
    d = dialect()
    values: list[Any] = []

    def placeholder(match: re.Match[str]) -> str:
        values.append(d.value((params or {})[match.group(1)]))
        return f"${len(values)}" if d.postgres else "?"

    text = _PARAM.sub(placeholder, sql)
    _, rows = await connections.get("default").execute_query(text, values)
    return [tuple(row) if not isinstance(row, Mapping) else tuple(row.values()) for row in rows]


@asynccontextmanager
async def reading() -> AsyncIterator[None]:
    """For the block, every query of this task (the ORM's and ``fetch``'s) reads a SQLite
    file on a read-only connection of its own.

    The daemon has one SQLite connection, which the engine, the click writer and the
    intake take turns on: a report over 100k leads (seconds of queries) would hold each of
    them back. WAL lets another connection read the committed data meanwhile. PostgreSQL
    and an in-memory database: the usual connection (a pool, or the only copy)."""
    client = connections.get("default")
    path = getattr(client, "filename", None)
    if dialect().postgres or not isinstance(path, str) or path in ("", ":memory:"):
        yield
        return
    info = connections.db_config["default"]
    params = dict((expand_db_url(info) if isinstance(info, str) else info)["credentials"])
    reader = type(client)(**{**params, "connection_name": "default"})
    try:
        await reader.execute_script("PRAGMA query_only = ON")  # connects; refuses any write
        token = connections.set("default", reader)
        try:
            yield
        finally:
            connections.reset(token)
    finally:
        await reader.close()
