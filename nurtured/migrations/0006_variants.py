"""Split tests: Delivery.variant, the variant of its step that the lead was sent ("" when
the step has none). Existing rows get ""."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0005_suppression")]

    operations = [
        ops.AddField(
            model_name="Delivery",
            name="variant",
            field=fields.CharField(default="", max_length=40),
        ),
    ]
