"""A normalized description of one schema's catalog, to prove clones are faithful.

Comparing the description of a template with that of a clone must give no
difference, while a clone that still points at the template must.  So every
definition is deparsed with only the described schema (then pg_catalog) on
the search path: the schema's own objects print unqualified and any other
schema's objects, the template's included, print qualified.  The only schema
names removed are those PostgreSQL prints whatever the path (index, trigger
and function headers, object identities), each at its known position.

This module is the verifier of the clone engine, so it shares none of the
engine's catalog queries or definition rewriting (only quoting helpers and
the search_path parser).  The queries are in ``describe_queries``; this module
turns their rows into the description and compares two descriptions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any

from schemaiso.clone import Connection, Cursor, split_search_path
from schemaiso.naming import quote_ident, quote_literal

from . import describe_queries as q

__all__ = ["describe_schema", "diff_descriptions"]

_SELF = "@"  # stands for the described schema in normalized text
_DATA_CHUNK = 100  # tables checksummed per query, to keep each statement's locks modest

_Rows = Sequence[Sequence[Any]]


def describe_schema(conn: Connection, schema: str) -> dict[str, object]:
    """A normalized, schema-name-independent description of ``schema``.

    Describing a template and a faithful clone gives equal results; any
    reference from the clone to another schema shows as a difference.
    """
    with closing(conn.cursor()) as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            description = _describe(cur, schema)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    return description


def diff_descriptions(a: Mapping[str, object], b: Mapping[str, object]) -> list[str]:
    """Human-readable differences between two descriptions, empty when identical."""
    return list(_diff(a, b, ""))


def _diff(a: object, b: object, path: str) -> Iterator[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(a.keys() | b.keys(), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in b:
                yield f"{where}: only in the first ({a[key]!r})"
            elif key not in a:
                yield f"{where}: only in the second ({b[key]!r})"
            else:
                yield from _diff(a[key], b[key], where)
    elif a != b:
        yield f"{path}: {a!r} != {b!r}"


def _describe(cur: Cursor, schema: str) -> dict[str, object]:
    """Read every section inside the caller's snapshot, with only ``schema`` (then pg_catalog) on the path."""
    cur.execute(
        "SELECT oid::int8, quote_ident(nspname) FROM pg_namespace WHERE nspname = %s", (schema,)
    )
    found = cur.fetchall()
    if not found:
        raise LookupError(f'schema "{schema}" does not exist')
    nsp, quoted = int(found[0][0]), str(found[0][1])
    cur.execute(f"SET LOCAL search_path TO {quote_ident(schema)}, pg_catalog")

    def rows(sql: str) -> _Rows:
        cur.execute(sql.replace(q.NSP, str(nsp)))
        return cur.fetchall()

    relations = rows(q.RELATIONS_SQL)
    return {
        "relations": _relations(relations),
        "columns": _columns(rows(q.COLUMNS_SQL)),
        "sequences": _sequences(cur, quoted, rows(q.SEQUENCES_SQL)),
        "constraints": _constraints(rows(q.CONSTRAINTS_SQL)),
        "indexes": _indexes(rows(q.INDEXES_SQL), quoted),
        "functions": _functions(rows(q.FUNCTIONS_SQL), schema, quoted),
        "triggers": _triggers(rows(q.TRIGGERS_SQL), quoted),
        "policies": _policies(rows(q.POLICIES_SQL)),
        "rules": {
            f"{table}.{name}": {"definition": definition, "enabled": enabled}
            for table, name, definition, enabled in rows(q.RULES_SQL)
        },
        "types": _types(rows(q.TYPES_SQL)),
        # As text: drivers decode jsonb differently (Django's connections leave it a string).
        "collations": {name: json.loads(settings) for name, settings in rows(q.COLLATIONS_SQL)},
        "comments": {obj: text for obj, text in rows(q.COMMENTS_SQL)},
        "dependencies": _dependencies(rows(q.DEPENDENCIES_SQL), quoted),
        "data": _data(cur, quoted, relations),
    }


