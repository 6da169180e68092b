"""Every worker sees all of the wide tables in its own schema, and only its own rows.

Eight classes so that ``--parallel 8`` hands each worker one; the serial class
makes the main process clone a schema of its own too.
"""

import os

from django.db import connection
from django.test import TestCase, tag

TABLES = int(os.environ.get("TESTPROJECT_WIDE_TABLES", "0"))


class WideTablesMixin:
    def test_all_tables_are_in_this_workers_schema(self):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_schema(), count(*) FROM pg_class "
                "WHERE relnamespace = current_schema()::regnamespace "
                "AND relkind = 'r' AND relname LIKE 'wide\\_t%%'"
            )
            schema, count = cursor.fetchone()
        self.assertNotIn("template", schema)
        self.assertEqual(count, TABLES)

    def test_rows_and_foreign_keys_stay_in_this_schema(self):
        last = TABLES - 1
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO wide_t{last - 1} (code, n) VALUES ('x', 1) RETURNING id")
            (parent,) = cursor.fetchone()
            cursor.execute(
                f"INSERT INTO wide_t{last} (code, n, parent_id) VALUES ('x', 1, %s)", [parent]
            )
            cursor.execute(f"SELECT count(*) FROM wide_t{last}")
            self.assertEqual(cursor.fetchone()[0], 1)


for number in range(1, 9):
    name = f"WideTests{number}"
    globals()[name] = type(name, (WideTablesMixin, TestCase), {"__module__": __name__})


@tag("serial")
class WideSerialTests(WideTablesMixin, TestCase):
    pass
