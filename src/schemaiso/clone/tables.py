"""Sequences, tables (partitioned, partitions, inheritance children), their rows, and views.

``CREATE TABLE ... LIKE`` is not faithful (identity sequences restart at 1,
serial defaults keep calling the template's sequence), so every table is
written out column by column.  A partition with its parent's column order
is created with ``PARTITION OF`` (one statement); any other is created as a
plain table and attached with ``ATTACH PARTITION``, which leaves it in the
same catalog state (every column inherited, none local).  Inheritance
children are created with ``INHERITS``, the only way to get columns that are
inherited and not local.  Either way the child's own changes to what it
inherited (defaults, NOT NULL, storage) are then applied.  Rows are
copied from each table alone (``FROM ONLY``), so a parent's rows and a
child's rows are each copied once, into the table that holds them.
"""

from __future__ import annotations

from schemaiso.errors import CloneError

from .catalog import Column, Relation, SequenceRow
from .context import PlanContext
from .text import TARGET, TARGET_IN_LITERAL, sql_options, unexpected
from .units import DATA, TABLES, TYPES, VIEWS, Unit

_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}


def add_sequences(ctx: PlanContext) -> None:
    """Standalone and serial sequences; identity sequences are created by their table."""
    for seq in ctx.catalog.sequences:
        if seq.owner_dep == "i":
            if seq.owner_rel is None or seq.owner_rel not in ctx.relations:
                raise unexpected(
                    f"cannot clone identity sequence {ctx.template}.{seq.name}: no owning table"
                )
            ctx.owner[("pg_class", seq.oid)] = ("rel", seq.owner_rel)
            continue
        if seq.owner_dep == "a" and seq.owner_rel not in ctx.relations:
            raise CloneError(
                f"schemaiso: cannot clone sequence {ctx.template}.{seq.name}: it is owned by a column"
                f' of a table outside the template schema "{ctx.template}". Keep the sequence and'
                " the table that owns it in one schema; this usually comes from a migration's"
                " ALTER SEQUENCE ... OWNED BY naming a table in another schema."
            )
        unlogged = "UNLOGGED " if seq.persistence == "u" else ""
        sql = f"CREATE {unlogged}SEQUENCE {TARGET}.{seq.name} AS {seq.type} {_sequence_options(seq)}"
        unit = Unit(
            ("seq", seq.oid), TYPES, seq.name, f"sequence {seq.name}", [sql, *_setval(ctx, seq)]
        )
        unit.locks = {f"t{seq.oid}"}
        ctx.add(unit, ("pg_class", seq.oid))


def _sequence_options(seq: SequenceRow) -> str:
    cycle = "CYCLE" if seq.cycle else "NO CYCLE"
    return (
        f"START WITH {seq.start} INCREMENT BY {seq.increment} MINVALUE {seq.min}"
        f" MAXVALUE {seq.max} CACHE {seq.cache} {cycle}"
    )


def _setval(ctx: PlanContext, seq: SequenceRow) -> list[str]:
    """Leave the copy exactly where the template's sequence is, so copied ids never collide.

    A sequence never used since it was created is already there: no statement.
    """
    last, called = ctx.catalog.sequence_values[seq.oid]
    if not called and last == seq.start:
        return []
    name = seq.name.replace("'", "''")
    return [f"SELECT pg_catalog.setval('{TARGET_IN_LITERAL}.{name}', {last}, {str(called).lower()})"]


def add_relations(ctx: PlanContext) -> None:
    for rel in ctx.catalog.relations:
        objects = [("pg_class", rel.oid), ("pg_type", rel.rowtype), ("pg_type", rel.rowtype_array)]
        if rel.rule is not None:
            objects.append(("pg_rewrite", rel.rule))
        objects += [
            ("pg_attrdef", col.attrdef) for col in ctx.columns[rel.oid] if col.attrdef is not None
        ]
        for col in ctx.columns[rel.oid]:
            ctx.warn_if_names_template(
                f"column {col.name} of {ctx.template}.{rel.name}", col.default
            )
        if rel.kind in ("r", "p"):
            ctx.add(_table(ctx, rel), *objects)
            if rel.kind == "r" and rel.oid in ctx.catalog.nonempty:
                ctx.add(_data(ctx, rel))
        else:
            ctx.add(_view(ctx, rel), *objects)


