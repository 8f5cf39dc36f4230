"""Suppression (addresses, domains and erased leads' hashes never mailed) and Setting
(install-wide values such as the salt of those hashes)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from nurtured.models import SuppressionKind


class Migration(migrations.Migration):
    dependencies = [("models", "0004_fit_and_scores")]

    operations = [
        ops.CreateModel(
            name="Suppression",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="\n".join(f"{k.name}: {k.value}" for k in SuppressionKind),
                        enum_type=SuppressionKind,
                        max_length=10,
                    ),
                ),
                ("value", fields.CharField(max_length=254)),
                ("reason", fields.CharField(default="", max_length=200)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "suppression",
                "app": "models",
                "pk_attr": "id",
                "unique_together": (("kind", "value"),),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Setting",
            fields=[
                ("key", fields.CharField(primary_key=True, max_length=64)),
                ("value", fields.TextField()),
            ],
            options={"table": "setting", "app": "models", "pk_attr": "key"},
            bases=["Model"],
        ),
    ]
