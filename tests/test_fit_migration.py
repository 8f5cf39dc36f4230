"""Migration 0004 on a database made before it: companies that are one company merged
without losing a lead, and old scores kept as a cause so the causes add up."""

from __future__ import annotations

from pathlib import Path

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

from nurtured.db import tortoise_config

from .conftest import TABLES

T = "'2026-01-01T00:00:00+00:00'"
BEFORE = f"""
INSERT INTO company (id, name, created_at) VALUES
  (1, 'Zed Corp, LLC', {T}), (2, 'zed corp', {T}), (3, 'Other GmbH', {T});
INSERT INTO lead (email, first_name, last_name, title, company_id, source, interests, timezone,
                  extra, status, score, score_at, stage, created_at, updated_at) VALUES
  ('a@zed.example', '', '', '', 1, '', '[]', '', '{{}}', 'active', 40, {T}, 'new', {T}, {T}),
  ('b@zed.example', '', '', '', 2, '', '[]', '', '{{}}', 'active', 0, NULL, 'new', {T}, {T}),
  ('c@other.example', '', '', '', 3, '', '[]', '', '{{}}', 'active', 0, NULL, 'new', {T}, {T});
"""


async def test_0004_merges_companies_and_keeps_old_scores(
    tmp_path: Path, postgres_url: str | None
) -> None:
    url = postgres_url or f"sqlite://{tmp_path}/old.db"
    config = tortoise_config(url)
    if postgres_url:  # this run's database: start it empty, at 0003
        await Tortoise.init(config=config)
        tables = ", ".join((*TABLES, "handoff", "score_change"))
        await connections.get("default").execute_script(
            f"DROP TABLE IF EXISTS {tables}, tortoise_migrations CASCADE"
        )
        await Tortoise.close_connections()
    await migrate(config=config, target="models.0003_sales_loop")
    await Tortoise.init(config=config)
    try:
        db = connections.get("default")
        await db.execute_script(BEFORE)
        await Tortoise.close_connections()
        await migrate(config=config)
        await Tortoise.init(config=config)
        db = connections.get("default")
        _, companies = await db.execute_query("SELECT id, name, key FROM company ORDER BY id")
        assert [tuple(r) for r in companies] == [
            (1, "Zed Corp, LLC", "zed"),
            (3, "Other GmbH", "other"),
        ]
        _, leads = await db.execute_query("SELECT email, company_id FROM lead ORDER BY email")
        assert [tuple(r) for r in leads] == [
            ("a@zed.example", 1),
            ("b@zed.example", 1),
            ("c@other.example", 3),
        ]
        _, causes = await db.execute_query("SELECT rule, points FROM score_change")
        assert [tuple(r) for r in causes] == [("earlier", 40)]
    finally:
        await Tortoise.close_connections()