def _relations(rows: _Rows) -> dict[str, object]:
    relations: dict[str, object] = {}
    for row in rows:
        name, kind, persistence, options, toast_options, replident, definition, populated = row[:8]
        partition_key, is_partition, bound, parents, row_security, force_row_security = row[8:]
        relations[name] = {
            "kind": kind,
            "persistence": persistence,
            "options": sorted(options),
            "toast_options": sorted(toast_options),
            "replica_identity": replident,
            "definition": definition,
            "populated": populated,
            "partition_key": partition_key,
            "partition_of": parents[0] if is_partition else None,
            "partition_bound": bound,
            "inherits": [] if is_partition else list(parents),
            "row_security": row_security,
            "force_row_security": force_row_security,
        }
    return relations


def _columns(rows: _Rows) -> dict[str, dict[str, object]]:
    """Columns by relation and name; position is the order among live columns, not attnum."""
    relations: dict[str, dict[str, object]] = {}
    for (
        rel,
        name,
        typ,
        collation,
        not_null,
        default,
        identity,
        generated,
        storage,
        compression,
        stats,
        is_local,
        inherit_count,
    ) in rows:
        columns = relations.setdefault(rel, {})
        columns[name] = {
            "position": len(columns),
            "type": typ,
            "collation": collation,
            "not_null": not_null,
            "default": default,
            "identity": identity,
            "generated": generated,
            "storage": storage,
            "compression": compression,
            "statistics": stats,
            "local": is_local,
            "inherit_count": inherit_count,
        }
    return relations


def _sequences(cur: Cursor, quoted: str, rows: _Rows) -> dict[str, object]:
    values: dict[str, tuple[int, bool]] = {}
    for start in range(0, len(rows), _DATA_CHUNK):
        chunk = rows[start : start + _DATA_CHUNK]
        cur.execute(
            "\nUNION ALL ".join(
                f"SELECT {quote_literal(row[0])}::text, last_value, is_called FROM {quoted}.{row[1]}"
                for row in chunk
            )
        )
        values.update((name, (last, called)) for name, last, called in cur.fetchall())
    sequences: dict[str, object] = {}
    for row in rows:
        name, _, persistence, typ, start_, increment, minimum, maximum, cache, cycle = row[:10]
        deptype, owner_is_self, owner_table, owner_column = row[10:]
        owner = (
            None
            if deptype is None
            else [deptype, "self" if owner_is_self else "other", owner_table, owner_column]
        )
        last, called = values[name]
        sequences[name] = {
            "persistence": persistence,
            "type": typ,
            "start": start_,
            "increment": increment,
            "min": minimum,
            "max": maximum,
            "cache": cache,
            "cycle": cycle,
            "owner": owner,
            "last_value": last,
            "is_called": called,
        }
    return sequences


def _constraints(rows: _Rows) -> dict[str, object]:
    constraints: dict[str, object] = {}
    for row in rows:
        owner, name, kind, definition, deferrable, deferred, validated, options = row[:8]
        is_local, inherit_count, no_inherit, parent = row[8:]
        constraints[f"{owner}.{name}"] = {
            "type": kind,
            "definition": definition,
            "deferrable": deferrable,
            "deferred": deferred,
            "validated": validated,
            "index_options": sorted(options),
            "local": is_local,
            "inherit_count": inherit_count,
            # Only CHECK constraints use it; on an index-backed one it merely records whether
            # a partition's constraint was cascaded from its parent's or attached to it.
            "no_inherit": no_inherit if kind == "c" else None,
            "parent": parent,
        }
    return constraints


def _indexes(rows: _Rows, quoted: str) -> dict[str, object]:
    header = re.compile(
        r'^(CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")*"|\S+) ON (?:ONLY )?)'
        + re.escape(quoted)
        + r"\."
    )
    return {
        name: {
            "table": table,
            "definition": header.sub(lambda m: m.group(1) + _SELF + ".", definition, count=1),
            "unique": unique,
            "primary": primary,
            "exclusion": exclusion,
            "immediate": immediate,
            "clustered": clustered,
            "valid": valid,
            "options": sorted(options),
            "attached_to": parent,
        }
        for (
            name,
            table,
            definition,
            unique,
            primary,
            exclusion,
            immediate,
            clustered,
            valid,
            options,
            parent,
        ) in rows
    }


