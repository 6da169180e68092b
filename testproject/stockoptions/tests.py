"""Tests whose output shows what Django's stock options do under schemaiso's runner:
``--reverse`` (the order of a class's tests, in a worker and in the main process),
``--buffer`` (what a passing and a failing test print) and ``--debug-sql`` (the SQL
of a failing test). test_e2e's test_stock_options_keep_working runs them by label,
with and without those options.

The failing tests are skipped unless TESTPROJECT_RUN_FAILING=1.
"""

import os
import unittest

from django.db import connection
from django.test import TestCase, tag

deliberate_failure = unittest.skipUnless(
    os.environ.get("TESTPROJECT_RUN_FAILING") == "1",
    "set TESTPROJECT_RUN_FAILING=1 to run the deliberate failures",
)


def select(marker):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s", [marker])
        return cursor.fetchone()[0]


class Ordered(TestCase):
    """Four tests in a worker; -v 2 shows the order they ran in."""

    def test_1(self):
        pass

    def test_2(self):
        pass

    def test_3(self):
        pass

    def test_4(self):
        pass


class Printing(TestCase):
    """In a worker."""

    def test_prints_and_passes(self):
        print("stockoptions: printed by a passing test")
        self.assertEqual(select("stockoptions-passing-sql"), "stockoptions-passing-sql")

    @deliberate_failure
    def test_prints_and_fails(self):
        print("stockoptions: printed by a failing test")
        self.fail("on purpose")


@tag("serial")
class SerialPrinting(TestCase):
    """After the parallel phase, in the main process: where Django's --debug-sql can
    show a test's SQL (a worker's is logged in the worker)."""

    def test_1_prints_and_passes(self):
        print("stockoptions: printed by a passing serial test")

    def test_2_passes(self):
        pass

    @deliberate_failure
    def test_3_prints_and_fails(self):
        print("stockoptions: printed by a failing serial test")
        select("stockoptions-failing-sql")
        self.fail("on purpose")
