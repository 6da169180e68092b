"""Reading the template's catalog into typed rows: one query per object kind, in one snapshot.

This is the only module that queries the template; the SQL text is in
``catalog_sql`` and the row types are here.  Definitions are deparsed
here, with ``search_path`` set to the template followed by pg_catalog, so the
template's own objects print unqualified and everything else prints
qualified; the planner never has to look for the template's name in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from schemaiso.errors import CloneError
from schemaiso.naming import quote_ident

from . import catalog_sql as q
from .dbapi import Cursor, rollback

# Sequence values and whether tables hold rows are read by querying each relation;
# this many per statement keeps one statement's lock count modest.
_UNION_CHUNK = 200


class Relation(NamedTuple):
    oid: int
    name: str
    kind: str  # r table, p partitioned table, v view, m materialized view
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
    partition_key: str | None  # "RANGE (at)", for a partitioned table
    partition_bound: str | None  # "FOR VALUES ..." or "DEFAULT", for a partition
    parents: list[int]  # inheritance parents (or the one partition parent), in order
    row_security: bool
    force_row_security: bool


class Column(NamedTuple):
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
    storage: str | None  # only when it differs from the type's default
    storage_actual: str
    compression: str | None
    statistics: int | None
    is_local: bool
    inh_count: int


class SequenceRow(NamedTuple):
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


class Constraint(NamedTuple):
    oid: int
    name: str
    kind: str
    rel: int
    domain: int
    definition: str
    ref_rel: int
    parent: int  # the partitioned table's constraint this one was cloned from or attached to
    is_local: bool
    inh_count: int


class Index(NamedTuple):
    oid: int
    name: str
    rel: int
    definition: str
    prefix: str
    options: list[str]
    clustered: bool
    replica_identity: bool
    constraint: int | None
    parent: int | None  # the partitioned index it is attached to


class Function(NamedTuple):
    oid: int
    kind: str
    name: str
    args: str
    arg_types: str
    definition: str | None
    prefix: str
    source: str
    config: list[str]


class Trigger(NamedTuple):
    oid: int
    name: str
    rel: int
    definition: str
    prefix: str
    on_clause: str
    enabled: str
    constraint: int
    parent: int  # the partitioned table's trigger it was cloned from


class Policy(NamedTuple):
    oid: int
    name: str
    rel: int
    command: str
    permissive: bool
    roles: list[str]
    using: str | None
    check: str | None


class Rule(NamedTuple):
    oid: int
    name: str
    rel: int
    definition: str
    prefix: str
    event: str
    enabled: str


class Type(NamedTuple):
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


class Collation(NamedTuple):
    oid: int
    name: str
    #: Its pg_collation row as JSON (the columns differ between major versions).
    settings: str


class Comment(NamedTuple):
    catalog: str
    oid: int
    sub: int
    text: str


class Dependency(NamedTuple):
    catalog: str
    oid: int
    ref_catalog: str
    ref_oid: int


@dataclass
class Catalog:
    """Rows of the template's catalog, one list per object kind."""

    quoted: str  # the template's name quoted as PostgreSQL prints it
    relations: list[Relation]
    columns: list[Column]
    sequences: list[SequenceRow]
    sequence_values: dict[int, tuple[int, bool]]
    nonempty: frozenset[int]  # tables (without their children) that hold rows
    constraints: list[Constraint]
    indexes: list[Index]
    functions: list[Function]
    triggers: list[Trigger]
    policies: list[Policy]
    rules: list[Rule]
    types: list[Type]
    collations: list[Collation]
    comments: list[Comment]
    dependencies: list[Dependency]


def read_catalog(cur: Cursor, template: str, shared: str) -> Catalog:
    """Read everything in one REPEATABLE READ transaction with only the template on the path.

    With the template alone (before pg_catalog) on the path, the template's
    objects deparse unqualified and shared objects qualified.
    """
    # No JIT: after a build the catalogs' stale statistics make it kick in, for nothing.
    cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL jit = off")
    try:
        catalog = _read(cur, template, shared)
        cur.execute("COMMIT")
    except BaseException:
        rollback(cur)
        raise
    return catalog


