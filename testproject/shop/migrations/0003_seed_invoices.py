"""Insert three legacy invoices so the serial sequence stands at 3."""

from django.db import migrations

NUMBERS = ["INV-0001", "INV-0002", "INV-0003"]


def seed(apps, schema_editor):
    LegacyInvoice = apps.get_model("shop", "LegacyInvoice")
    db = schema_editor.connection.alias
    for number in NUMBERS:
        LegacyInvoice.objects.using(db).create(number=number)


def unseed(apps, schema_editor):
    LegacyInvoice = apps.get_model("shop", "LegacyInvoice")
    db = schema_editor.connection.alias
    LegacyInvoice.objects.using(db).filter(number__in=NUMBERS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0002_legacy_invoice"),
    ]

    operations = [
        migrations.RunPython(seed, unseed),
    ]
