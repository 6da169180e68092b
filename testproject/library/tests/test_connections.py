"""Every connection this process opens works in the same schema: threads, reconnects, pools."""

import threading

from django.db import connection, connections
from django.test import TransactionTestCase


def current_schema(alias="default"):
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


class ConnectionSchemaTests(TransactionTestCase):
    def test_a_new_thread_connects_to_the_same_schema(self):
        mine = current_schema()
        seen = []

        def work():
            try:
                seen.append(current_schema())
            finally:
                connections.close_all()

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        self.assertEqual(seen, [mine])

    def test_a_reconnect_after_close_lands_in_the_same_schema(self):
        mine = current_schema()
        connection.close()
        self.assertEqual(current_schema(), mine)

    def test_a_search_path_changed_by_a_test_does_not_outlive_its_connection(self):
        mine = current_schema()
        # With OPTIONS["pool"], close() hands the connection back to the pool, which
        # gives out its connections in turn: change every one of them.
        pool = getattr(connection, "pool", None)
        for _ in range(pool.max_size if pool else 1):
            with connection.cursor() as cursor:
                cursor.execute("SET search_path TO pg_catalog")
            connection.close()
        self.assertEqual(current_schema(), mine)
