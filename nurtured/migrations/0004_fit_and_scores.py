"""Fit and explained scores: Company.key (filled here; rows that are one company merged,
their leads moved to the survivor), Lead.score_value and
Lead.profile_score, and the score_change table (one row per change of a score, with its
rule and cause). Each lead's score so far becomes one change of rule "earlier", so the
causes add up from the start."""

from typing import Any

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from nurtured.fit.companies import name_key


def _sql(client: Any, text: str) -> str:
    """``?`` placeholders as the backend wants them ($1, $2 ... on PostgreSQL)."""
    if client.capabilities.dialect == "sqlite":
        return text
    parts = text.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


MOVE_LEADS = "UPDATE lead SET company_id = ? WHERE company_id = ?"
DROP_COMPANY = "DELETE FROM company WHERE id = ?"
SET_KEY = "UPDATE company SET key = ? WHERE id = ?"


async def fill_company_keys(apps: Any, editor: Any) -> None:
    """key = name_key(name); companies with one key become the oldest of them."""
    client = editor.client
    _, rows = await client.execute_query("SELECT id, name FROM company ORDER BY id")
    survivors: dict[str, int] = {}
    for row in rows:
        company_id, name = row[0], row[1]
        key = name_key(name) or name.strip().lower()
        if key in survivors:
            await client.execute_query(_sql(client, MOVE_LEADS), [survivors[key], company_id])
            await client.execute_query(_sql(client, DROP_COMPANY), [company_id])
            continue
        survivors[key] = company_id
        await client.execute_query(_sql(client, SET_KEY), [key, company_id])


class Migration(migrations.Migration):
    dependencies = [("models", "0003_sales_loop")]

    operations = [
        ops.AddField(
            model_name="Company",
            name="key",
            field=fields.CharField(null=True, db_index=True, max_length=200),
        ),
        ops.AddField(
            model_name="Lead",
            name="score_value",
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name="Lead",
            name="profile_score",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.CreateModel(
            name="ScoreChange",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "lead",
                    fields.ForeignKeyField(
                        "models.Lead",
                        source_field="lead_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="score_changes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("rule", fields.CharField(max_length=100)),
                ("points", fields.IntField()),
                ("decays", fields.BooleanField(default=True)),
                ("cause", fields.CharField(default="", max_length=300)),
            ],
            options={
                "table": "score_change",
                "app": "models",
                "pk_attr": "id",
                "indexes": [Index(fields=["lead_id", "at"])],
                "table_description": "One change of a lead's score: which rule, how many points, and why.",
            },
            bases=["Model"],
        ),
        ops.RunSQL(
            [
                "UPDATE lead SET score_value = score WHERE score <> 0",
                "INSERT INTO score_change (lead_id, at, rule, points, decays, cause)"
                " SELECT id, COALESCE(score_at, updated_at), 'earlier', score, TRUE,"
                " 'score before causes were kept' FROM lead WHERE score <> 0",
            ]
        ),
        ops.RunPython(fill_company_keys, ops.RunPython.noop),
    ]
