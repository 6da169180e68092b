"""Reading what a snapshot holds from a freshly migrated template.

The structure is the clone plan (its DDL already names the target by a
placeholder, and carries the sequence values); the rows are each table's
``COPY ... TO STDOUT`` text, read in one repeatable-read transaction. What a
snapshot cannot hold is refused before anything is written: objects ``migrate``
made outside the template (a collation or type created with an explicit schema,
found by comparing the database before and after ``migrate``), extensions outside
the shared schema, definitions that name the template itself.
"""

from __future__ import annotations

import io
import re
from contextlib import closing
from typing import Any

from ..clone import ClonePlan, read_template
from ..clone.dbapi import rollback
from ..markers import MARKER_PREFIX
from ..naming import quote_ident, quote_literal

#: Objects in a schema that is neither a system schema nor one of schemaiso's
#: (marked) schemas, the shared schema included: what ``migrate`` may have put
#: there, as "kind schema.name". Extension members are not counted.
_OUTSIDE_OBJECTS_SQL = """
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE (nspname = {shared}
           OR coalesce(obj_description(oid, 'pg_namespace'), '') NOT LIKE {marker})
      AND nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\\_toast%%' AND nspname NOT LIKE 'pg\\_temp\\_%%'
),
objects AS (
    SELECT 'pg_class'::regclass AS cat, c.oid, 'relation' AS kind, c.relnamespace AS nsp, c.relname::text AS name
      FROM pg_class c WHERE c.relkind NOT IN ('i', 'I', 't')
       -- a composite type's extension membership is recorded on its pg_type row
       AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                       AND d.objid = c.reltype AND d.deptype = 'e')
    UNION ALL
    SELECT 'pg_type'::regclass, t.oid,
           CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range type'
                          WHEN 'm' THEN 'multirange type' ELSE 'type' END,
           t.typnamespace, t.typname::text FROM pg_type t
     WHERE t.typrelid = 0 AND NOT EXISTS (SELECT FROM pg_type e WHERE e.typarray = t.oid)
    UNION ALL
    SELECT 'pg_proc'::regclass, p.oid, 'function', p.pronamespace,
           p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' FROM pg_proc p
    UNION ALL
    SELECT 'pg_collation'::regclass, o.oid, 'collation', o.collnamespace, o.collname::text FROM pg_collation o
    UNION ALL
    SELECT 'pg_operator'::regclass, o.oid, 'operator', o.oprnamespace, o.oprname::text FROM pg_operator o
    UNION ALL
    SELECT 'pg_ts_config'::regclass, o.oid, 'text search configuration', o.cfgnamespace, o.cfgname::text FROM pg_ts_config o
    UNION ALL
    SELECT 'pg_ts_dict'::regclass, o.oid, 'text search dictionary', o.dictnamespace, o.dictname::text FROM pg_ts_dict o
    UNION ALL
    SELECT 'pg_conversion'::regclass, o.oid, 'conversion', o.connamespace, o.conname::text FROM pg_conversion o
)
SELECT o.kind, ns.nspname::text, o.name
  FROM objects o JOIN ns ON ns.oid = o.nsp
 WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = o.cat AND d.objid = o.oid
                   AND d.deptype = 'e')
UNION ALL
SELECT 'schema', nspname::text, '' FROM ns WHERE nspname <> {shared}
"""

#: What a snapshot can carry from the shared schema: the kinds of object the clone
#: engine recreates from the catalog (relations there are refused by every run).
CAPTURED_KINDS = frozenset({"enum", "domain", "function", "collation"})

Outside = tuple[str, str, str]  # (kind, schema, name)


#: How COPY's text spells values, the same when a snapshot is written and restored
#: whatever the servers' and sessions' defaults (a day-month DateStyle would swap
#: days and months; fewer float digits would round).
TEXT_FORMAT_SETTINGS = (
    "SET LOCAL client_encoding = 'UTF8'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL TimeZone = 'UTC'; "
    "SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex';"
)


def outside_objects(conn: Any, shared: str) -> set[Outside]:
    """What lives outside schemaiso's schemas now (see ``_OUTSIDE_OBJECTS_SQL``)."""
    sql = _OUTSIDE_OBJECTS_SQL.format(shared=quote_literal(shared),
                                      marker=quote_literal(MARKER_PREFIX + "%"))
    with closing(conn.cursor()) as cur:
        cur.execute(sql)
        return {(str(kind), str(schema), str(name)) for kind, schema, name in cur.fetchall()}


