"""The marker: the schema comment that proves a schema is schemaiso's.

Every schema schemaiso creates carries one. It names the schema's role, the run
that made it, that run's host and main pid, and role-specific facts (a template's
fingerprint, a spare's template, a failed test's mark). Cleanup drops, and setup
reuses, only schemas whose marker proves them ours, so nothing outside our own
schemas is ever touched. This module alone reads and writes it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from .naming import quote_ident, quote_literal
from .run_identity import run_pid

#: Every marker comment starts with this, so a plain ``LIKE`` finds our schemas.
MARKER_PREFIX = "schemaiso:"


def marker(role: str, run_id: str, **extra: Any) -> str:
    """The comment that proves a schema is ours, with what cleanup needs to know."""
    payload = {
        "role": role,
        "run": run_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "created": int(time.time()),
        **extra,
    }
    return MARKER_PREFIX + json.dumps(payload, sort_keys=True)


def parse_marker(comment: str | None) -> dict[str, Any] | None:
    """The marker's payload, or ``None`` when the comment is not ours."""
    if not comment or not comment.startswith(MARKER_PREFIX):
        return None
    try:
        payload = json.loads(comment[len(MARKER_PREFIX) :])
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def run_marker(role: str, run_id: str, **extra: Any) -> str:
    """A marker naming this run's main process (``run_pid``), which outlives workers."""
    return marker(role, run_id, pid=run_pid(), **extra)


def set_marker_sql(schema: str, comment: str) -> str:
    """The statement that (re)writes ``schema``'s marker."""
    return f"COMMENT ON SCHEMA {quote_ident(schema)} IS {quote_literal(comment)}"


def create_marked_schema(cursor: Any, schema: str, role: str, run: str, **extra: Any) -> None:
    """Create ``schema`` with the marker that proves it ours, in one round trip."""
    cursor.execute(
        f"CREATE SCHEMA {quote_ident(schema)}; "
        + set_marker_sql(schema, run_marker(role, run, **extra))
    )


def schema_comment(cursor: Any, schema: str) -> tuple[Any, ...] | None:
    """The schema's comment (our marker, if ours) as a one-column row, or None
    when the schema does not exist: "exists" and "is ours" in one query."""
    cursor.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
        [schema],
    )
    row: tuple[Any, ...] | None = cursor.fetchone()
    return row


def marker_of(cursor: Any, schema: str) -> dict[str, Any] | None:
    """The marker of ``schema``; None when it does not exist or is not ours."""
    row = schema_comment(cursor, schema)
    return parse_marker(row[0]) if row is not None else None


def marked_schemas(conn: Any, like: str = "%") -> dict[str, dict[str, Any]]:
    """Schemas whose names match ``like`` and whose comment is our marker."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace "
            "WHERE nspname LIKE %s ORDER BY nspname",
            [like],
        )
        rows = cursor.fetchall()
    found = {}
    for name, comment in rows:
        payload = parse_marker(comment)
        if payload is not None:
            found[name] = payload
    return found


def mark_failed(cursor: Any, schema: str) -> None:
    """Add ``failed`` to ``schema``'s marker (``--keep-failed-schemas``); a schema
    that is not ours, or already marked, is left as it is."""
    payload = marker_of(cursor, schema)
    if payload is None or payload.get("failed"):
        return
    role, run = payload.pop("role"), payload.pop("run")
    cursor.execute(set_marker_sql(schema, marker(role, run, **{**payload, "failed": True})))


def schema_exists(cursor: Any, schema: str) -> bool:
    return schema_comment(cursor, schema) is not None
