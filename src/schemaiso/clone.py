"""Copy a template schema into worker schemas, from one read of its catalog.

Migrations run once into the template; every worker needs an identical and
independent copy.  ``CREATE TABLE ... (LIKE ... INCLUDING ALL)`` is not
faithful (identity sequences restart at 1, serial defaults keep calling the
template's sequence, foreign keys are dropped), so the engine regenerates the
DDL from the catalog.

Definitions are deparsed with ``search_path`` set to the template followed by
pg_catalog: the template's own objects then print unqualified and everything
else prints qualified.  Scripts run with the target first on the path (then
pg_catalog, then the shared schema), so every unqualified name binds to the
target's copy, never to the template.  The few texts PostgreSQL qualifies
whatever the path (index, trigger and function headers) are rebuilt after
checking an exact expected prefix, never by searching for the schema name.

Objects are created in dependency order (pg_depend plus the copy's own rules:
data before indexes, foreign keys and triggers), and the work is split into
transactions whose estimated lock count stays within a budget, because the
shared lock table of a default server cannot hold a large schema's locks.
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from schemaiso.errors import CloneError

__all__ = [
    "ClonePlan",
    "Connection",
    "Cursor",
    "clone_schema",
    "quote_ident",
    "quote_literal",
    "read_template",
    "server_lock_budget",
    "split_search_path",
]

# Placeholders for the target schema in prepared text.  PostgreSQL text can
# never contain NUL, so no catalog definition can collide with them.
_TARGET = "\0target\0"  # the quoted target schema, as an identifier
_TARGET_IN_LITERAL = "\0target-in-literal\0"  # the same, inside a single-quoted string literal

# Locks every clone transaction holds before doing anything (virtual and real
# transaction id, the target namespace, ...), kept out of the budget.
_BASE_LOCKS = 8
# Sequence values are read by querying each sequence; this many per statement
# keeps one statement's lock count modest.
_SEQUENCE_CHUNK = 200


class Cursor(Protocol):
    """The part of a DB-API cursor the engine uses (psycopg 3 and psycopg2)."""

    def execute(self, query: str, params: Any = ..., /) -> object: ...

    def fetchall(self) -> Sequence[Sequence[Any]]: ...

    def close(self) -> object: ...


class Connection(Protocol):
    """An autocommit DB-API connection; the engine never closes it."""

    def cursor(self) -> Cursor: ...


def quote_ident(name: str) -> str:
    """Always double-quote an identifier, so no name can break out of SQL."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string constant that reads the same whatever standard_conforming_strings says."""
    text = value.replace("'", "''")
    if "\\" in text:
        return "E'" + text.replace("\\", "\\\\") + "'"
    return "'" + text + "'"


@dataclass(frozen=True)
class ClonePlan:
    """Everything needed to clone one template, prepared once by read_template.

    ``steps`` holds the DDL as text with a placeholder for the target schema,
    in a valid execution order, each with the set of relations (as opaque
    keys) it locks, so that ``scripts`` is cheap string assembly per worker.
    """

    template: str
    shared: str
    table_count: int
    warnings: tuple[str, ...]
    steps: tuple[tuple[str, frozenset[str]], ...] = field(default=(), repr=False)

    def scripts(self, target: str, *, lock_budget: int) -> list[str]:
        """SQL scripts cloning into the existing schema ``target``, one per transaction.

        Steps are packed in order while the distinct relations they lock fit
        in ``lock_budget`` (a relation locked twice in one transaction takes
        one lock table entry); a step heavier than the budget runs alone.
        """
        ident = quote_ident(target)
        preamble = (
            f"SET LOCAL search_path TO {ident}, pg_catalog, {quote_ident(self.shared)};\n"
            "SET LOCAL check_function_bodies = off;\n"
        )
        capacity = lock_budget - _BASE_LOCKS
        batches: list[list[str]] = []
        held: set[str] = set()
        for sql, locks in self.steps:
            if not batches or len(held) + len(locks - held) > capacity:
                batches.append([])
                held = set()
            batches[-1].append(sql)
            held |= locks
        in_literal = ident.replace("'", "''")
        return [
            (preamble + "".join(batch))
            .replace(_TARGET, ident)
            .replace(_TARGET_IN_LITERAL, in_literal)
            for batch in batches
        ]


def read_template(conn: Connection, template: str, shared: str = "public") -> ClonePlan:
    """Read the template's catalog once (a query per object kind, not per table) and prepare the clone.

    Raises CloneError for anything the engine cannot copy faithfully, so that
    workers never silently differ from the template.
    """
    with closing(conn.cursor()) as cur:
        catalog = _read_catalog(cur, template)
    builder = _PlanBuilder(template, catalog)
    steps = tuple((unit.script(), unit.lock_keys()) for unit in _ordered(builder.units))
    return ClonePlan(
        template=template,
        shared=shared,
        table_count=sum(1 for rel in catalog.relations if rel.kind == "r"),
        warnings=tuple(builder.warnings),
        steps=steps,
    )


def clone_schema(
    conn: Connection, plan: ClonePlan, target: str, *, lock_budget: int | None = None
) -> None:
    """Run plan.scripts(target) on ``conn``, one transaction per script, rolling back on error.

    Without ``lock_budget`` this is assumed to be the only cloner running
    (``server_lock_budget(conn)``); pass the budget for concurrent cloners.
    """
    budget = server_lock_budget(conn) if lock_budget is None else lock_budget
    with closing(conn.cursor()) as cur:
        for script in plan.scripts(target, lock_budget=budget):
            _run_transaction(cur, script, plan.template, target)


