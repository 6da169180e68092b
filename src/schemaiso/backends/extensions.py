"""Extensions live in the shared schema, for every schema of the test database.

An extension belongs to a whole database, not to a schema: the template and every
worker's schema use the same ``hstore`` from the shared schema. So ``CREATE
EXTENSION`` is sent there (during the template's ``migrate`` and in tests alike),
and a test that migrates an app back to before its extension (``migrate app zero``)
must not drop it from under the template and the other workers: that ``DROP
EXTENSION`` does nothing, and migrating forward again finds the extension in place.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from ..naming import quote_ident
from .state import get_state

logger = logging.getLogger("schemaiso")

_CREATE_EXTENSION = re.compile(
    r"^\s*CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:\"[^\"]+\"|[^\s;]+)(?P<rest>[^;]*);?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_DROP_EXTENSION = re.compile(r"^\s*DROP\s+EXTENSION\s[^;]*;?\s*$", re.IGNORECASE | re.DOTALL)

#: An advisory lock (in the test database) that serializes CREATE EXTENSION.
EXTENSION_LOCK = 0x7369_0007


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


def extensions_into(shared: str) -> Callable[..., Any]:
    """An execute wrapper for the template's ``migrate``: extensions into ``shared``."""

    def wrapper(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any) -> Any:
        if isinstance(sql, str):
            sql = into_shared_schema(sql, shared, params, many)
        return execute(sql, params, many, context)

    return wrapper


def shared_extensions_in_tests(settings_dict: dict[str, Any]) -> Callable[..., Any]:
    """An execute wrapper for an alias's every connection: while its tests run
    (in the main or a worker schema), extensions are created in the shared schema
    and never dropped (see the module docstring)."""

    def wrapper(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any) -> Any:
        state = get_state(settings_dict)
        if isinstance(sql, str) and state is not None and state["role"] in ("main", "worker"):
            if _DROP_EXTENSION.match(sql):
                logger.info(
                    "schemaiso: alias '%s': not running %r in schema '%s': extensions are "
                    "shared by the template and every worker's schema.",
                    state["alias"], sql.strip(), state["schema"],
                )
                return None
            sql = into_shared_schema(sql, state["shared"], params, many)
        return execute(sql, params, many, context)

    return wrapper