def _table(ctx: PlanContext, rel: Relation) -> Unit:
    identities = {seq.owner_col: seq for seq in ctx.sequences[rel.oid] if seq.owner_dep == "i"}
    owned = [seq for seq in ctx.sequences[rel.oid] if seq.owner_dep == "a"]
    columns = ctx.columns[rel.oid]
    parents = [ctx.relations[oid] for oid in rel.parents]
    inherits = bool(parents) and rel.partition_bound is None
    declared, clauses, after, attach = columns, "", [], rel.partition_bound is not None
    table = f"{TARGET}.{rel.name}"
    same_layout = attach and _names(columns) == _names(ctx.columns[parents[0].oid])
    if same_layout:
        ctx.warn_if_names_template(f"partition {ctx.template}.{rel.name}", rel.partition_bound)
        table += f" PARTITION OF {TARGET}.{parents[0].name} {rel.partition_bound}"
        declared, attach = [], False
        after = _inherited_column_fixes(ctx, rel, parents)
    elif inherits and _inherits_reproduces(ctx, columns, parents):
        declared = [col for col in columns if col.is_local]
        clauses = f" INHERITS ({', '.join(f'{TARGET}.{parent.name}' for parent in parents)})"
        after = _inherited_column_fixes(ctx, rel, parents)
    elif inherits:
        _check_inherit_later(ctx, rel, columns, parents)
        after = [f"ALTER TABLE {TARGET}.{rel.name} INHERIT {TARGET}.{p.name}" for p in parents]
    if rel.partition_key:
        ctx.warn_if_names_template(f"partition key of {ctx.template}.{rel.name}", rel.partition_key)
        clauses += f" PARTITION BY {rel.partition_key}"
    definitions = ",\n    ".join(_column(ctx, rel, col, identities.get(col.name)) for col in declared)
    if not same_layout:
        table += f" (\n    {definitions}\n)"
    unlogged = "UNLOGGED " if rel.persistence == "u" else ""
    sql = f"CREATE {unlogged}TABLE {table}{clauses}"
    options = sql_options(rel.options) + sql_options(rel.toast_options, "toast.")
    sql += f" WITH ({', '.join(options)})" if options else ""
    statements = [sql, *after, *_column_settings(rel.name, declared)]
    if rel.replica_identity in ("f", "n"):
        identity = "FULL" if rel.replica_identity == "f" else "NOTHING"
        statements.append(f"ALTER TABLE {TARGET}.{rel.name} REPLICA IDENTITY {identity}")
    statements += [sql for seq in identities.values() for sql in _setval(ctx, seq)]
    statements += [
        f"ALTER SEQUENCE {TARGET}.{seq.name} OWNED BY {TARGET}.{rel.name}.{seq.owner_col}"
        for seq in owned
    ]
    locks = ctx.target(rel.oid) | {f"t{seq.oid}" for seq in [*identities.values(), *owned]}
    for parent in parents:
        locks |= ctx.target(parent.oid)
    if attach:
        statements.append(_attach(ctx, rel, parents[0]))
    if rel.partition_bound is not None:
        # Attaching scans the parent's default partition for rows that now belong elsewhere.
        for sibling in ctx.children[parents[0].oid]:
            if ctx.relations[sibling].partition_bound == "DEFAULT":
                locks |= ctx.target_tree(sibling, indexes=True)
    unit = Unit(("rel", rel.oid), TABLES, rel.name, f"table {rel.name}", statements)
    unit.locks = locks
    unit.deps.update(("seq", seq.oid) for seq in owned)
    unit.deps.update(("rel", parent.oid) for parent in parents)
    return unit


def _names(columns: list[Column]) -> list[str]:
    return [col.name for col in columns]


def _attach(ctx: PlanContext, rel: Relation, parent: Relation) -> str:
    ctx.warn_if_names_template(f"partition {ctx.template}.{rel.name}", rel.partition_bound)
    return (
        f"ALTER TABLE {TARGET}.{parent.name} ATTACH PARTITION {TARGET}.{rel.name}"
        f" {rel.partition_bound}"
    )


