"""The fast flush at Django's seams: ``sql_flush``, ``execute_sql_flush`` and the
introspection ``sql_flush`` uses.

Django's ``flush`` (each ``TransactionTestCase`` ends with one) asks
``introspection.django_table_names(only_existing=True)`` for the model tables
that exist, ``ops.sql_flush`` for one ``TRUNCATE`` of all of them, runs it with
``ops.execute_sql_flush``, then emits ``post_migrate`` when the list of
statements was not empty. On a connection working in a worker's (or the main
process's) schema:

- ``django_table_names`` checks each model table by name, as ``TRUNCATE "name"``
  resolves it on the ``search_path``, instead of listing every visible relation
  of the database with its comment (``pg_table_is_visible`` over all of
  ``pg_class``, where every worker's schema lies). Same list, same order.
- ``sql_flush`` returns Django's own statement, unchanged as text (``sqlflush``
  prints it, tests compare it, its presence decides ``post_migrate``), which
  remembers the tables and options it was made for (:class:`FlushStatement`).
  It runs no SQL: a ``SimpleTestCase`` may call it.
- ``execute_sql_flush`` given that statement empties only the tables that hold
  rows (flush/plan.py says how), in the same transaction Django would use; when
  the plan cannot promise Django's outcome it runs Django's statement.

Flushes that reset sequences (``manage.py flush``, not a test's teardown) keep
Django's statement: ``RESTART IDENTITY`` resets every table's sequences.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, transaction

from ..conf import get_config
from ..flush.catalog import read_catalog
from ..flush.dirty import members_with_rows
from ..flush.plan import members, statements
from .state import get_state

logger = logging.getLogger("schemaiso")

#: The roles whose connections work in a schema of their own (never the template).
_FLUSHED_ROLES = ("main", "worker")


def flushed_schema(connection: Any) -> str | None:
    """The schema a fast flush of ``connection`` empties, or None for Django's flush."""
    state = get_state(connection.settings_dict)
    if state is None or state["role"] not in _FLUSHED_ROLES or not state["schema"]:
        return None
    return state["schema"] if get_config().fast_flush else None


class FlushStatement(str):
    """Django's flush statement, as text, remembering what it was made for."""

    tables: tuple[str, ...]
    allow_cascade: bool

    def __new__(cls, sql: str, tables: tuple[str, ...], allow_cascade: bool) -> FlushStatement:
        made = super().__new__(cls, sql)
        made.tables = tables
        made.allow_cascade = allow_cascade
        return made


class FastFlushOperationsMixin:
    """Mixed into an isolated connection's ``ops`` (see the module docstring)."""

    connection: Any

    def sql_flush(self, style: Any, tables: Any, *, reset_sequences: bool = False,
                  allow_cascade: bool = False) -> list[str]:
        sql_list: list[str] = super().sql_flush(  # type: ignore[misc]
            style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        if reset_sequences or len(sql_list) != 1 or flushed_schema(self.connection) is None:
            return sql_list
        return [FlushStatement(sql_list[0], tuple(tables), allow_cascade)]

    def execute_sql_flush(self, sql_list: list[str]) -> None:
        schema = flushed_schema(self.connection)
        if schema is None or len(sql_list) != 1 or not isinstance(sql_list[0], FlushStatement):
            super().execute_sql_flush(sql_list)  # type: ignore[misc]
            return
        request = sql_list[0]
        connection = self.connection
        with transaction.atomic(using=connection.alias,
                                savepoint=connection.features.can_rollback_ddl):
            with connection.cursor() as cursor:
                catalog = read_catalog(cursor, schema, list(request.tables))
                found = members(catalog, request.tables, cascade=request.allow_cascade)
                if isinstance(found, str):
                    self._djangos_flush(cursor, request, schema, found)
                    return
                planned = statements(found, members_with_rows(cursor, found)).sql
                if not planned:
                    return
                try:
                    with transaction.atomic(using=connection.alias):  # a savepoint
                        for sql in planned:
                            cursor.execute(sql)
                except DatabaseError as exc:
                    # Nothing the plan foresaw; Django's statement fails, or not, as it would.
                    self._djangos_flush(cursor, request, schema, f"{type(exc).__name__}: {exc}")

    def _djangos_flush(self, cursor: Any, request: FlushStatement, schema: str, why: str) -> None:
        logger.debug("schemaiso: alias '%s': Django's flush of schema '%s': %s.",
                     self.connection.alias, schema, why)
        cursor.execute(str(request))


class WorkerTablesIntrospectionMixin:
    """Mixed into an isolated connection's ``introspection``: the model tables that
    exist, found by name (see the module docstring)."""

    connection: Any
    ignored_tables: list[str]

    def django_table_names(self, only_existing: bool = False, include_views: bool = True) -> list[str]:
        if not only_existing or flushed_schema(self.connection) is None:
            return super().django_table_names(  # type: ignore[misc,no-any-return]
                only_existing=only_existing, include_views=include_views)
        tables: list[str] = super().django_table_names(  # type: ignore[misc]
            only_existing=False, include_views=include_views)
        # What get_table_list lists: relations of these kinds, visible on the
        # search_path, outside pg_catalog and pg_toast; table_names without views
        # keeps its 't' rows (not views, not partitions).
        kinds = "('f', 'm', 'p', 'r', 'v')" if include_views else "('f', 'p', 'r')"
        partitions = "" if include_views else " AND NOT c.relispartition"
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT n.name FROM pg_catalog.unnest(%s::text[]) n(name) "
                "JOIN pg_catalog.pg_class c "
                "ON c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident(n.name)) "
                "JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace "
                "WHERE s.nspname NOT IN ('pg_catalog', 'pg_toast') "
                f"AND c.relkind IN {kinds}{partitions}",
                [[self.identifier_converter(t) for t in tables]],  # type: ignore[attr-defined]
            )
            existing = {row[0] for row in cursor.fetchall()} - set(self.ignored_tables)
        return [t for t in tables if self.identifier_converter(t) in existing]  # type: ignore[attr-defined]