def server_lock_budget(conn: Connection, concurrency: int = 1) -> int:
    """A per-transaction lock budget for each of ``concurrency`` simultaneous cloners.

    The shared lock table has max_locks_per_transaction * (max_connections +
    max_prepared_transactions) slots for all sessions; cloners together take
    at most a quarter of it, leaving the rest to everything else running.
    """
    with closing(conn.cursor()) as cur:
        cur.execute(
            "SELECT current_setting('max_locks_per_transaction')::int8"
            " * (current_setting('max_connections')::int8"
            " + current_setting('max_prepared_transactions')::int8)"
        )
        slots = int(cur.fetchall()[0][0])
    return max(1, slots // 4 // max(1, concurrency))


def _run_transaction(cur: Cursor, script: str, template: str, target: str) -> None:
    """Run one script in its own transaction; on failure roll back and say where it failed."""
    try:
        cur.execute("BEGIN")
        cur.execute(script)
        cur.execute("COMMIT")
    except Exception as exc:
        _rollback(cur)
        raise CloneError(
            f'cloning template schema "{template}" into schema "{target}" failed in the transaction'
            f" starting with: {_first_statement(script)}\n{exc}"
        ) from exc
    except BaseException:
        _rollback(cur)
        raise


def _rollback(cur: Cursor) -> None:
    """Best-effort ROLLBACK: the connection may be gone, and the original error is what matters."""
    with suppress(Exception):
        cur.execute("ROLLBACK")


def _first_statement(script: str) -> str:
    """The first line after the SET LOCAL preamble, which identifies the failing batch."""
    for line in script.splitlines():
        if not line.startswith("SET LOCAL "):
            return line[:200]
    return script[:200]


# --------------------------------------------------------------------------
# Reading the catalog
# --------------------------------------------------------------------------


def _not_member(catalog: str, alias: str) -> str:
    """SQL excluding objects that belong to an extension: extensions are not cloned."""
    return (
        f"NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = '{catalog}'::regclass"
        f" AND x.objid = {alias}.oid AND x.deptype = 'e')"
    )


_NSP = "__nsp__"  # replaced by the template namespace's oid (an integer literal)

_UNSUPPORTED_SQL = f"""
SELECT 'partitioned table', relname::text FROM pg_class c
 WHERE relnamespace = {_NSP} AND relkind IN ('p', 'I')
UNION ALL SELECT 'partition', relname::text FROM pg_class c
 WHERE relnamespace = {_NSP} AND relispartition
UNION ALL SELECT 'foreign table', relname::text FROM pg_class c
 WHERE relnamespace = {_NSP} AND relkind = 'f'
UNION ALL SELECT 'inherited table', c.relname::text FROM pg_inherits i
 JOIN pg_class c ON c.oid = i.inhrelid
 WHERE c.relnamespace = {_NSP} AND NOT c.relispartition
UNION ALL SELECT 'inheritance parent table', c.relname::text FROM pg_inherits i
 JOIN pg_class c ON c.oid = i.inhparent
 WHERE c.relnamespace = {_NSP} AND c.relkind = 'r'
UNION ALL SELECT 'table with row-level security', relname::text FROM pg_class c
 WHERE relnamespace = {_NSP} AND (relrowsecurity OR relforcerowsecurity)
UNION ALL SELECT 'row-level security policy', p.polname || ' on ' || c.relname FROM pg_policy p
 JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = {_NSP}
UNION ALL SELECT 'rule', r.rulename || ' on ' || c.relname FROM pg_rewrite r
 JOIN pg_class c ON c.oid = r.ev_class
 WHERE c.relnamespace = {_NSP} AND r.rulename <> '_RETURN'
UNION ALL SELECT 'relation in a non-default tablespace', relname::text FROM pg_class c
 WHERE relnamespace = {_NSP} AND reltablespace <> 0
UNION ALL SELECT 'invalid index (left by a failed CREATE INDEX CONCURRENTLY)', c.relname::text
 FROM pg_index i
 JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = {_NSP} AND NOT i.indisvalid
UNION ALL SELECT 'aggregate', proname::text FROM pg_proc c
 WHERE pronamespace = {_NSP} AND prokind = 'a' AND {_not_member("pg_proc", "c")}
UNION ALL SELECT 'event trigger', e.evtname || ' calling ' || p.proname FROM pg_event_trigger e
 JOIN pg_proc p ON p.oid = e.evtfoid WHERE p.pronamespace = {_NSP}
UNION ALL SELECT CASE typtype WHEN 'r' THEN 'range type' WHEN 'm' THEN 'multirange type'
  WHEN 'p' THEN 'pseudo-type' ELSE 'base type' END, typname::text FROM pg_type c
 WHERE typnamespace = {_NSP} AND typtype IN ('b', 'r', 'm', 'p') AND {_not_member("pg_type", "c")}
  AND NOT EXISTS (SELECT FROM pg_type e WHERE e.oid = c.typelem AND e.typarray = c.oid)
UNION ALL SELECT 'operator', oprname::text FROM pg_operator c
 WHERE oprnamespace = {_NSP} AND {_not_member("pg_operator", "c")}
UNION ALL SELECT 'operator class', opcname::text FROM pg_opclass c
 WHERE opcnamespace = {_NSP} AND {_not_member("pg_opclass", "c")}
UNION ALL SELECT 'operator family', opfname::text FROM pg_opfamily c
 WHERE opfnamespace = {_NSP} AND {_not_member("pg_opfamily", "c")}
UNION ALL SELECT 'text search configuration', cfgname::text FROM pg_ts_config c
 WHERE cfgnamespace = {_NSP} AND {_not_member("pg_ts_config", "c")}
UNION ALL SELECT 'text search dictionary', dictname::text FROM pg_ts_dict c
 WHERE dictnamespace = {_NSP} AND {_not_member("pg_ts_dict", "c")}
UNION ALL SELECT 'text search parser', prsname::text FROM pg_ts_parser c
 WHERE prsnamespace = {_NSP} AND {_not_member("pg_ts_parser", "c")}
UNION ALL SELECT 'text search template', tmplname::text FROM pg_ts_template c
 WHERE tmplnamespace = {_NSP} AND {_not_member("pg_ts_template", "c")}
UNION ALL SELECT 'conversion', conname::text FROM pg_conversion c
 WHERE connamespace = {_NSP} AND {_not_member("pg_conversion", "c")}
UNION ALL SELECT 'statistics object', stxname::text FROM pg_statistic_ext c
 WHERE stxnamespace = {_NSP} AND {_not_member("pg_statistic_ext", "c")}
UNION ALL SELECT 'extension installed in the template schema', extname::text FROM pg_extension
 WHERE extnamespace = {_NSP}
"""

_RELATIONS_SQL = f"""
SELECT c.oid::int8, quote_ident(c.relname), c.relkind::text, c.relpersistence::text,
       coalesce(c.reloptions, ARRAY[]::text[]), coalesce(t.reloptions, ARRAY[]::text[]),
       c.reltoastrelid <> 0, c.relispopulated,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
       (SELECT r.oid::int8 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN'),
       c.reltype::int8, coalesce(rt.typarray, 0)::int8, c.relreplident::text
FROM pg_class c
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_type rt ON rt.oid = c.reltype
WHERE c.relnamespace = {_NSP} AND c.relkind IN ('r', 'v', 'm') AND {_not_member("pg_class", "c")}
ORDER BY c.relname
"""

_COLUMNS_SQL = f"""
SELECT a.attrelid::int8, a.attnum::int, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
       CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid), d.oid::int8, a.attidentity::text, a.attgenerated::text,
       t.typnamespace = {_NSP} OR coalesce(e.typnamespace = {_NSP}, false),
       CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END,
       nullif(a.attcompression::text, ''),
       CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::int END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND e.typarray = t.oid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = {_NSP} AND c.relkind IN ('r', 'v', 'm', 'c') AND a.attnum > 0 AND NOT a.attisdropped
  AND {_not_member("pg_class", "c")}
ORDER BY a.attrelid, a.attnum
"""

_SEQUENCES_SQL = f"""
SELECT c.oid::int8, quote_ident(c.relname), c.relpersistence::text, format_type(s.seqtypid, NULL),
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       d.deptype::text, d.refobjid::int8, quote_ident(a.attname)
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE c.relnamespace = {_NSP} AND {_not_member("pg_class", "c")}
ORDER BY c.relname
"""

_CONSTRAINTS_SQL = f"""
SELECT co.oid::int8, quote_ident(co.conname), co.contype::text, co.conrelid::int8, co.contypid::int8,
       pg_get_constraintdef(co.oid), co.confrelid::int8
FROM pg_constraint co
WHERE co.connamespace = {_NSP} AND co.contype IN ('p', 'u', 'x', 'c', 'f')
ORDER BY co.conname
"""

_INDEXES_SQL = f"""
SELECT i.indexrelid::int8, quote_ident(ic.relname), i.indrelid::int8, pg_get_indexdef(i.indexrelid),
       'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(ic.relname)
         || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' USING ',
       coalesce(ic.reloptions, ARRAY[]::text[]), i.indisclustered, i.indisreplident, co.oid::int8
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint co ON co.conindid = i.indexrelid AND co.conrelid = i.indrelid
     AND co.contype IN ('p', 'u', 'x')
WHERE c.relnamespace = {_NSP} AND c.relkind IN ('r', 'm') AND {_not_member("pg_class", "c")}
ORDER BY ic.relname
"""

_FUNCTIONS_SQL = f"""
SELECT p.oid::int8, p.prokind::text, quote_ident(p.proname), pg_get_function_identity_arguments(p.oid),
       oidvectortypes(p.proargtypes), CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
       'CREATE OR REPLACE ' || CASE WHEN p.prokind = 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END
         || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(',
       p.prosrc, coalesce(p.proconfig, ARRAY[]::text[])
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.pronamespace = {_NSP} AND {_not_member("pg_proc", "p")}
ORDER BY p.proname, p.oid
"""

_TRIGGERS_SQL = f"""
SELECT t.oid::int8, quote_ident(t.tgname), t.tgrelid::int8, pg_get_triggerdef(t.oid),
       'CREATE ' || CASE WHEN t.tgconstraint <> 0 THEN 'CONSTRAINT ' ELSE '' END
         || 'TRIGGER ' || quote_ident(t.tgname) || ' ',
       ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ',
       t.tgenabled::text, t.tgconstraint::int8
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND c.relnamespace = {_NSP} AND {_not_member("pg_class", "c")}
ORDER BY t.tgname
"""

_TYPES_SQL = f"""
SELECT t.oid::int8, quote_ident(t.typname), t.typtype::text, t.typarray::int8,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
       CASE WHEN t.typtype = 'd' AND t.typcollation <> b.typcollation
         THEN t.typcollation::regcollation::text END,
       t.typnotnull, pg_get_expr(t.typdefaultbin, 0), t.typrelid::int8
FROM pg_type t
LEFT JOIN pg_type b ON b.oid = t.typbasetype
WHERE t.typnamespace = {_NSP} AND t.typtype IN ('e', 'd', 'c') AND {_not_member("pg_type", "t")}
  AND (t.typtype <> 'c' OR EXISTS (SELECT FROM pg_class r WHERE r.oid = t.typrelid AND r.relkind = 'c'))
ORDER BY t.typname
"""

_COLLATIONS_SQL = f"""
SELECT c.oid::int8, quote_ident(c.collname) FROM pg_collation c
WHERE c.collnamespace = {_NSP} AND {_not_member("pg_collation", "c")}
ORDER BY c.collname
"""

# Every object that lives in (or hangs off a relation in) the template schema.
_OWNED_CTE = f"""
WITH owned(catalog, oid) AS (
  SELECT 'pg_class'::regclass, oid FROM pg_class WHERE relnamespace = {_NSP}
  UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type WHERE typnamespace = {_NSP}
  UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc WHERE pronamespace = {_NSP}
  UNION ALL SELECT 'pg_constraint'::regclass, oid FROM pg_constraint WHERE connamespace = {_NSP}
  UNION ALL SELECT 'pg_collation'::regclass, oid FROM pg_collation WHERE collnamespace = {_NSP}
  UNION ALL SELECT 'pg_trigger'::regclass, t.oid FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = {_NSP}
  UNION ALL SELECT 'pg_attrdef'::regclass, d.oid FROM pg_attrdef d
    JOIN pg_class c ON c.oid = d.adrelid WHERE c.relnamespace = {_NSP}
  UNION ALL SELECT 'pg_rewrite'::regclass, r.oid FROM pg_rewrite r
    JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = {_NSP}
)
"""

_COMMENTS_SQL = f"""{_OWNED_CTE}
SELECT d.classoid::regclass::text, d.objoid::int8, d.objsubid, d.description
FROM pg_description d JOIN owned o ON o.catalog = d.classoid AND o.oid = d.objoid
"""

_DEPENDENCIES_SQL = f"""{_OWNED_CTE}
SELECT DISTINCT d.classid::regclass::text, d.objid::int8, d.refclassid::regclass::text, d.refobjid::int8
FROM pg_depend d JOIN owned o ON o.catalog = d.classid AND o.oid = d.objid
WHERE d.deptype IN ('n', 'a')
"""


class _Relation(NamedTuple):
    oid: int
    name: str
    kind: str  # r table, v view, m materialized view
    persistence: str
    options: list[str]
    toast_options: list[str]
    has_toast: bool
    populated: bool
    view_def: str | None
    rule: int | None
    rowtype: int
    rowtype_array: int
    replica_identity: str  # d default, n nothing, f full, i index (set with that index)


class _Column(NamedTuple):
    rel: int
    num: int
    name: str
    type: str
    collation: str | None
    not_null: bool
    default: str | None
    attrdef: int | None
    identity: str
    generated: str
    template_typed: bool
    storage: str | None
    compression: str | None
    statistics: int | None


class _Sequence(NamedTuple):
    oid: int
    name: str
    persistence: str
    type: str
    start: int
    increment: int
    min: int
    max: int
    cache: int
    cycle: bool
    owner_dep: str | None  # 'i' identity, 'a' OWNED BY, None standalone
    owner_rel: int | None
    owner_col: str | None


class _Constraint(NamedTuple):
    oid: int
    name: str
    kind: str
    rel: int
    domain: int
    definition: str
    ref_rel: int


class _Index(NamedTuple):
    oid: int
    name: str
    rel: int
    definition: str
    prefix: str
    options: list[str]
    clustered: bool
    replica_identity: bool
    constraint: int | None


class _Function(NamedTuple):
    oid: int
    kind: str
    name: str
    args: str
    arg_types: str
    definition: str | None
    prefix: str
    source: str
    config: list[str]


class _Trigger(NamedTuple):
    oid: int
    name: str
    rel: int
    definition: str
    prefix: str
    on_clause: str
    enabled: str
    constraint: int


class _Type(NamedTuple):
    oid: int
    name: str
    kind: str
    array: int
    labels: list[str]
    base: str | None
    collation: str | None
    not_null: bool
    default: str | None
    relid: int


class _Collation(NamedTuple):
    oid: int
    name: str


class _Comment(NamedTuple):
    catalog: str
    oid: int
    sub: int
    text: str


class _Dependency(NamedTuple):
    catalog: str
    oid: int
    ref_catalog: str
    ref_oid: int


@dataclass
class _Catalog:
    """Rows of the template's catalog, one list per object kind."""

    quoted: str  # the template's name quoted as PostgreSQL prints it
    relations: list[_Relation]
    columns: list[_Column]
    sequences: list[_Sequence]
    sequence_values: dict[int, tuple[int, bool]]
    constraints: list[_Constraint]
    indexes: list[_Index]
    functions: list[_Function]
    triggers: list[_Trigger]
    types: list[_Type]
    collations: list[_Collation]
    comments: list[_Comment]
    dependencies: list[_Dependency]


def _read_catalog(cur: Cursor, template: str) -> _Catalog:
    """Read everything in one REPEATABLE READ transaction with only the template on the path.

    With the template alone (before pg_catalog) on the path, the template's
    objects deparse unqualified and shared objects qualified.
    """
    cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        cur.execute(
            "SELECT oid::int8, quote_ident(nspname) FROM pg_namespace WHERE nspname = %s",
            (template,),
        )
        found = cur.fetchall()
        if not found:
            raise CloneError(f'template schema "{template}" does not exist')
        nsp, quoted = int(found[0][0]), str(found[0][1])
        cur.execute(f"SET LOCAL search_path TO {quote_ident(template)}, pg_catalog")

        def rows(sql: str) -> Sequence[Sequence[Any]]:
            cur.execute(sql.replace(_NSP, str(nsp)))
            return cur.fetchall()

        _reject_unsupported(template, rows(_UNSUPPORTED_SQL))
        sequences = [_Sequence(*row) for row in rows(_SEQUENCES_SQL)]
        catalog = _Catalog(
            quoted=quoted,
            relations=[_Relation(*row) for row in rows(_RELATIONS_SQL)],
            columns=[_Column(*row) for row in rows(_COLUMNS_SQL)],
            sequences=sequences,
            sequence_values=_read_sequence_values(cur, quoted, sequences),
            constraints=[_Constraint(*row) for row in rows(_CONSTRAINTS_SQL)],
            indexes=[_Index(*row) for row in rows(_INDEXES_SQL)],
            functions=[_Function(*row) for row in rows(_FUNCTIONS_SQL)],
            triggers=[_Trigger(*row) for row in rows(_TRIGGERS_SQL)],
            types=[_Type(*row) for row in rows(_TYPES_SQL)],
            collations=[_Collation(*row) for row in rows(_COLLATIONS_SQL)],
            comments=[_Comment(*row) for row in rows(_COMMENTS_SQL)],
            dependencies=[_Dependency(*row) for row in rows(_DEPENDENCIES_SQL)],
        )
        cur.execute("COMMIT")
    except BaseException:
        _rollback(cur)
        raise
    return catalog


def _read_sequence_values(
    cur: Cursor, quoted: str, sequences: list[_Sequence]
) -> dict[int, tuple[int, bool]]:
    """last_value and is_called of every sequence, a few hundred sequences per query.

    pg_sequences hides last_value when is_called is false, so the sequence
    relations themselves are read.
    """
    values: dict[int, tuple[int, bool]] = {}
    for start in range(0, len(sequences), _SEQUENCE_CHUNK):
        chunk = sequences[start : start + _SEQUENCE_CHUNK]
        cur.execute(
            "\nUNION ALL ".join(
                f"SELECT {seq.oid}::int8, last_value, is_called FROM {quoted}.{seq.name}"
                for seq in chunk
            )
        )
        values.update((int(oid), (int(last), bool(called))) for oid, last, called in cur.fetchall())
    return values


def _reject_unsupported(template: str, found: Sequence[Sequence[Any]]) -> None:
    """Refuse templates holding objects the engine would copy wrongly or not at all."""
    if not found:
        return
    kind, name = found[0]
    others = "".join(f"; also {k} {template}.{n}" for k, n in found[1:6])
    raise CloneError(
        f"schemaiso cannot clone {kind} {template}.{name} yet: the clone engine does not copy this kind"
        f" of object faithfully, so workers would differ from the template{others}"
    )


# --------------------------------------------------------------------------
# Planning: units of DDL, their dependencies and their order
# --------------------------------------------------------------------------

# Phases order units that do not depend on each other; dependencies always win.
_TYPES, _FUNCTIONS, _TABLES, _DATA, _INDEXES, _FOREIGN_KEYS, _VIEWS, _TRIGGERS = range(8)

_Key = tuple[str, int]


@dataclass
class _Unit:
    """Statements that create one object (with its comments), placed as one block."""

    key: _Key
    phase: int
    group: str  # keeps a table's units adjacent within a phase, which shares their locks
    label: str
    statements: list[str]
    locks: set[str] = field(default_factory=set)  # keys of the relations it locks
    deps: set[_Key] = field(default_factory=set)

    def script(self) -> str:
        return "".join(statement + ";\n" for statement in self.statements)

    def lock_keys(self) -> frozenset[str]:
        """The relations it locks; objects that lock no relation still count one, to stay conservative."""
        return frozenset(self.locks or {repr(self.key)})


def _ordered(units: dict[_Key, _Unit]) -> list[_Unit]:
    """Units in dependency order, preferring earlier phases (Kahn's algorithm with a heap).

    The phase preference also guarantees that a table's data is copied as soon
    as the table exists and before anything of a later phase, such as a
    materialized view reading it.
    """
    waiting = {key: set(unit.deps) for key, unit in units.items()}
    dependents: dict[_Key, list[_Key]] = defaultdict(list)
    for key, deps in waiting.items():
        for dep in deps:
            dependents[dep].append(key)
    ready = [
        (units[key].phase, units[key].group, units[key].label, key)
        for key, deps in waiting.items()
        if not deps
    ]
    heapq.heapify(ready)
    order: list[_Unit] = []
    while ready:
        *_, key = heapq.heappop(ready)
        order.append(units[key])
        for dependent in dependents[key]:
            waiting[dependent].discard(key)
            if not waiting[dependent]:
                unit = units[dependent]
                heapq.heappush(ready, (unit.phase, unit.group, unit.label, dependent))
    if len(order) < len(units):
        stuck = sorted(units[key].label for key, deps in waiting.items() if deps)
        raise CloneError(
            f"schemaiso cannot order these objects, they depend on each other: {', '.join(stuck[:10])}"
        )
    return order


def _options(options: Iterable[str], prefix: str = "") -> list[str]:
    """Storage parameters ('name=value' as stored) as SQL ``name = 'value'`` items."""
    items = []
    for option in options:
        name, _, value = option.partition("=")
        items.append(f"{prefix}{name} = {quote_literal(value)}")
    return items


def _strip_prefix(text: str, prefix: str, what: str) -> str:
    """The rest of ``text`` after an exactly expected prefix; anything else is an unknown format."""
    if not text.startswith(prefix):
        raise CloneError(
            f"schemaiso cannot parse the definition of {what}: expected it to start with {prefix!r}"
        )
    return text[len(prefix) :]


def _find_unquoted(text: str, needle: str) -> int:
    """Index of ``needle`` in ``text``, skipping double-quoted identifiers (a column may be named " ON ")."""
    quoted = False
    for index in range(len(text)):
        char = text[index]
        if char == '"':
            quoted = not quoted
        elif not quoted and text.startswith(needle, index):
            return index
    return -1


def split_search_path(value: str) -> list[str]:
    """Schema names in a stored search_path value, by PostgreSQL's rules.

    Unquoted names fold to lower case; quoted names keep their case and
    doubled quotes.  Used to repoint functions' ``SET search_path``.
    """
    names: list[str] = []
    index, length = 0, len(value)
    while index < length:
        while index < length and value[index].isspace():
            index += 1
        if index < length and value[index] == '"':
            end = index + 1
            name = []
            while end < length:
                if value[end] == '"':
                    if value.startswith('""', end):
                        name.append('"')
                        end += 2
                        continue
                    break
                name.append(value[end])
                end += 1
            names.append("".join(name))
            index = value.find(",", end)
        else:
            end = value.find(",", index)
            names.append(value[index : end if end >= 0 else length].strip().lower())
            index = end
        if index < 0:
            break
        index += 1
    return names


class _PlanBuilder:
    """Turns the catalog rows into units of DDL keyed by the object they create."""

    def __init__(self, template: str, catalog: _Catalog) -> None:
        self.template = template
        self.catalog = catalog
        self.source = catalog.quoted  # the template, quoted, for reading its data
        self.units: dict[_Key, _Unit] = {}
        self.warnings: list[str] = []
        # (catalog, oid) of a template object -> the unit that creates it
        self.owner: dict[tuple[str, int], _Key] = {}
        self.relations = {rel.oid: rel for rel in catalog.relations}
        self.columns: dict[int, list[_Column]] = defaultdict(list)
        for column in catalog.columns:
            self.columns[column.rel].append(column)
        self.types = {typ.oid: typ for typ in catalog.types}
        self.sequences: dict[int | None, list[_Sequence]] = defaultdict(list)
        for seq in catalog.sequences:
            self.sequences[seq.owner_rel].append(seq)
        self.index_oids: dict[int, list[int]] = defaultdict(list)
        for index in catalog.indexes:
            self.index_oids[index.rel].append(index.oid)
        self._build()

    def _build(self) -> None:
        self._collations()
        self._types()
        self._sequences()
        self._functions()
        self._relations()
        self._constraints()
        self._indexes()
        self._triggers()
        self._comments()
        self._dependencies()
        self._view_locks()
        self._domain_locks()

    # -- helpers ---------------------------------------------------------

    def _add(self, unit: _Unit, *objects: tuple[str, int]) -> _Unit:
        self.units[unit.key] = unit
        for obj in objects:
            self.owner[obj] = unit.key
        return unit

    def _rel_name(self, oid: int) -> str:
        return self.relations[oid].name

    def _target(self, oid: int) -> set[str]:
        """Lock keys of the target's copy of a relation, with its toast table and toast index."""
        rel = self.relations.get(oid)
        toasted = rel is not None and rel.has_toast
        return {f"t{oid}", f"t{oid}.toast", f"t{oid}.toast_index"} if toasted else {f"t{oid}"}

    def _target_indexes(self, oid: int) -> set[str]:
        """Lock keys of the target's indexes on a relation, which planning a query on it opens."""
        return {f"t{index}" for index in self.index_oids[oid]}

    def _source(self, oid: int) -> set[str]:
        """Lock keys of a template relation read by the data copy: itself, toast, indexes."""
        return {"s" + key[1:] for key in self._target(oid) | self._target_indexes(oid)}

    # -- object kinds ------------------------------------------------------

    def _collations(self) -> None:
        for coll in self.catalog.collations:
            sql = f"CREATE COLLATION {_TARGET}.{coll.name} FROM {self.source}.{coll.name}"
            self._add(
                _Unit(("coll", coll.oid), _TYPES, coll.name, f"collation {coll.name}", [sql]),
                ("pg_collation", coll.oid),
            )

    def _types(self) -> None:
        for typ in self.catalog.types:
            key = ("type", typ.oid)
            objects = [("pg_type", typ.oid), ("pg_type", typ.array)]
            if typ.kind == "e":
                labels = ", ".join(quote_literal(label) for label in typ.labels)
                sql = f"CREATE TYPE {_TARGET}.{typ.name} AS ENUM ({labels})"
            elif typ.kind == "d":
                sql = f"CREATE DOMAIN {_TARGET}.{typ.name} AS {typ.base}"
                sql += f" COLLATE {typ.collation}" if typ.collation else ""
                sql += " NOT NULL" if typ.not_null else ""
                self._domain_extras(typ)
            else:
                attributes = ", ".join(
                    f"{col.name} {col.type}"
                    + (f" COLLATE {col.collation}" if col.collation else "")
                    for col in self.columns[typ.relid]
                )
                sql = f"CREATE TYPE {_TARGET}.{typ.name} AS ({attributes})"
                objects.append(("pg_class", typ.relid))
            self._add(_Unit(key, _TYPES, typ.name, f"type {typ.name}", [sql]), *objects)

    def _domain_extras(self, typ: _Type) -> None:
        """A domain's default and constraints, which may call functions taking the domain itself."""
        statements = (
            [f"ALTER DOMAIN {_TARGET}.{typ.name} SET DEFAULT {typ.default}"] if typ.default else []
        )
        constraints = [con for con in self.catalog.constraints if con.domain == typ.oid]
        statements += [
            f"ALTER DOMAIN {_TARGET}.{typ.name} ADD CONSTRAINT {con.name} {con.definition}"
            for con in constraints
        ]
        if not statements:
            return
        unit = _Unit(
            ("domain", typ.oid), _TABLES, typ.name, f"constraints of domain {typ.name}", statements
        )
        unit.deps.add(("type", typ.oid))
        self._add(unit, *(("pg_constraint", con.oid) for con in constraints))

    def _sequences(self) -> None:
        """Standalone and serial sequences; identity sequences are created by their table."""
        for seq in self.catalog.sequences:
            if seq.owner_dep == "i":
                self.owner[("pg_class", seq.oid)] = ("rel", self._identity_owner(seq))
                continue
            if seq.owner_dep == "a" and seq.owner_rel not in self.relations:
                raise CloneError(
                    f"schemaiso cannot clone sequence {self.template}.{seq.name}: it is owned by a column"
                    " of a table outside the template schema"
                )
            unlogged = "UNLOGGED " if seq.persistence == "u" else ""
            options = self._sequence_options(seq)
            sql = f"CREATE {unlogged}SEQUENCE {_TARGET}.{seq.name} AS {seq.type} {options}"
            unit = _Unit(
                ("seq", seq.oid), _TYPES, seq.name, f"sequence {seq.name}", [sql, self._setval(seq)]
            )
            unit.locks = {f"t{seq.oid}"}
            self._add(unit, ("pg_class", seq.oid))

    def _identity_owner(self, seq: _Sequence) -> int:
        if seq.owner_rel is None or seq.owner_rel not in self.relations:
            raise CloneError(
                f"schemaiso cannot clone identity sequence {self.template}.{seq.name}: no owning table"
            )
        return seq.owner_rel

    @staticmethod
    def _sequence_options(seq: _Sequence) -> str:
        cycle = "CYCLE" if seq.cycle else "NO CYCLE"
        return (
            f"START WITH {seq.start} INCREMENT BY {seq.increment} MINVALUE {seq.min}"
            f" MAXVALUE {seq.max} CACHE {seq.cache} {cycle}"
        )

    def _setval(self, seq: _Sequence) -> str:
        """Leave the copy exactly where the template's sequence is, so copied ids never collide."""
        last, called = self.catalog.sequence_values[seq.oid]
        name = seq.name.replace("'", "''")
        return f"SELECT pg_catalog.setval('{_TARGET_IN_LITERAL}.{name}', {last}, {str(called).lower()})"

    def _functions(self) -> None:
        for fn in self.catalog.functions:
            kind = "procedure" if fn.kind == "p" else "function"
            what = f"{kind} {self.template}.{fn.name}({fn.arg_types})"
            if fn.definition is None:
                raise CloneError(f"schemaiso cannot clone aggregate {what} yet")
            rest = _strip_prefix(fn.definition, fn.prefix, what)
            keyword = "PROCEDURE" if fn.kind == "p" else "FUNCTION"
            statements = [f"CREATE {keyword} {_TARGET}.{fn.name}({rest.rstrip()}"]
            statements += self._function_search_path(fn, keyword)
            if self._names_template(fn.source):
                self.warnings.append(
                    f'{what} names schema "{self.template}" in its body; clones will still read the template'
                )
            self._add(
                _Unit(("func", fn.oid), _FUNCTIONS, fn.name, what, statements), ("pg_proc", fn.oid)
            )

    def _function_search_path(self, fn: _Function, keyword: str) -> list[str]:
        """Repoint a function's own ``SET search_path`` from the template to the target."""
        for setting in fn.config:
            name, _, value = setting.partition("=")
            if name != "search_path":
                continue
            schemas = split_search_path(value)
            if self.template not in schemas:
                return []
            items = ", ".join(
                _TARGET if schema == self.template else quote_literal(schema) for schema in schemas
            )
            return [f"ALTER {keyword} {_TARGET}.{fn.name}({fn.args}) SET search_path TO {items}"]
        return []

    def _names_template(self, source: str) -> bool:
        """Whether a function body mentions ``template.`` (bodies are text and are not rewritten)."""
        name = re.escape(self.template)
        quoted = re.escape(quote_ident(self.template))
        pattern = rf'(?:(?<![\w$"]){name}|{quoted})\s*\.'
        return (
            re.search(pattern, source, flags=0 if self.template != self.template.lower() else re.I)
            is not None
        )

    def _relations(self) -> None:
        for rel in self.catalog.relations:
            objects = [
                ("pg_class", rel.oid),
                ("pg_type", rel.rowtype),
                ("pg_type", rel.rowtype_array),
            ]
            if rel.rule is not None:
                objects.append(("pg_rewrite", rel.rule))
            objects += [
                ("pg_attrdef", col.attrdef)
                for col in self.columns[rel.oid]
                if col.attrdef is not None
            ]
            if rel.kind == "r":
                self._add(self._table(rel), *objects)
                self._add(self._data(rel))
            else:
                self._add(self._view(rel), *objects)

    def _table(self, rel: _Relation) -> _Unit:
        identities = {seq.owner_col: seq for seq in self.sequences[rel.oid] if seq.owner_dep == "i"}
        owned = [seq for seq in self.sequences[rel.oid] if seq.owner_dep == "a"]
        columns = self.columns[rel.oid]
        definitions = ",\n    ".join(
            self._column(rel, col, identities.get(col.name)) for col in columns
        )
        unlogged = "UNLOGGED " if rel.persistence == "u" else ""
        sql = f"CREATE {unlogged}TABLE {_TARGET}.{rel.name} (\n    {definitions}\n)"
        options = _options(rel.options) + _options(rel.toast_options, "toast.")
        sql += f" WITH ({', '.join(options)})" if options else ""
        statements = [sql, *self._column_settings(rel.name, columns)]
        if rel.replica_identity in ("f", "n"):
            identity = "FULL" if rel.replica_identity == "f" else "NOTHING"
            statements.append(f"ALTER TABLE {_TARGET}.{rel.name} REPLICA IDENTITY {identity}")
        statements += [self._setval(seq) for seq in identities.values()]
        statements += [
            f"ALTER SEQUENCE {_TARGET}.{seq.name} OWNED BY {_TARGET}.{rel.name}.{seq.owner_col}"
            for seq in owned
        ]
        unit = _Unit(("rel", rel.oid), _TABLES, rel.name, f"table {rel.name}", statements)
        unit.locks = self._target(rel.oid) | {
            f"t{seq.oid}" for seq in [*identities.values(), *owned]
        }
        unit.deps.update(("seq", seq.oid) for seq in owned)
        return unit

    def _column(self, rel: _Relation, col: _Column, identity: _Sequence | None) -> str:
        sql = f"{col.name} {col.type}"
        sql += f" COMPRESSION {col.compression}" if col.compression else ""
        sql += f" COLLATE {col.collation}" if col.collation else ""
        if identity is not None:
            kind = "ALWAYS" if col.identity == "a" else "BY DEFAULT"
            options = self._sequence_options(identity)
            sql += (
                f" GENERATED {kind} AS IDENTITY (SEQUENCE NAME {_TARGET}.{identity.name} {options})"
            )
        elif col.identity:
            raise CloneError(
                f"schemaiso cannot find the identity sequence of column {col.name}"
                f" of {self.template}.{rel.name}"
            )
        if col.generated == "s":
            sql += f" GENERATED ALWAYS AS ({col.default}) STORED"
        elif col.default is not None:
            sql += f" DEFAULT {col.default}"
        return sql + (" NOT NULL" if col.not_null else "")

    @staticmethod
    def _column_settings(table: str, columns: list[_Column]) -> list[str]:
        """Per-column storage and statistics settings that CREATE TABLE cannot express on PG 15."""
        statements = []
        for col in columns:
            prefix = f"ALTER TABLE {_TARGET}.{table} ALTER COLUMN {col.name}"
            if col.storage:
                storage = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}[col.storage]
                statements.append(f"{prefix} SET STORAGE {storage}")
            if col.statistics is not None:
                statements.append(f"{prefix} SET STATISTICS {col.statistics}")
        return statements

    def _data(self, rel: _Relation) -> _Unit:
        """Copy rows, before indexes, foreign keys and triggers exist.

        Values of template-defined types go through text: there is no cast
        from the template's enum or composite to the target's.  The type name
        was deparsed unqualified, so the cast resolves to the target's type.
        """
        copied = [col for col in self.columns[rel.oid] if col.generated != "s"]
        names = ", ".join(col.name for col in copied)
        values = ", ".join(
            f"{col.name}::text::{col.type}" if col.template_typed else col.name for col in copied
        )
        into = (
            f"{_TARGET}.{rel.name} ({names}) OVERRIDING SYSTEM VALUE SELECT {values}"
            if copied
            else (
                f"{_TARGET}.{rel.name} SELECT"  # a table without columns still has rows
            )
        )
        sql = f"INSERT INTO {into} FROM {self.source}.{rel.name}"
        unit = _Unit(("data", rel.oid), _DATA, rel.name, f"data of table {rel.name}", [sql])
        unit.locks = self._target(rel.oid) | self._source(rel.oid)
        unit.deps.add(("rel", rel.oid))
        return unit

    def _view(self, rel: _Relation) -> _Unit:
        options = _options(rel.options)
        with_options = f" WITH ({', '.join(options)})" if options else ""
        query = (rel.view_def or "").strip().rstrip(";")
        if rel.kind == "v":
            statements = [f"CREATE VIEW {_TARGET}.{rel.name}{with_options} AS\n{query}"]
            statements += [
                f"ALTER VIEW {_TARGET}.{rel.name} ALTER COLUMN {col.name} SET DEFAULT {col.default}"
                for col in self.columns[rel.oid]
                if col.default is not None
            ]
            return _Unit(("rel", rel.oid), _VIEWS, rel.name, f"view {rel.name}", statements)
        data = "WITH DATA" if rel.populated else "WITH NO DATA"
        sql = f"CREATE MATERIALIZED VIEW {_TARGET}.{rel.name}{with_options} AS\n{query}\n{data}"
        unit = _Unit(("rel", rel.oid), _VIEWS, rel.name, f"materialized view {rel.name}", [sql])
        # A materialized view reads table data, possibly through functions pg_depend cannot see.
        unit.deps.update(
            ("data", other.oid) for other in self.catalog.relations if other.kind == "r"
        )
        return unit

    def _constraints(self) -> None:
        index_of = {
            index.constraint: index
            for index in self.catalog.indexes
            if index.constraint is not None
        }
        for con in self.catalog.constraints:
            if con.domain:
                continue
            table = self._rel_name(con.rel)
            statements = [
                f"ALTER TABLE {_TARGET}.{table} ADD CONSTRAINT {con.name} {con.definition}"
            ]
            index = index_of.get(con.oid)
            if index is not None:
                statements += self._index_settings(index, table, options=con.kind != "x")
            foreign = con.kind == "f"
            phase = _FOREIGN_KEYS if foreign else _INDEXES
            unit = _Unit(
                ("con", con.oid), phase, table, f"constraint {con.name} on {table}", statements
            )
            unit.deps.add(("data", con.rel))
            unit.locks = self._target(con.rel) | ({f"t{index.oid}"} if index is not None else set())
            if foreign and con.ref_rel in self.relations:
                # Validation plans a join of both tables, which opens all their indexes.
                unit.deps.add(("data", con.ref_rel))
                unit.locks |= self._target(con.ref_rel) | self._target_indexes(con.rel)
                unit.locks |= self._target_indexes(con.ref_rel)
            objects = [("pg_constraint", con.oid)] + (
                [("pg_class", index.oid)] if index is not None else []
            )
            self._add(unit, *objects)

    def _index_settings(self, index: _Index, table: str, *, options: bool) -> list[str]:
        """Storage parameters pg_get_constraintdef leaves out, CLUSTER ON and REPLICA IDENTITY."""
        statements = []
        if options and index.options:
            statements.append(
                f"ALTER INDEX {_TARGET}.{index.name} SET ({', '.join(_options(index.options))})"
            )
        if index.clustered:
            statements.append(f"ALTER TABLE {_TARGET}.{table} CLUSTER ON {index.name}")
        if index.replica_identity:
            statements.append(
                f"ALTER TABLE {_TARGET}.{table} REPLICA IDENTITY USING INDEX {index.name}"
            )
        return statements

    def _indexes(self) -> None:
        for index in self.catalog.indexes:
            if index.constraint is not None:
                continue
            table = self._rel_name(index.rel)
            rest = _strip_prefix(
                index.definition, index.prefix, f"index {self.template}.{index.name}"
            )
            unique = "UNIQUE " if index.prefix.startswith("CREATE UNIQUE") else ""
            statements = [f"CREATE {unique}INDEX {index.name} ON {_TARGET}.{table} USING {rest}"]
            statements += self._index_settings(index, table, options=False)
            unit = _Unit(("idx", index.oid), _INDEXES, table, f"index {index.name}", statements)
            unit.locks = self._target(index.rel) | {f"t{index.oid}"}
            if self.relations[index.rel].kind == "r":
                unit.deps.add(("data", index.rel))
            self._add(unit, ("pg_class", index.oid))

    def _triggers(self) -> None:
        states = {
            "D": "DISABLE TRIGGER",
            "R": "ENABLE REPLICA TRIGGER",
            "A": "ENABLE ALWAYS TRIGGER",
        }
        for trg in self.catalog.triggers:
            table = self._rel_name(trg.rel)
            what = f"trigger {trg.name} on {self.template}.{table}"
            rest = _strip_prefix(trg.definition, trg.prefix, what)
            on = _find_unquoted(rest, trg.on_clause)
            if on < 0:
                raise CloneError(
                    f"schemaiso cannot find {trg.on_clause.strip()!r} in the definition of {what}"
                )
            events, after = rest[:on], rest[on + len(trg.on_clause) :]
            statements = [f"{trg.prefix}{events} ON {_TARGET}.{table} {after}"]
            if trg.enabled in states:
                statements.append(f"ALTER TABLE {_TARGET}.{table} {states[trg.enabled]} {trg.name}")
            unit = _Unit(("trg", trg.oid), _TRIGGERS, table, what, statements)
            unit.locks = self._target(trg.rel) | {f"t{trg.oid}"}
            if self.relations[trg.rel].kind == "r":
                unit.deps.add(("data", trg.rel))
            objects = [("pg_trigger", trg.oid)] + (
                [("pg_constraint", trg.constraint)] if trg.constraint else []
            )
            self._add(unit, *objects)

    # -- comments, dependencies and lock estimates ---------------------------

    def _comments(self) -> None:
        """COMMENT ON statements, appended to the unit that creates the object."""
        targets = self._comment_targets()
        for comment in self.catalog.comments:
            key = self.owner.get((comment.catalog, comment.oid))
            target = targets.get((comment.catalog, comment.oid, comment.sub))
            if key is not None and target is not None:
                self.units[key].statements.append(
                    f"COMMENT ON {target} IS {quote_literal(comment.text)}"
                )

    def _comment_targets(self) -> dict[tuple[str, int, int], str]:
        """How COMMENT ON names each commentable object, keyed like pg_description."""
        targets: dict[tuple[str, int, int], str] = {}
        relations = {
            rel.oid: (rel.name, {"r": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}[rel.kind])
            for rel in self.catalog.relations
        }
        relations.update(
            (typ.relid, (typ.name, "TYPE")) for typ in self.catalog.types if typ.kind == "c"
        )
        relations.update((seq.oid, (seq.name, "SEQUENCE")) for seq in self.catalog.sequences)
        relations.update((index.oid, (index.name, "INDEX")) for index in self.catalog.indexes)
        for oid, (name, kind) in relations.items():
            targets["pg_class", oid, 0] = f"{kind} {_TARGET}.{name}"
        for col in self.catalog.columns:
            targets["pg_class", col.rel, col.num] = (
                f"COLUMN {_TARGET}.{relations[col.rel][0]}.{col.name}"
            )
        for fn in self.catalog.functions:
            targets["pg_proc", fn.oid, 0] = (
                f"{'PROCEDURE' if fn.kind == 'p' else 'FUNCTION'} {_TARGET}.{fn.name}({fn.args})"
            )
        for typ in self.catalog.types:
            targets["pg_type", typ.oid, 0] = (
                f"{'DOMAIN' if typ.kind == 'd' else 'TYPE'} {_TARGET}.{typ.name}"
            )
        for con in self.catalog.constraints:
            on = (
                f"DOMAIN {_TARGET}.{self.types[con.domain].name}"
                if con.domain
                else f"{_TARGET}.{self._rel_name(con.rel)}"
            )
            targets["pg_constraint", con.oid, 0] = f"CONSTRAINT {con.name} ON {on}"
        for trg in self.catalog.triggers:
            targets["pg_trigger", trg.oid, 0] = (
                f"TRIGGER {trg.name} ON {_TARGET}.{self._rel_name(trg.rel)}"
            )
        for coll in self.catalog.collations:
            targets["pg_collation", coll.oid, 0] = f"COLLATION {_TARGET}.{coll.name}"
        return targets

    def _dependencies(self) -> None:
        """Turn pg_depend rows between template objects into ordering constraints between units.

        A sequence's dependency on the column owning it is reversed (the table
        needs the sequence for its default), and a domain's dependencies on
        functions belong to its default and constraints, not to the domain.
        """
        for dep in self.catalog.dependencies:
            if dep.catalog == "pg_class" and ("seq", dep.oid) in self.units:
                continue
            unit = self.owner.get((dep.catalog, dep.oid))
            ref = self.owner.get((dep.ref_catalog, dep.ref_oid))
            if unit is None or ref is None:
                continue
            if unit[0] == "type" and dep.ref_catalog not in ("pg_type", "pg_collation"):
                unit = ("domain", unit[1]) if ("domain", unit[1]) in self.units else unit
            if unit != ref:
                self.units[unit].deps.add(ref)

    def _view_locks(self) -> None:
        """Creating a view locks the relations it names; filling a materialized view, all those beneath."""
        for unit in self.units.values():
            if unit.key[0] == "rel" and self.relations[unit.key[1]].kind != "r":
                oid = unit.key[1]
                unit.locks = self._target(oid) | {
                    f"t{dep[1]}" for dep in unit.deps if dep[0] == "rel"
                }
                if self.relations[oid].kind == "m":
                    for read in self._relations_under(unit.key):
                        unit.locks |= self._target(read) | self._target_indexes(read)

    def _relations_under(self, key: _Key) -> set[int]:
        """Relations a view reads, directly or through other views."""
        found: set[int] = set()
        pending = [key]
        while pending:
            for dep in self.units[pending.pop()].deps:
                if dep[0] == "rel" and dep[1] not in found:
                    found.add(dep[1])
                    pending.append(dep)
        return found

    def _domain_locks(self) -> None:
        """Adding a domain constraint checks, and so locks, every table with a column of the domain."""
        for typ in self.catalog.types:
            unit = self.units.get(("domain", typ.oid))
            if unit is not None:
                users = {
                    col.rel
                    for col in self.catalog.columns
                    if col.type in (typ.name, typ.name + "[]")
                }
                unit.locks = {f"domain{typ.oid}"}.union(
                    *(self._target(rel) for rel in users if rel in self.relations)
                )
