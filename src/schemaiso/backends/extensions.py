"""Extensions live in the shared schema, for every schema of the test database.

An extension belongs to a whole database, not to a schema: the template and every
worker's schema use the same ``hstore`` from the shared schema. So ``CREATE
EXTENSION`` is sent there (during the template's ``migrate`` and in tests alike),
and a test that migrates an app back to before its extension (``migrate app zero``)
must not drop it from under the template and the other workers: that ``DROP
EXTENSION`` does nothing, and migrating forward again finds the extension in place.

The statement is changed at the last step before the driver, in the cursor
wrappers the isolated connection makes (:class:`SharedExtensionsCursorMixin`), and
not in ``connection.execute_wrappers``: that list is the project's, and Django's
own tests check that it is empty. A project's execute wrappers and the query log
(``connection.queries``, ``CaptureQueriesContext``, ``--debug-sql``) see the
statement the code issued, as under the stock runner
(:class:`IssuedQueryOperationsMixin`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ..naming import quote_ident
from .state import SchemaState, get_state

logger = logging.getLogger("schemaiso")

_CREATE_EXTENSION = re.compile(
    r"^\s*CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:\"[^\"]+\"|[^\s;]+)(?P<rest>[^;]*);?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_DROP_EXTENSION = re.compile(r"^\s*DROP\s+EXTENSION\s[^;]*;?\s*$", re.IGNORECASE | re.DOTALL)

#: An advisory lock (in the test database) that serializes CREATE EXTENSION.
EXTENSION_LOCK = 0x7369_0007

#: The attribute of a connection wrapper that holds ``(driver cursor, statement as
#: issued)`` while the statement sent last on that cursor was a changed one.
_ISSUED = "_schemaiso_issued"


def into_shared_schema(sql: str, shared: str, params: Any, many: bool) -> str:
    """``sql`` with a ``CREATE EXTENSION`` sent to ``shared``; other SQL unchanged."""
    match = _CREATE_EXTENSION.match(sql)
    if not match:
        return sql
    if not re.search(r"\bSCHEMA\b", match["rest"], re.IGNORECASE):
        # Without SCHEMA it would land in the first schema on the search_path: the
        # template (copied into every worker, or broken when the template goes) or
        # a worker's schema (invisible to the others).
        sql = sql.rstrip().rstrip(";") + " SCHEMA " + quote_ident(shared)
    if not params and not many:
        # Two runs migrating at once both create the extension: IF NOT EXISTS
        # does not stop the second insert into pg_extension ("duplicate key").
        # One statement string is one transaction even in autocommit, so the
        # lock lasts until the extension is committed.
        sql = f"SELECT pg_advisory_xact_lock({EXTENSION_LOCK}, 0); {sql}"
    return sql


#: The roles whose connections send extension DDL to the shared schema.
_ROLES = ("template", "main", "worker")


def statement_to_send(sql: Any, state: SchemaState | None, params: Any, many: bool) -> Any:
    """What to send for ``sql`` on a connection in ``state``: the same statement,
    a ``CREATE EXTENSION`` into the shared schema, or None for a ``DROP
    EXTENSION`` while tests run (the module docstring says why)."""
    if not isinstance(sql, str) or state is None or state["role"] not in _ROLES:
        return sql
    if state["role"] != "template" and _DROP_EXTENSION.match(sql):
        logger.info(
            "schemaiso: alias '%s': not running %r in schema '%s': extensions are "
            "shared by the template and every worker's schema.",
            state["alias"], sql.strip(), state["schema"],
        )
        return None
    return into_shared_schema(sql, state["shared"], params, many)


class SharedExtensionsCursorMixin:
    """Mixed into the cursor wrappers of an isolated connection (``make_cursor``,
    ``make_debug_cursor``): extension DDL goes to the shared schema. It sits under
    the execute wrappers, so they see the statement as issued."""

    db: Any
    cursor: Any

    def _execute(self, sql: Any, params: Any, *ignored_wrapper_args: Any) -> Any:
        sent = statement_to_send(sql, get_state(self.db.settings_dict), params, False)
        setattr(self.db, _ISSUED, None if sent is sql else (self.cursor, sql))
        if sent is None:
            return None
        return super()._execute(sent, params, *ignored_wrapper_args)  # type: ignore[misc]

    def _executemany(self, sql: Any, param_list: Any, *ignored_wrapper_args: Any) -> Any:
        sent = statement_to_send(sql, get_state(self.db.settings_dict), param_list, True)
        if sent is None:
            return None
        return super()._executemany(sent, param_list, *ignored_wrapper_args)  # type: ignore[misc]


class IssuedQueryOperationsMixin:
    """Mixed into an isolated connection's ``ops``: ``last_executed_query`` (what
    Django's query log records) gives the statement as issued when the cursor
    sent a changed one, or none at all (psycopg then knows no query, or the one
    before)."""

    connection: Any

    def last_executed_query(self, cursor: Any, sql: Any, params: Any) -> Any:
        issued = getattr(self.connection, _ISSUED, None)
        if issued is not None and issued[0] is cursor:
            if not params:
                return issued[1]
            try:
                return self.compose_sql(issued[1], params)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001  (the log falls back to the raw statement)
                return issued[1]
        return super().last_executed_query(cursor, sql, params)  # type: ignore[misc]


def installed_extensions(cursor: Any) -> list[tuple[str, str, bool]]:
    """Every extension in the database ``cursor`` is on: its name, its schema,
    and whether it can move to another schema."""
    cursor.execute(
        "SELECT e.extname, n.nspname, e.extrelocatable FROM pg_extension e "
        "JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname"
    )
    return [(name, schema, bool(relocatable)) for name, schema, relocatable in cursor.fetchall()]
