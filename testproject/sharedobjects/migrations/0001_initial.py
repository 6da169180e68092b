"""Objects created with an explicit schema, the shared one (second on the
search_path during migrate), as projects like NetBox do for their collation: a
collation, an enum and a function that a snapshot must carry along."""

from django.db import migrations, models

IN_SHARED_SCHEMA = """
DO $$
DECLARE shared text := (current_schemas(false))[2];
BEGIN
    EXECUTE format('CREATE COLLATION %I.natural_sort (provider = icu, locale = %L)',
                   shared, 'und-u-kn-true');
    EXECUTE format('CREATE TYPE %I.shelf_state AS ENUM (%L, %L)', shared, 'open', 'closed');
    EXECUTE format('CREATE FUNCTION %I.shelf_code(label text) RETURNS text '
                   'LANGUAGE sql IMMUTABLE AS %L', shared, 'SELECT upper(label)');
END
$$
"""


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.RunSQL(IN_SHARED_SCHEMA, migrations.RunSQL.noop),
        migrations.CreateModel(
            name="Shelf",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("label", models.CharField(db_collation="natural_sort", max_length=50)),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO sharedobjects_shelf (label) VALUES ('shelf10'), ('shelf9'), ('shelf1')",
            migrations.RunSQL.noop,
        ),
    ]
