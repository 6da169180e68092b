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
the search_path parser).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any

from schemaiso.clone import Connection, Cursor, quote_ident, quote_literal, split_search_path

__all__ = ["describe_schema", "diff_descriptions"]

_SELF = "@"  # stands for the described schema in normalized text
_NSP = "__nsp__"
_DATA_CHUNK = 100  # tables checksummed per query, to keep each statement's locks modest

_Rows = Sequence[Sequence[Any]]


def _not_member(catalog: str, alias: str) -> str:
    return (
        f"NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = '{catalog}'::regclass"
        f" AND x.objid = {alias}.oid AND x.deptype = 'e')"
    )


# Parents print as the path shows them: the schema's own unqualified, any other qualified.
_RELATIONS_SQL = f"""
SELECT c.relname::text, c.relkind::text, c.relpersistence::text, coalesce(c.reloptions, ARRAY[]::text[]),
       coalesce(t.reloptions, ARRAY[]::text[]), c.relreplident::text,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END, c.relispopulated,
       pg_get_partkeydef(c.oid), c.relispartition, pg_get_expr(c.relpartbound, c.oid),
       ARRAY(SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid
             ORDER BY i.inhseqno),
       c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relnamespace = {_NSP} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_not_member("pg_class", "c")}
"""

_COLUMNS_SQL = f"""
SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
       a.attcollation::regcollation::text, a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       a.attidentity::text, a.attgenerated::text, a.attstorage::text, a.attcompression::text,
       a.attstattarget::int, a.attislocal, a.attinhcount::int
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = {_NSP} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attnum > 0
  AND NOT a.attisdropped AND {_not_member("pg_class", "c")}
ORDER BY c.relname, a.attnum
"""

_SEQUENCES_SQL = f"""
SELECT c.relname::text, quote_ident(c.relname), c.relpersistence::text, format_type(s.seqtypid, NULL),
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       d.deptype::text, o.relnamespace = {_NSP}, o.relname::text, a.attname::text
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class o ON o.oid = d.refobjid
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE c.relnamespace = {_NSP} AND {_not_member("pg_class", "c")}
"""

_CONSTRAINTS_SQL = f"""
SELECT coalesce(r.relname, t.typname)::text, co.conname::text, co.contype::text, pg_get_constraintdef(co.oid),
       co.condeferrable, co.condeferred, co.convalidated, coalesce(i.reloptions, ARRAY[]::text[]),
       co.conislocal, co.coninhcount::int, co.connoinherit,
       pc.conrelid::regclass::text || '.' || pc.conname
FROM pg_constraint co
LEFT JOIN pg_class r ON r.oid = co.conrelid
LEFT JOIN pg_type t ON t.oid = co.contypid
LEFT JOIN pg_class i ON i.oid = co.conindid AND co.contype IN ('p', 'u', 'x')
LEFT JOIN pg_constraint pc ON pc.oid = co.conparentid
WHERE co.connamespace = {_NSP}
"""

_INDEXES_SQL = f"""
SELECT ic.relname::text, c.relname::text, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
       i.indisexclusion, i.indimmediate, i.indisclustered, i.indisvalid,
       coalesce(ic.reloptions, ARRAY[]::text[]),
       (SELECT h.inhparent::regclass::text FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = {_NSP} AND {_not_member("pg_class", "c")}
"""

_FUNCTIONS_SQL = f"""
SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', p.prokind::text,
       CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END, coalesce(p.proconfig, ARRAY[]::text[])
FROM pg_proc p
WHERE p.pronamespace = {_NSP} AND {_not_member("pg_proc", "p")}
"""

_TRIGGERS_SQL = f"""
SELECT c.relname::text, quote_ident(c.relname), t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text,
       p.tgrelid::regclass::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
LEFT JOIN pg_trigger p ON p.oid = t.tgparentid
WHERE NOT t.tgisinternal AND c.relnamespace = {_NSP} AND {_not_member("pg_class", "c")}
"""

_POLICIES_SQL = f"""
SELECT c.relname::text, p.polname::text, p.polcmd::text, p.polpermissive,
       ARRAY(SELECT CASE WHEN r.role = 0 THEN 'public' ELSE pg_get_userbyid(r.role)::text END
             FROM unnest(p.polroles) AS r(role) ORDER BY 1),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = {_NSP} AND {_not_member("pg_class", "c")}
"""

# Pretty-printed, rules name their table as the path shows it (the plain form always qualifies it).
_RULES_SQL = f"""
SELECT c.relname::text, r.rulename::text, pg_get_ruledef(r.oid, true), r.ev_enabled::text
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = {_NSP} AND r.rulename <> '_RETURN' AND {_not_member("pg_class", "c")}
"""

