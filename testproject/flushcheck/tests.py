"""Scenarios a flush must get right. tests/test_flush.py runs them twice, with
Django's flush (SCHEMAISO["FAST_FLUSH"] False) and with schemaiso's, and compares
what each run's database holds after every flush: it must be the same, down to
sequence values and content type ids.

The classes are numbered for their order (the runner sorts them by name): a
serialized rollback reloads the content types serialized when the database was
made, which collides with the ones ``post_migrate`` re-creates after a flush (as
under Django's own runner), so it comes first."""

import json
import os
from datetime import date
from pathlib import Path
from urllib.request import urlopen

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test import LiveServerTestCase, TransactionTestCase
from django.test.utils import CaptureQueriesContext

from .models import Audited, AuditLog, Left, Node, Reading, Right, Transient, Visit


def describe():
    """The rows of every table of the connection's schema, as sorted text, and the
    value of every sequence."""
    found = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
            "AND c.relkind IN ('r', 'S') ORDER BY 1"
        )
        for name, kind in cursor.fetchall():
            quoted = connection.ops.quote_name(name)
            if kind == "S":
                cursor.execute(f"SELECT last_value, is_called FROM {quoted}")
                found[name] = list(cursor.fetchone())
            elif name == "django_migrations":  # when they were applied differs by run
                cursor.execute(f"SELECT id, app, name FROM {quoted} ORDER BY id")
                found[name] = [list(row) for row in cursor.fetchall()]
            else:
                cursor.execute(f"SELECT t::text FROM ONLY {quoted} t ORDER BY 1")
                found[name] = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    return schema, found


class Recorded:
    """Writes what the database holds after the flush that ends each test, and the
    statements that emptied it, to $FLUSHCHECK_DUMP/<test id>.json."""

    def _fixture_teardown(self):
        with CaptureQueriesContext(connection) as captured:
            super()._fixture_teardown()
        schema, tables = describe()
        emptied = [
            query["sql"].replace(connection.ops.quote_name(schema) + ".", "")
            for query in captured.captured_queries
            if query["sql"].startswith(("TRUNCATE", "DELETE"))
        ]
        dump = Path(os.environ["FLUSHCHECK_DUMP"]) / f"{self.id()}.json"
        dump.write_text(json.dumps({"tables": tables, "emptied": emptied}, indent=1))


class S2FlushScenarios(Recorded, TransactionTestCase):
    def test_a_rows_through_the_orm(self):
        root = Node.objects.create(name="root")
        Node.objects.create(name="leaf", parent=Node.objects.create(name="child", parent=root))
        left = Left.objects.create(name="l")
        left.right = Right.objects.create(name="r", left=left)
        left.save()
        Reading.objects.create(taken=date(1999, 5, 1), value=1)
        Reading.objects.create(taken=date(2024, 1, 1), value=2)

    def test_b_rows_by_raw_sql(self):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO flushcheck_visit (path) VALUES ('raw'), ('sql')")

    def test_c_rows_by_a_trigger(self):
        Audited.objects.create(name="a")
        Audited.objects.create(name="b")
        Audited.objects.filter(name="a").delete()
        self.assertEqual(AuditLog.objects.count(), 3)

    def test_d_a_table_the_test_emptied(self):
        Visit.objects.create(path="gone")
        Visit.objects.all().delete()

    def test_e_nothing_written(self):
        self.assertFalse(Node.objects.exists())

    def test_f_a_table_dropped(self):
        Transient.objects.create(name="t", node=Node.objects.create(name="n"))
        with connection.schema_editor() as editor:
            editor.delete_model(Transient)

    def test_g_a_table_created(self):
        with connection.schema_editor() as editor:
            editor.create_model(Transient)
        Transient.objects.create(name="again", node=Node.objects.create(name="n"))

    def test_h_a_truncate_trigger(self):
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE FUNCTION flushcheck_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN INSERT INTO flushcheck_auditlog (event, name) VALUES (TG_OP, TG_TABLE_NAME); "
                "RETURN NULL; END $$; "
                "CREATE TRIGGER flushcheck_visit_truncated AFTER TRUNCATE ON flushcheck_visit "
                "FOR EACH STATEMENT EXECUTE FUNCTION flushcheck_truncated()"
            )
        Visit.objects.create(path="watched")

    def test_i_the_truncate_trigger_dropped(self):
        self.assertEqual(list(AuditLog.objects.values_list("event", "name")),
                         [("TRUNCATE", "flushcheck_visit")])
        with connection.cursor() as cursor:
            cursor.execute("DROP FUNCTION flushcheck_truncated() CASCADE")

    def test_j_manage_py_flush(self):
        Node.objects.create(name="before")
        call_command("flush", interactive=False, verbosity=0)
        Node.objects.create(name="after")


class S3LiveServer(Recorded, LiveServerTestCase):
    def test_rows_written_by_the_live_server(self):
        with urlopen(f"{self.live_server_url}/flushcheck/visit/") as response:
            self.assertEqual(response.status, 200)
        self.assertEqual(list(Visit.objects.values_list("path", flat=True)), ["/flushcheck/visit/"])


class S4AvailableApps(Recorded, TransactionTestCase):
    available_apps = ["flushcheck", "django.contrib.contenttypes"]

    def test_flush_cascades_beyond_the_available_apps(self):
        Node.objects.create(name="n")
        Permission.objects.create(
            codename="x", name="x", content_type=ContentType.objects.get_for_model(Node))


class S5ResetSequences(Recorded, TransactionTestCase):
    reset_sequences = True

    def test_sequences_start_again(self):
        self.assertEqual(Node.objects.create(name="first").pk, 1)


class S1SerializedRollback(Recorded, TransactionTestCase):
    serialized_rollback = True

    def test_rows_and_a_serialized_rollback(self):
        Node.objects.create(name="n")
        self.assertTrue(ContentType.objects.exists())
