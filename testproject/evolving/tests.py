"""Every test checks that its schema has exactly the columns the last migrations gave
``evolving_probe`` (``TESTPROJECT_EVOLVING_COLUMNS``), so a worker left with a stale
schema fails. Several classes, so that every worker gets some.

With ``TESTPROJECT_EVOLVING_SLEEP`` each test sleeps first, so that a test can catch
the run mid-way (kill it, prune beside it). With ``TESTPROJECT_EVOLVING_READY`` too (a
directory), a test about to sleep says so there: a file named after its process id.
"""

import os
import time
from pathlib import Path

from django.db import connection
from django.test import TestCase, TransactionTestCase


class ProbeChecks:
    def test_probe_has_the_latest_columns(self):
        if os.environ.get("TESTPROJECT_EVOLVING_READY"):
            Path(os.environ["TESTPROJECT_EVOLVING_READY"], str(os.getpid())).touch()
        time.sleep(float(os.environ.get("TESTPROJECT_EVOLVING_SLEEP", "0")))
        expected = os.environ["TESTPROJECT_EVOLVING_COLUMNS"].split(",")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
            cursor.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'evolving_probe'::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            )
            columns = [row[0] for row in cursor.fetchall()]
        self.assertNotIn("template", schema)
        self.assertEqual(columns, expected, f"schema {schema}")


class ProbeA(ProbeChecks, TestCase):
    pass


class ProbeB(ProbeChecks, TestCase):
    pass


class ProbeC(ProbeChecks, TransactionTestCase):
    pass


class ProbeD(ProbeChecks, TransactionTestCase):
    pass
