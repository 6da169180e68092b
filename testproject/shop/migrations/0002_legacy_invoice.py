"""A hand-made table with a serial (not identity) key, and its unmanaged model."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[
                "CREATE TABLE shop_legacy_invoice "
                "(id serial PRIMARY KEY, number text UNIQUE NOT NULL)",
            ],
            reverse_sql=["DROP TABLE shop_legacy_invoice"],
            state_operations=[
                migrations.CreateModel(
                    name="LegacyInvoice",
                    fields=[
                        ("id", models.AutoField(primary_key=True, serialize=False)),
                        ("number", models.TextField(unique=True)),
                    ],
                    options={
                        "db_table": "shop_legacy_invoice",
                        "managed": False,
                    },
                ),
            ],
        ),
    ]
