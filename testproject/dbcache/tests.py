"""Django's database cache works in every worker: ``createcachetable`` made its
table in the template (on a build), and each worker's schema has a copy of it.

Two classes so that ``--parallel 2`` hands each worker one.
"""

import os

from django.core.cache import cache
from django.db import connection
from django.test import TestCase, TransactionTestCase

TABLE = os.environ.get("TESTPROJECT_DB_CACHE", "")


class CacheTableMixin:
    def test_the_cache_table_is_in_this_workers_schema(self):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_schema(), to_regclass(current_schema() || '.' || %s) IS NOT NULL",
                [TABLE],
            )
            schema, present = cursor.fetchone()
        self.assertNotIn("template", schema)
        self.assertTrue(present, f"no cache table {TABLE!r} in schema {schema!r}")

    def test_values_round_trip_through_the_cache(self):
        cache.set("greeting", f"hello from {type(self).__name__}")
        self.assertEqual(cache.get("greeting"), f"hello from {type(self).__name__}")


class CacheInTestCaseTests(CacheTableMixin, TestCase):
    pass


class CacheInTransactionTestCaseTests(CacheTableMixin, TransactionTestCase):
    pass