_TYPES_SQL = f"""
SELECT t.typname::text, t.typtype::text,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
       t.typcollation::regcollation::text, t.typnotnull, pg_get_expr(t.typdefaultbin, 0)
FROM pg_type t
WHERE t.typnamespace = {_NSP} AND {_not_member("pg_type", "t")}
  AND NOT EXISTS (SELECT FROM pg_type e WHERE e.oid = t.typelem AND e.typarray = t.oid)
  AND (t.typrelid = 0 OR EXISTS (SELECT FROM pg_class r WHERE r.oid = t.typrelid AND r.relkind = 'c'))
"""

_COLLATIONS_SQL = f"""
SELECT c.collname::text, (to_jsonb(c) - 'oid' - 'collname' - 'collnamespace' - 'collowner')::text
FROM pg_collation c
WHERE c.collnamespace = {_NSP} AND {_not_member("pg_collation", "c")}
"""

# Objects in the schema, including those that hang off its relations (but not the
# internal triggers of foreign keys, whose names contain oids).
_OWNED_CTE = f"""
WITH owned(catalog, oid) AS (
  SELECT 'pg_class'::regclass, c.oid FROM pg_class c
    WHERE c.relnamespace = {_NSP} AND {_not_member("pg_class", "c")}
  UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t
    WHERE t.typnamespace = {_NSP} AND {_not_member("pg_type", "t")}
  UNION ALL SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p
    WHERE p.pronamespace = {_NSP} AND {_not_member("pg_proc", "p")}
  UNION ALL SELECT 'pg_constraint'::regclass, oid FROM pg_constraint WHERE connamespace = {_NSP}
  UNION ALL SELECT 'pg_collation'::regclass, oid FROM pg_collation WHERE collnamespace = {_NSP}
  UNION ALL SELECT 'pg_trigger'::regclass, t.oid FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = {_NSP} AND NOT t.tgisinternal
  UNION ALL SELECT 'pg_attrdef'::regclass, d.oid FROM pg_attrdef d
    JOIN pg_class c ON c.oid = d.adrelid WHERE c.relnamespace = {_NSP}
  UNION ALL SELECT 'pg_rewrite'::regclass, r.oid FROM pg_rewrite r
    JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = {_NSP}
  UNION ALL SELECT 'pg_policy'::regclass, p.oid FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = {_NSP}
)
"""

_COMMENTS_SQL = f"""{_OWNED_CTE}
SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
FROM pg_description d JOIN owned o ON o.catalog = d.classoid AND o.oid = d.objoid
"""

# Each dependency of the schema's objects, named with pg_identify_object,
# whose identities are always schema-qualified: normalizing the schema's own
# name leaves a dependency on another schema (the template) visible.  The
# partition dependencies (P, S) show which index, constraint or trigger of a
# partition is attached to which of its parent's.
_DEPENDENCIES_SQL = f"""{_OWNED_CTE}
SELECT o.type, o.identity, r.type, r.identity, d.deptype::text
FROM pg_depend d
JOIN owned w ON w.catalog = d.classid AND w.oid = d.objid
CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
CROSS JOIN LATERAL pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) r
WHERE d.deptype IN ('n', 'a', 'i', 'P', 'S') AND coalesce(r.schema, '') NOT IN ('pg_catalog', 'pg_toast')
"""


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
        cur.execute(sql.replace(_NSP, str(nsp)))
        return cur.fetchall()

    relations = rows(_RELATIONS_SQL)
    return {
        "relations": _relations(relations),
        "columns": _columns(rows(_COLUMNS_SQL)),
        "sequences": _sequences(cur, quoted, rows(_SEQUENCES_SQL)),
        "constraints": _constraints(rows(_CONSTRAINTS_SQL)),
        "indexes": _indexes(rows(_INDEXES_SQL), quoted),
        "functions": _functions(rows(_FUNCTIONS_SQL), schema, quoted),
        "triggers": _triggers(rows(_TRIGGERS_SQL), quoted),
        "policies": _policies(rows(_POLICIES_SQL)),
        "rules": {
            f"{table}.{name}": {"definition": definition, "enabled": enabled}
            for table, name, definition, enabled in rows(_RULES_SQL)
        },
        "types": _types(rows(_TYPES_SQL)),
        # As text: drivers decode jsonb differently (Django's connections leave it a string).
        "collations": {name: json.loads(settings) for name, settings in rows(_COLLATIONS_SQL)},
        "comments": {obj: text for obj, text in rows(_COMMENTS_SQL)},
        "dependencies": _dependencies(rows(_DEPENDENCIES_SQL), quoted),
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
