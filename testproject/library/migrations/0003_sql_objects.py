"""Raw SQL objects: a view (with an unmanaged model), a trigger, a function."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0002_seed_data"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[
                """
                CREATE VIEW library_book_stats AS
                SELECT a.id AS author_id,
                       a.name AS author_name,
                       count(b.id)::integer AS book_count
                FROM library_author a
                LEFT JOIN library_book b ON b.author_id = a.id
                GROUP BY a.id, a.name
                """,
            ],
            reverse_sql=["DROP VIEW library_book_stats"],
            state_operations=[
                migrations.CreateModel(
                    name="BookStats",
                    fields=[
                        (
                            "author",
                            models.OneToOneField(
                                db_column="author_id",
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                primary_key=True,
                                related_name="stats",
                                serialize=False,
                                to="library.author",
                            ),
                        ),
                        ("author_name", models.CharField(max_length=100)),
                        ("book_count", models.IntegerField()),
                    ],
                    options={
                        "db_table": "library_book_stats",
                        "managed": False,
                    },
                ),
            ],
        ),
        migrations.RunSQL(
            sql=[
                """
                CREATE FUNCTION library_book_fill_search_title() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    NEW.search_title := upper(NEW.title);
                    RETURN NEW;
                END;
                $$
                """,
                """
                CREATE TRIGGER library_book_search_title
                BEFORE INSERT OR UPDATE ON library_book
                FOR EACH ROW EXECUTE FUNCTION library_book_fill_search_title()
                """,
            ],
            reverse_sql=[
                "DROP TRIGGER library_book_search_title ON library_book",
                "DROP FUNCTION library_book_fill_search_title()",
            ],
        ),
        # SET search_path FROM CURRENT pins the function to the search_path in
        # effect at creation time, i.e. the schema it was created in.
        migrations.RunSQL(
            sql=[
                """
                CREATE FUNCTION library_book_count() RETURNS bigint
                LANGUAGE sql STABLE
                SET search_path FROM CURRENT
                AS $$ SELECT count(*) FROM library_book $$
                """,
            ],
            reverse_sql=["DROP FUNCTION library_book_count()"],
        ),
    ]
