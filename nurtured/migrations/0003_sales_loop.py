"""The sales loop: Lead.stage (set in place from the status for existing leads) and the
Handoff table (owner, SLA deadline, reminders, the outcome)."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from nurtured.models import HandoffState, LeadStage


class Migration(migrations.Migration):
    dependencies = [("models", "0002_scores_and_refs")]

    operations = [
        ops.AddField(
            model_name="Lead",
            name="stage",
            field=fields.CharEnumField(
                default=LeadStage.NEW,
                description="\n".join(f"{k.name}: {k.value}" for k in LeadStage),
                enum_type=LeadStage,
                max_length=20,
            ),
        ),
        ops.RunSQL(
            [
                "UPDATE lead SET stage = 'sql' WHERE status = 'sales'",
                "UPDATE lead SET stage = 'unsubscribed' WHERE status = 'unsubscribed'",
                "UPDATE lead SET stage = 'bounced' WHERE status = 'bounced'",
                "UPDATE lead SET stage = 'nurturing' WHERE status IN ('active', 'replied')"
                " AND EXISTS (SELECT 1 FROM delivery WHERE delivery.lead_id = lead.id)",
            ]
        ),
        ops.CreateModel(
            name="Handoff",
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
                        related_name="handoffs",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("owner", fields.CharField(max_length=254)),
                (
                    "state",
                    fields.CharEnumField(
                        default=HandoffState.OPEN,
                        description="\n".join(f"{k.name}: {k.value}" for k in HandoffState),
                        enum_type=HandoffState,
                        max_length=10,
                    ),
                ),
                ("handed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("deadline", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "reminded_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "escalated_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("acted_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("closed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("reason", fields.TextField(default="")),
                ("category", fields.CharField(default="", max_length=20)),
                ("amount", fields.DecimalField(null=True, max_digits=14, decimal_places=2)),
                ("currency", fields.CharField(default="", max_length=8)),
                ("cause", fields.CharField(default="", max_length=100)),
                ("alert_id", fields.CharField(null=True, unique=True, max_length=300)),
            ],
            options={
                "table": "handoff",
                "app": "models",
                "pk_attr": "id",
                "indexes": [Index(fields=["state", "deadline"])],
            },
            bases=["Model"],
        ),
    ]