def _inherits_reproduces(ctx: PlanContext, columns: list[Column], parents: list[Relation]) -> bool:
    """Whether ``CREATE TABLE ... INHERITS`` gives the template's column order and inheritance counts.

    PostgreSQL puts the parents' columns first (merged by name, in parent
    order) and then the child's own; a child that was created first and
    attached with ``ALTER TABLE ... INHERIT``, or whose parent gained a column
    later, has another layout.
    """
    counts = _parent_column_counts(ctx, parents)
    expected = list(counts) + [col.name for col in columns if col.name not in counts]
    return [col.name for col in columns] == expected and all(
        col.inh_count == counts.get(col.name, 0) for col in columns
    )


def _parent_column_counts(ctx: PlanContext, parents: list[Relation]) -> dict[str, int]:
    """Each column the parents have, in inheritance order, with how many parents have it."""
    counts: dict[str, int] = {}
    for parent in parents:
        for col in ctx.columns[parent.oid]:
            counts[col.name] = counts.get(col.name, 0) + 1
    return counts


def _check_inherit_later(
    ctx: PlanContext, rel: Relation, columns: list[Column], parents: list[Relation]
) -> None:
    """A child whose layout INHERITS cannot give is reproduced by ``ALTER TABLE ... INHERIT``.

    That keeps every column local, so it only works when the template's
    columns all are; anything else has no DDL that reproduces it.
    """
    counts = _parent_column_counts(ctx, parents)
    if all(col.is_local and col.inh_count == counts.get(col.name, 0) for col in columns):
        return
    raise CloneError(
        f"schemaiso: cannot clone inherited table {ctx.template}.{rel.name}: its columns are in an"
        " order that neither CREATE TABLE ... INHERITS nor ALTER TABLE ... INHERIT reproduces"
        " (typically a column added to a parent after the child was created). Recreate the child"
        " table in a migration after its parents' last column change, so that its columns follow"
        " theirs."
    )


def _inherited_column_fixes(ctx: PlanContext, rel: Relation, parents: list[Relation]) -> list[str]:
    """Settings where a child created with INHERITS would differ from the template's child.

    An inherited column starts with its first parent's default, storage and
    compression and is NOT NULL if any parent's is; the child may have
    changed any of them since.
    """
    statements = []
    for col in ctx.columns[rel.oid]:
        sources = [pc for p in parents for pc in ctx.columns[p.oid] if pc.name == col.name]
        if not sources:
            continue
        prefix = f"ALTER TABLE ONLY {TARGET}.{rel.name} ALTER COLUMN {col.name}"
        not_null = any(pc.not_null for pc in sources) or (col.is_local and col.not_null)
        if col.not_null != not_null:
            statements.append(f"{prefix} {'SET' if col.not_null else 'DROP'} NOT NULL")
        inherited_default = next((pc.default for pc in sources if pc.default is not None), None)
        default = col.default if col.is_local and col.default is not None else inherited_default
        if not col.generated and col.default != default:
            statements.append(
                f"{prefix} SET DEFAULT {col.default}"
                if col.default is not None
                else f"{prefix} DROP DEFAULT"
            )
        if col.storage_actual != sources[0].storage_actual:
            statements.append(f"{prefix} SET STORAGE {_STORAGE[col.storage_actual]}")
        if not col.is_local and col.compression != sources[0].compression:
            statements.append(f"{prefix} SET COMPRESSION {col.compression or 'default'}")
        if not col.is_local and col.statistics is not None:
            statements.append(f"{prefix} SET STATISTICS {col.statistics}")
    return statements


def _column(ctx: PlanContext, rel: Relation, col: Column, identity: SequenceRow | None) -> str:
    sql = f"{col.name} {col.type}"
    sql += f" COMPRESSION {col.compression}" if col.compression else ""
    sql += f" COLLATE {col.collation}" if col.collation else ""
    if identity is not None:
        kind = "ALWAYS" if col.identity == "a" else "BY DEFAULT"
        options = _sequence_options(identity)
        sql += f" GENERATED {kind} AS IDENTITY (SEQUENCE NAME {TARGET}.{identity.name} {options})"
    elif col.identity:
        raise unexpected(
            f"cannot find the identity sequence of column {col.name} of {ctx.template}.{rel.name}"
        )
    if col.generated == "s":
        sql += f" GENERATED ALWAYS AS ({col.default}) STORED"
    elif col.default is not None:
        sql += f" DEFAULT {col.default}"
    return sql + (" NOT NULL" if col.not_null else "")