def _functions(rows: _Rows, schema: str, quoted: str) -> dict[str, object]:
    return {
        signature: {
            "kind": kind,
            "definition": _function_definition(definition, quoted),
            "config": [_setting(setting, schema) for setting in config],
        }
        for signature, kind, definition, config in rows
    }


def _function_definition(definition: str | None, quoted: str) -> str | None:
    """pg_get_functiondef without the always-qualified name and the search_path line (compared via config)."""
    if definition is None:
        return None
    header = re.compile(r"^(CREATE OR REPLACE (?:FUNCTION|PROCEDURE) )" + re.escape(quoted) + r"\.")
    lines = header.sub(lambda m: m.group(1) + _SELF + ".", definition, count=1).split("\n")
    body = next((i for i, line in enumerate(lines) if i and not line.startswith(" ")), len(lines))
    kept = [line for line in lines[:body] if not line.startswith(" SET search_path TO ")]
    return "\n".join(kept + lines[body:])


def _setting(setting: str, schema: str) -> str:
    name, _, value = setting.partition("=")
    if name != "search_path":
        return setting
    return "search_path=" + ", ".join(
        _SELF if item == schema else item for item in split_search_path(value)
    )


def _triggers(rows: _Rows, quoted: str) -> dict[str, object]:
    return {
        f"{table}.{name}": {
            "definition": definition.replace(
                f" ON {quoted}.{quoted_table} ", f" ON {_SELF}.{quoted_table} ", 1
            ),
            "enabled": enabled,
            "cloned_from": parent_table,
        }
        for table, quoted_table, name, definition, enabled, parent_table in rows
    }


def _policies(rows: _Rows) -> dict[str, object]:
    return {
        f"{table}.{name}": {
            "command": command,
            "permissive": permissive,
            "roles": list(roles),
            "using": using,
            "with_check": check,
        }
        for table, name, command, permissive, roles, using, check in rows
    }


def _types(rows: _Rows) -> dict[str, object]:
    return {
        name: {
            "kind": kind,
            "labels": list(labels),
            "base": base,
            "collation": collation,
            "not_null": not_null,
            "default": default,
        }
        for name, kind, labels, base, collation, not_null, default in rows
    }


def _dependencies(rows: _Rows, quoted: str) -> dict[str, object]:
    """``object -> referenced object`` with the dependency types, the schema's own name normalized."""
    own = re.compile(r'(?<![\w$".])' + re.escape(quoted) + r"\.")

    def name(kind: str, identity: str) -> str:
        if kind == "schema" and identity == quoted:
            return f"schema {_SELF}"
        return f"{kind} {own.sub(_SELF + '.', identity)}"

    found: dict[str, set[str]] = {}
    for obj_type, obj_identity, ref_type, ref_identity, deptype in rows:
        key = f"{name(obj_type, obj_identity)} -> {name(ref_type, ref_identity)}"
        found.setdefault(key, set()).add(deptype)
    return {key: "".join(sorted(types)) for key, types in found.items()}


def _data(cur: Cursor, quoted: str, relations: _Rows) -> dict[str, object]:
    """Row count and an order-independent checksum of every table and populated materialized view.

    A table's own rows (``ONLY``), so a row copied into the wrong child or
    partition shows; a partitioned table's, all of its partitions' together.
    """
    readable = [
        (row[0], "ONLY " if row[1] == "r" else "")
        for row in relations
        if row[1] in ("r", "p") or (row[1] == "m" and row[7])
    ]
    checksums: dict[str, object] = {}
    for start in range(0, len(readable), _DATA_CHUNK):
        cur.execute(
            "\nUNION ALL ".join(
                f"SELECT {quote_literal(name)}::text, count(*), md5(coalesce(string_agg(t::text, E'\\n'"
                f" ORDER BY t::text), '')) FROM {only}{quoted}.{quote_ident(name)} AS t"
                for name, only in readable[start : start + _DATA_CHUNK]
            )
        )
        checksums.update((name, [count, digest]) for name, count, digest in cur.fetchall())
    return checksums
