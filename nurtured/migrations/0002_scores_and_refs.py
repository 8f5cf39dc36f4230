"""Score decay (Lead.score_at) and Event.ref: an inbound message counts once."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from nurtured.models import EventKind


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    operations = [
        ops.AddField(
            model_name="Lead",
            name="score_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Event",
            name="ref",
            field=fields.CharField(null=True, unique=True, max_length=300),
        ),
        ops.AlterField(  # new event kinds: forward, sales_ready, alert, unmatched
            model_name="Event",
            name="kind",
            field=fields.CharEnumField(
                description="\n".join(f"{k.name}: {k.value}" for k in EventKind),
                enum_type=EventKind,
                max_length=20,
            ),
        ),
    ]