def _column_settings(table: str, columns: list[Column]) -> list[str]:
    """Per-column storage and statistics settings that CREATE TABLE cannot express on PG 15."""
    statements = []
    for col in columns:
        prefix = f"ALTER TABLE {TARGET}.{table} ALTER COLUMN {col.name}"
        if col.storage:
            statements.append(f"{prefix} SET STORAGE {_STORAGE[col.storage]}")
        if col.statistics is not None:
            statements.append(f"{prefix} SET STATISTICS {col.statistics}")
    return statements


def _data(ctx: PlanContext, rel: Relation) -> Unit:
    """Copy the table's own rows, before indexes, foreign keys and triggers exist.

    ``FROM ONLY`` reads no child's rows, which are copied into the child.
    Values of template-defined types go through text: there is no cast from
    the template's enum or composite to the target's.  The type name was
    deparsed unqualified, so the cast resolves to the target's type.
    """
    copied = [col for col in ctx.columns[rel.oid] if col.generated != "s"]
    names = ", ".join(copied_columns(ctx, rel.oid))
    values = ", ".join(
        f"{col.name}::text::{col.type}" if col.template_typed else col.name for col in copied
    )
    into = (
        f"{TARGET}.{rel.name} ({names}) OVERRIDING SYSTEM VALUE SELECT {values}"
        if copied
        else f"{TARGET}.{rel.name} SELECT"  # a table without columns still has rows
    )
    sql = f"INSERT INTO {into} FROM ONLY {ctx.source}.{rel.name}"
    unit = Unit(("data", rel.oid), DATA, rel.name, f"data of table {rel.name}", [sql])
    unit.locks = ctx.target(rel.oid) | ctx.source_keys(rel.oid)
    unit.deps.add(("rel", rel.oid))
    return unit


def copied_columns(ctx: PlanContext, oid: int) -> tuple[str, ...]:
    """The columns whose values a copy of the table's rows carries (not the
    stored generated ones, which the copy computes again), quoted."""
    return tuple(col.name for col in ctx.columns[oid] if col.generated != "s")


def _view(ctx: PlanContext, rel: Relation) -> Unit:
    options = sql_options(rel.options)
    with_options = f" WITH ({', '.join(options)})" if options else ""
    query = (rel.view_def or "").strip().rstrip(";")
    kind = "view" if rel.kind == "v" else "materialized view"
    ctx.warn_if_names_template(f"{kind} {ctx.template}.{rel.name}", query)
    if rel.kind == "v":
        statements = [f"CREATE VIEW {TARGET}.{rel.name}{with_options} AS\n{query}"]
        statements += [
            f"ALTER VIEW {TARGET}.{rel.name} ALTER COLUMN {col.name} SET DEFAULT {col.default}"
            for col in ctx.columns[rel.oid]
            if col.default is not None
        ]
        return Unit(("rel", rel.oid), VIEWS, rel.name, f"view {rel.name}", statements)
    data = "WITH DATA" if rel.populated else "WITH NO DATA"
    sql = f"CREATE MATERIALIZED VIEW {TARGET}.{rel.name}{with_options} AS\n{query}\n{data}"
    unit = Unit(("rel", rel.oid), VIEWS, rel.name, f"materialized view {rel.name}", [sql])
    # A materialized view reads table data, possibly through functions pg_depend cannot see.
    unit.deps.update(("data", other.oid) for other in ctx.catalog.relations if other.kind == "r")
    return unit


def add_view_locks(ctx: PlanContext) -> None:
    """Creating a view locks the relations it names; filling a materialized view, all those beneath."""
    for unit in ctx.units.values():
        if unit.key[0] == "rel" and ctx.relations[unit.key[1]].kind in ("v", "m"):
            oid = unit.key[1]
            unit.locks = ctx.target(oid) | {f"t{dep[1]}" for dep in unit.deps if dep[0] == "rel"}
            if ctx.relations[oid].kind == "m":
                for read in _relations_under(ctx, unit.key):
                    unit.locks |= ctx.target(read) | ctx.target_indexes(read)


def _relations_under(ctx: PlanContext, key: tuple[str, int]) -> set[int]:
    """Relations a view reads, directly or through other views."""
    found: set[int] = set()
    pending = [key]
    while pending:
        for dep in ctx.units[pending.pop()].deps:
            if dep[0] == "rel" and dep[1] not in found and dep in ctx.units:
                found.add(dep[1])
                pending.append(dep)
    return found
