"""Seed rows that tests rely on: three tags and one author."""

from django.db import migrations

from library.seed import SEED_AUTHOR, SEED_TAGS, create_seed_rows


def seed(apps, schema_editor):
    create_seed_rows(
        apps.get_model("library", "Tag"),
        apps.get_model("library", "Author"),
        using=schema_editor.connection.alias,
    )


def unseed(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("library", "Tag").objects.using(db).filter(
        name__in=SEED_TAGS
    ).delete()
    apps.get_model("library", "Author").objects.using(db).filter(
        name=SEED_AUTHOR
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed, unseed),
    ]
