"""Initial schema: companies, leads, enrollments, deliveries (UNIQUE lead+content), links, events."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS, JSON_LOADS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from nurtured.models import DeliveryStatus, EnrollmentState, EventKind, LeadStatus


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Company",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(unique=True, max_length=200)),
                ("domain", fields.CharField(null=True, max_length=253)),
                ("size", fields.CharField(null=True, max_length=50)),
                ("industry", fields.CharField(null=True, max_length=100)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "company", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Lead",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("email", fields.CharField(unique=True, max_length=254)),
                ("first_name", fields.CharField(default="", max_length=100)),
                ("last_name", fields.CharField(default="", max_length=100)),
                ("title", fields.CharField(default="", max_length=200)),
                (
                    "company",
                    fields.ForeignKeyField(
                        "models.Company",
                        source_field="company_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="leads",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("source", fields.CharField(default="", max_length=100)),
                (
                    "interests",
                    fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=JSON_LOADS),
                ),
                ("timezone", fields.CharField(default="", max_length=64)),
                ("extra", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=JSON_LOADS)),
                (
                    "status",
                    fields.CharEnumField(
                        default=LeadStatus.ACTIVE,
                        description="ACTIVE: active\nREPLIED: replied\nSALES: sales\nUNSUBSCRIBED: unsubscribed\nBOUNCED: bounced",
                        enum_type=LeadStatus,
                        max_length=20,
                    ),
                ),
                ("score", fields.IntField(default=0)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "lead", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Delivery",
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
                        related_name="deliveries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("content_id", fields.CharField(max_length=100)),
                ("stream_id", fields.CharField(max_length=100)),
                ("step_index", fields.IntField()),
                ("token", fields.CharField(unique=True, max_length=32)),
                ("message_id", fields.CharField(unique=True, max_length=300)),
                ("subject", fields.CharField(default="", max_length=500)),
                (
                    "status",
                    fields.CharEnumField(
                        default=DeliveryStatus.SENDING,
                        description="SENDING: sending\nSENT: sent\nDEFERRED: deferred\nFAILED: failed\nUNKNOWN: unknown",
                        enum_type=DeliveryStatus,
                        max_length=10,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("claimed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("retry_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("error", fields.TextField(default="", unique=False)),
            ],
            options={
                "table": "delivery",
                "app": "models",
                "unique_together": (("lead", "content_id"),),
                "indexes": [Index(fields=["status", "retry_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Enrollment",
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
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="enrollments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("active_lead", fields.IntField(null=True, unique=True)),
                ("stream_id", fields.CharField(max_length=100)),
                (
                    "state",
                    fields.CharEnumField(
                        default=EnrollmentState.ACTIVE,
                        description="ACTIVE: active\nPAUSED: paused\nHELD: held\nENDED: ended",
                        enum_type=EnrollmentState,
                        max_length=10,
                    ),
                ),
                ("position", fields.IntField(default=0)),
                (
                    "next_due_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("lease", fields.CharField(null=True, max_length=32)),
                ("content_version", fields.CharField(default="", max_length=32)),
                ("entered_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("left_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("reason", fields.CharField(default="", max_length=200)),
            ],
            options={
                "table": "enrollment",
                "app": "models",
                "indexes": [Index(fields=["state", "next_due_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Event",
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
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "delivery",
                    fields.ForeignKeyField(
                        "models.Delivery",
                        source_field="delivery_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="ENROLLED: enrolled\nMOVED: moved\nPAUSED: paused\nRESUMED: resumed\nEXHAUSTED: exhausted\nENDED: ended\nSEND_FAILED: send_failed\nSEND_UNKNOWN: send_unknown\nBOUNCE: bounce\nCLICK: click\nOPEN: open\nREPLY: reply\nAUTO_REPLY: auto_reply\nUNSUBSCRIBE: unsubscribe",
                        enum_type=EventKind,
                        max_length=20,
                    ),
                ),
                ("stream_id", fields.CharField(default="", max_length=100)),
                ("data", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=JSON_LOADS)),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "event",
                "app": "models",
                "indexes": [Index(fields=["lead_id", "occurred_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Link",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "delivery",
                    fields.ForeignKeyField(
                        "models.Delivery",
                        source_field="delivery_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="links",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("index", fields.IntField()),
                ("url", fields.TextField(unique=False)),
                ("tag", fields.CharField(null=True, max_length=100)),
            ],
            options={
                "table": "link",
                "app": "models",
                "unique_together": (("delivery", "index"),),
                "pk_attr": "id",
                "table_description": "A tracked link as rendered into one delivery: the only URLs a click may redirect to.",
            },
            bases=["Model"],
        ),
    ]