def made_by_migrate(now: set[Outside], before: set[Outside], shared: str) -> set[Outside]:
    """The objects outside the template that ``migrate`` made: everything in the
    shared schema that is not an extension's (it holds extensions and nothing else,
    so the rest came from migrations, maybe an earlier run's), and whatever appeared
    elsewhere while it ran."""
    return {item for item in now if item[1] == shared or item not in before}


def describe(item: Outside) -> str:
    """``kind schema.name`` as messages show it (the schema quoted only when it must be)."""
    kind, schema, name = item
    shown = schema if re.fullmatch(r"[a-z_][a-z0-9_$]*", schema) else quote_ident(schema)
    return f"{kind} {shown}" + (f".{name}" if name else "")


def extensions(conn: Any) -> list[list[str]]:
    """Every extension of the database: [name, version, schema]."""
    with closing(conn.cursor()) as cur:
        cur.execute(
            "SELECT e.extname, e.extversion, n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname"
        )
        return [[str(name), str(version), str(schema)] for name, version, schema in cur.fetchall()]


def refusal(plan: ClonePlan, found_outside: set[Outside], exts: list[list[str]]) -> str | None:
    """Why this template cannot be a snapshot, or None."""
    uncaptured = sorted(describe(item) for item in found_outside
                        if item[1] != plan.shared or item[0] not in CAPTURED_KINDS)
    if uncaptured:
        shown = ", ".join(uncaptured[:5]) + (", ..." if len(uncaptured) > 5 else "")
        return (f"migrate created {len(uncaptured)} object(s) outside the template that a "
                f"snapshot cannot hold (only enums, domains, functions and collations in the shared "
                f"schema '{plan.shared}'): {shown}")
    elsewhere = [name for name, _version, schema in exts
                 if schema not in (plan.shared, "pg_catalog")]
    if elsewhere:
        return (f"extension(s) {', '.join(elsewhere)} live outside the shared schema "
                f"'{plan.shared}'")
    if plan.warnings:
        return f"the template's definitions name the template itself ({plan.warnings[0]})"
    return None


def shared_objects_plan(conn: Any, found_outside: set[Outside], shared: str) -> ClonePlan | None:
    """The clone plan of what ``migrate`` put into the shared schema (read from it,
    extensions' members left out), or None when it put nothing there."""
    if not any(item[1] == shared for item in found_outside):
        return None
    return read_template(conn, shared, shared)


def rows(conn: Any, plan: ClonePlan) -> list[tuple[int, bytes]]:
    """Each table's rows as COPY text, by the plan step that copies them."""
    found: list[tuple[int, bytes]] = []
    with closing(conn.cursor()) as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                    "SET LOCAL row_security = off; " + TEXT_FORMAT_SETTINGS)
        try:
            for step, table, columns in plan.row_copies:
                found.append((step, copy_out(cur, copy_sql(plan.template, table, columns, "TO STDOUT"))))
            cur.execute("COMMIT")
        except BaseException:
            rollback(cur)
            raise
    return found


def copy_sql(schema: str, table: str, columns: tuple[str, ...], direction: str) -> str:
    """``COPY schema.table (columns) <direction>`` for one of a plan's row copies
    (``table`` and ``columns`` are quoted already; a table without columns lists none)."""
    listed = f" ({', '.join(columns)})" if columns else ""
    return f"COPY {quote_ident(schema)}.{table}{listed} {direction}"


def copy_out(cur: Any, sql: str) -> bytes:
    """A ``COPY ... TO STDOUT``'s data, with psycopg 3 or psycopg2."""
    if hasattr(cur, "copy"):
        data = bytearray()
        with cur.copy(sql) as copy:
            for chunk in copy:
                data += chunk
        return bytes(data)
    out = io.BytesIO()
    cur.copy_expert(sql, out)
    return out.getvalue()


def copy_in(cur: Any, sql: str, data: bytes) -> None:
    """A ``COPY ... FROM STDIN`` of ``data``, with psycopg 3 or psycopg2."""
    if hasattr(cur, "copy"):
        with cur.copy(sql) as copy:
            copy.write(data)
        return
    cur.copy_expert(sql, io.BytesIO(data))