def _read(cur: Cursor, template: str, shared: str) -> Catalog:
    """Every query of ``catalog_sql``, inside the caller's snapshot (``shared`` is for messages)."""
    cur.execute(
        "SELECT oid::int8, quote_ident(nspname) FROM pg_namespace WHERE nspname = %s",
        (template,),
    )
    found = cur.fetchall()
    if not found:
        raise CloneError(
            f'schemaiso: template schema "{template}" does not exist, so it cannot be cloned:'
            " something dropped it during the run. Run the tests again."
        )
    nsp, quoted = int(found[0][0]), str(found[0][1])
    cur.execute(f"SET LOCAL search_path TO {quote_ident(template)}, pg_catalog")

    def rows(sql: str) -> Sequence[Sequence[Any]]:
        cur.execute(sql.replace(q.NSP, str(nsp)))
        return cur.fetchall()

    _reject_unsupported(template, shared, rows(q.UNSUPPORTED_SQL))
    sequences = [SequenceRow(*row) for row in rows(q.SEQUENCES_SQL)]
    relations = [Relation(*row) for row in rows(q.RELATIONS_SQL)]
    return Catalog(
        quoted=quoted,
        relations=relations,
        columns=[Column(*row) for row in rows(q.COLUMNS_SQL)],
        sequences=sequences,
        sequence_values=_read_sequence_values(cur, quoted, sequences),
        nonempty=_read_nonempty(cur, quoted, relations),
        constraints=[Constraint(*row) for row in rows(q.CONSTRAINTS_SQL)],
        indexes=[Index(*row) for row in rows(q.INDEXES_SQL)],
        functions=[Function(*row) for row in rows(q.FUNCTIONS_SQL)],
        triggers=[Trigger(*row) for row in rows(q.TRIGGERS_SQL)],
        policies=[Policy(*row) for row in rows(q.POLICIES_SQL)],
        rules=[Rule(*row) for row in rows(q.RULES_SQL)],
        types=[Type(*row) for row in rows(q.TYPES_SQL)],
        collations=[Collation(*row) for row in rows(q.COLLATIONS_SQL)],
        comments=[Comment(*row) for row in rows(q.COMMENTS_SQL)],
        dependencies=[Dependency(*row) for row in rows(q.DEPENDENCIES_SQL)],
    )


def _union_rows(cur: Cursor, selects: list[str]) -> list[Sequence[Any]]:
    """Rows of many per-relation SELECTs, run as UNION ALL statements of ``_UNION_CHUNK`` each."""
    rows: list[Sequence[Any]] = []
    for start in range(0, len(selects), _UNION_CHUNK):
        cur.execute("\nUNION ALL ".join(selects[start : start + _UNION_CHUNK]))
        rows.extend(cur.fetchall())
    return rows


def _read_sequence_values(
    cur: Cursor, quoted: str, sequences: list[SequenceRow]
) -> dict[int, tuple[int, bool]]:
    """last_value and is_called of every sequence, a few hundred sequences per query.

    pg_sequences hides last_value when is_called is false, so the sequence
    relations themselves are read.
    """
    rows = _union_rows(
        cur,
        [
            f"SELECT {seq.oid}::int8, last_value, is_called FROM {quoted}.{seq.name}"
            for seq in sequences
        ],
    )
    return {int(oid): (int(last), bool(called)) for oid, last, called in rows}


def _read_nonempty(cur: Cursor, quoted: str, relations: list[Relation]) -> frozenset[int]:
    """The tables with rows of their own, a few hundred tables per query.

    Most tables of a freshly migrated template are empty; a clone skips their
    copy statement altogether. Nothing but ``migrate`` writes the template, so
    this holds for every clone made from the plan.
    """
    rows = _union_rows(
        cur,
        [
            f"SELECT {rel.oid}::int8 WHERE EXISTS (SELECT FROM ONLY {quoted}.{rel.name})"
            for rel in relations
            if rel.kind == "r"
        ],
    )
    return frozenset(int(oid) for (oid,) in rows)


def _reject_unsupported(template: str, shared: str, found: Sequence[Sequence[Any]]) -> None:
    """Refuse templates holding objects the engine would copy wrongly or not at all."""
    if template == shared:  # reading the shared schema itself: its extensions belong there
        found = [row for row in found if row[0] != q.EXTENSION_IN_TEMPLATE]
    if not found:
        return
    kind, name = found[0]
    others = "".join(f"; also {k} {template}.{n}" for k, n in found[1:6])
    raise CloneError(
        f'schemaiso: template schema "{template}" holds {kind} {template}.{name}, which schemaiso'
        f" cannot clone faithfully yet, so workers would differ from the template{others}. Drop"
        " such objects from the template, or create those that hold no data in the shared schema"
        f' "{shared}" instead; docs/troubleshooting.md says what to do for each kind.'
    )
