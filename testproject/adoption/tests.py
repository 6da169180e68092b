"""What real projects' tests do that a schema per worker must survive.

- Tests that run ``migrate`` or ``flush`` themselves act on their worker's schema
  only: the isolation app's tables go and come back here while other workers'
  isolation tests use theirs, and the template keeps its tables and rows.
- Connections Django does not open (``psycopg.connect``, a ``psql`` subprocess)
  find the worker's schema through ``schemaiso.libpq_options()``.
- Django's ``SerializeMixin`` still serializes classes across worker processes.

When ADOPTION_LOG names a file, tests append "<event> <test id> <pid> <time>
<schema>" lines to it for the end-to-end test to check.
"""

import os
import shutil
import subprocess
import time

from django.core.management import call_command
from django.db import connection
from django.test import TestCase
from django.test.testcases import SerializeMixin
from isolation.models import Slot
from testproject.testing import TransactionTestCase

import schemaiso


def log(test, event):
    path = os.environ.get("ADOPTION_LOG")
    if path:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
        with open(path, "a") as f:
            f.write(f"{event} {test.id()} {os.getpid()} {time.time()} {schema}\n")


def schemas_with_table(table):
    """Every schema of this database that has ``table``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


class MigratingTests(TransactionTestCase):
    """``call_command("migrate")`` inside a test, as migration tests do."""

    def test_migrate_an_app_to_zero_and_back(self):
        log(self, "migrate")
        own = schemaiso.search_path()[0]
        before = schemas_with_table("isolation_slot")
        self.assertIn(own, before)
        call_command("migrate", "isolation", "zero", verbosity=0)
        self.assertEqual(schemas_with_table("isolation_slot"), before - {own})
        call_command("migrate", "isolation", verbosity=0)
        self.assertEqual(schemas_with_table("isolation_slot"), before)
        Slot.objects.create(key="after-migrate", value=1)
        self.assertEqual(Slot.objects.count(), 1)

    def test_migrate_an_app_with_extensions_to_zero_and_back(self):
        log(self, "migrate")
        own = schemaiso.search_path()[0]
        before = schemas_with_table("library_book")
        call_command("migrate", "library", "zero", verbosity=0)
        self.assertEqual(schemas_with_table("library_book"), before - {own})
        # The template and the other workers still use them: they stay.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT extname, extnamespace::regnamespace::text FROM pg_extension "
                "WHERE extname IN ('hstore', 'pg_trgm') ORDER BY 1"
            )
            shared = schemaiso.search_path()[1]
            self.assertEqual(cursor.fetchall(), [("hstore", shared), ("pg_trgm", shared)])
        call_command("migrate", "library", verbosity=0)
        self.assertEqual(schemas_with_table("library_book"), before)

    def test_migrate_with_nothing_to_do(self):
        call_command("migrate", verbosity=0)


class FlushingTests(TransactionTestCase):
    def test_flush_empties_this_schema_only(self):
        log(self, "flush")
        from library.models import Tag

        self.assertTrue(Tag.objects.exists())  # seed rows from library.0002
        call_command("flush", interactive=False, verbosity=0)
        self.assertFalse(Tag.objects.exists())
        template = connection.settings_dict["SCHEMAISO_STATE"]["template"]
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{template}".library_tag')
            self.assertGreater(cursor.fetchone()[0], 0)


class RawConnectionTests(TransactionTestCase):
    """Connections made around Django, given the worker's schema."""

    def setUp(self):
        Slot.objects.create(key="raw", value=42)

    def connect(self, **extra):
        sd = connection.settings_dict
        params = {"dbname": sd["NAME"], "user": sd["USER"], "password": sd["PASSWORD"],
                  "host": sd["HOST"], "port": sd["PORT"]}
        return connection.Database.connect(
            **{k: v for k, v in params.items() if v}, **extra
        )

    def test_raw_connection_with_libpq_options_sees_the_workers_rows(self):
        log(self, "raw")
        raw = self.connect(options=schemaiso.libpq_options())
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT array_to_string(current_schemas(false), ',')")
            self.assertEqual(cursor.fetchone()[0], ",".join(schemaiso.search_path()))
            cursor.execute("SELECT value FROM isolation_slot WHERE key = 'raw'")
            self.assertEqual(cursor.fetchall(), [(42,)])
        finally:
            raw.close()

    def test_raw_connection_without_them_finds_no_tables(self):
        raw = self.connect()
        try:
            cursor = raw.cursor()
            with self.assertRaises(connection.Database.DatabaseError):
                cursor.execute("SELECT value FROM isolation_slot")
        finally:
            raw.close()

    def test_subprocess_with_pgoptions_sees_the_workers_rows(self):
        psql = shutil.which("psql")
        self.assertIsNotNone(psql, "psql must be on PATH")
        sd = connection.settings_dict
        env = {**os.environ, "PGOPTIONS": schemaiso.libpq_options(),
               "PGPASSWORD": sd["PASSWORD"] or ""}
        out = subprocess.run(
            [psql, "-X", "-A", "-t", "-h", sd["HOST"] or "localhost", "-p", str(sd["PORT"] or 5432),
             "-U", sd["USER"], "-d", sd["NAME"],
             "-c", "SELECT value FROM isolation_slot WHERE key = 'raw'"],
            env=env, capture_output=True, text=True, check=True,
        )
        self.assertEqual(out.stdout.strip(), "42")


class SerializedA(SerializeMixin, TestCase):
    """Three classes that share one lock file: never two at once, whichever
    worker runs them."""

    lockfile = __file__

    def test_holds_the_lock(self):
        log(self, "lock-start")
        time.sleep(0.5)
        log(self, "lock-end")


class SerializedB(SerializedA):
    pass


class SerializedC(SerializedA):
    pass
