"""Planning a clone: catalog rows to ordered units of DDL, once per template.

Each object kind has its own module (datatypes, routines, tables,
constraints, triggers, security); this one runs them, then places comments,
turns pg_depend into ordering constraints, and orders the units.
"""

from __future__ import annotations

from contextlib import closing

from schemaiso.naming import quote_literal

from .catalog import read_catalog
from .constraints import add_constraints_and_indexes
from .context import PlanContext
from .datatypes import add_collations, add_domain_locks, add_types
from .dbapi import Connection
from .reset import ResetPlan
from .routines import add_functions
from .run import ClonePlan
from .security import add_policies, add_row_security
from .tables import add_relations, add_sequences, add_view_locks, copied_columns
from .text import TARGET
from .triggers import add_rules, add_triggers
from .units import Unit, ordered


def read_template(conn: Connection, template: str, shared: str = "public") -> ClonePlan:
    """Read the template's catalog once (a query per object kind, not per table) and prepare the clone.

    Raises CloneError for anything the engine cannot copy faithfully, so that
    workers never silently differ from the template.
    """
    with closing(conn.cursor()) as cur:
        catalog = read_catalog(cur, template, shared)
    ctx = PlanContext(template, catalog)
    add_collations(ctx)
    add_types(ctx)
    add_sequences(ctx)
    add_functions(ctx)
    add_relations(ctx)
    add_constraints_and_indexes(ctx)
    add_triggers(ctx)
    add_rules(ctx)
    add_row_security(ctx)
    add_policies(ctx)
    _add_comments(ctx)
    _add_dependencies(ctx)
    add_view_locks(ctx)
    _add_reference_locks(ctx)
    add_domain_locks(ctx)
    units = ordered(ctx.units, template)
    steps = tuple((unit.script(), unit.lock_keys()) for unit in units)
    return ClonePlan(
        template=template,
        shared=shared,
        table_count=sum(1 for rel in catalog.relations if rel.kind == "r"),
        warnings=tuple(ctx.warnings),
        steps=steps,
        reset=_reset_plan(ctx, units),
        retarget=tuple(ctx.retarget),
        row_copies=tuple(
            (index, ctx.relations[unit.key[1]].name, copied_columns(ctx, unit.key[1]))
            for index, unit in enumerate(units) if unit.key[0] == "data"
        ),
    )


def _reset_plan(ctx: PlanContext, units: list[Unit]) -> ResetPlan:
    """What ``reset_schema`` needs: the tables, the template's rows and sequence values."""
    catalog = ctx.catalog
    copies = {unit.key[1]: unit.script() for unit in units if unit.key[0] == "data"}
    seeded = _parents_first(ctx, list(copies))
    firing = {t.rel for t in catalog.triggers} | {r.rel for r in catalog.rules}
    declined_by = sorted(ctx.relations[oid].name for oid in firing & set(seeded))
    declined = (
        f"triggers or rules on tables the template has rows in ({', '.join(declined_by)}) "
        "would fire"
        if declined_by
        else None
    )
    tables = _parents_first(ctx, [rel.oid for rel in catalog.relations if rel.kind == "r"])
    return ResetPlan(
        tables=tuple(ctx.relations[oid].name for oid in reversed(tables)),
        with_triggers=frozenset(ctx.relations[oid].name for oid in firing),
        seeded=tuple(ctx.relations[oid].name for oid in seeded),
        copies=tuple(copies[oid] for oid in seeded),
        sequences=tuple(
            (seq.name, *catalog.sequence_values[seq.oid]) for seq in catalog.sequences
        ),
        matviews=tuple(
            (ctx.relations[unit.key[1]].name, ctx.relations[unit.key[1]].populated)
            for unit in units
            if unit.key[0] == "rel" and ctx.relations[unit.key[1]].kind == "m"
        ),
        declined=declined,
        source=ctx.source,
        referenced_by=_referenced_by(ctx, set(seeded)),
    )


def _referenced_by(ctx: PlanContext, seeded: set[int]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """For each table, the tables the template has rows in that reference it by a
    foreign key (a partitioned table stands for its partitions, either side)."""
    found: dict[int, set[int]] = {}
    for con in ctx.catalog.constraints:
        if con.kind != "f":
            continue
        referencing = [oid for oid in _row_tables(ctx, con.rel) if oid in seeded]
        for oid in _row_tables(ctx, con.ref_rel):
            found.setdefault(oid, set()).update(r for r in referencing if r != oid)
    return tuple(
        (ctx.relations[oid].name, tuple(sorted(ctx.relations[r].name for r in refs)))
        for oid, refs in sorted(found.items(), key=lambda item: ctx.relations[item[0]].name)
        if refs
    )


def _row_tables(ctx: PlanContext, oid: int) -> list[int]:
    """``oid`` and its partitions and inheritance children, all levels down, that
    store rows of their own (the tables a reset empties)."""
    found, pending = [], [oid]
    while pending:
        current = pending.pop()
        if current in ctx.relations and ctx.relations[current].kind == "r":
            found.append(current)
        pending.extend(ctx.children.get(current, ()))
    return found


def _parents_first(ctx: PlanContext, oids: list[int]) -> list[int]:
    """Tables ordered so that one a foreign key references comes before the tables
    referencing it. A reset fills tables in this order and empties them in the
    reverse: its constraints exist, and one that is not deferrable checks every row
    at once. Cycles keep their given order."""
    pending = dict.fromkeys(oids)
    needs: dict[int, set[int]] = {oid: set() for oid in oids}
    for con in ctx.catalog.constraints:
        if con.kind == "f" and con.rel in needs and con.ref_rel in needs and con.rel != con.ref_rel:
            needs[con.rel].add(con.ref_rel)
    result: list[int] = []
    while pending:
        ready = [oid for oid in pending if not needs[oid] & pending.keys()]
        for oid in ready or list(pending):  # a cycle: take the rest as given
            del pending[oid]
            result.append(oid)
    return result


def _add_comments(ctx: PlanContext) -> None:
    """COMMENT ON statements, appended to the unit that creates the object."""
    targets = _comment_targets(ctx)
    for comment in ctx.catalog.comments:
        key = ctx.owner.get((comment.catalog, comment.oid))
        target = targets.get((comment.catalog, comment.oid, comment.sub))
        if key is not None and target is not None:
            ctx.units[key].statements.append(
                f"COMMENT ON {target} IS {quote_literal(comment.text)}"
            )


def _comment_targets(ctx: PlanContext) -> dict[tuple[str, int, int], str]:
    """How COMMENT ON names each commentable object, keyed like pg_description."""
    catalog = ctx.catalog
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
    relations = {rel.oid: (rel.name, kinds[rel.kind]) for rel in catalog.relations}
    relations.update((typ.relid, (typ.name, "TYPE")) for typ in catalog.types if typ.kind == "c")
    relations.update((seq.oid, (seq.name, "SEQUENCE")) for seq in catalog.sequences)
    relations.update((index.oid, (index.name, "INDEX")) for index in catalog.indexes)
    targets: dict[tuple[str, int, int], str] = {}
    for oid, (name, kind) in relations.items():
        targets["pg_class", oid, 0] = f"{kind} {TARGET}.{name}"
    for col in catalog.columns:
        targets["pg_class", col.rel, col.num] = f"COLUMN {TARGET}.{relations[col.rel][0]}.{col.name}"
    for fn in catalog.functions:
        keyword = "PROCEDURE" if fn.kind == "p" else "FUNCTION"
        targets["pg_proc", fn.oid, 0] = f"{keyword} {TARGET}.{fn.name}({fn.args})"
    for typ in catalog.types:
        targets["pg_type", typ.oid, 0] = f"{'DOMAIN' if typ.kind == 'd' else 'TYPE'} {TARGET}.{typ.name}"
    for con in catalog.constraints:
        on = (
            f"DOMAIN {TARGET}.{ctx.types[con.domain].name}"
            if con.domain
            else f"{TARGET}.{ctx.rel_name(con.rel)}"
        )
        targets["pg_constraint", con.oid, 0] = f"CONSTRAINT {con.name} ON {on}"
    for trg in catalog.triggers:
        targets["pg_trigger", trg.oid, 0] = f"TRIGGER {trg.name} ON {TARGET}.{ctx.rel_name(trg.rel)}"
    for pol in catalog.policies:
        targets["pg_policy", pol.oid, 0] = f"POLICY {pol.name} ON {TARGET}.{ctx.rel_name(pol.rel)}"
    for rule in catalog.rules:
        targets["pg_rewrite", rule.oid, 0] = f"RULE {rule.name} ON {TARGET}.{ctx.rel_name(rule.rel)}"
    for coll in catalog.collations:
        targets["pg_collation", coll.oid, 0] = f"COLLATION {TARGET}.{coll.name}"
    return targets


def _add_dependencies(ctx: PlanContext) -> None:
    """Turn pg_depend rows between template objects into ordering constraints between units.

    A sequence's dependency on the column owning it is reversed (the table
    needs the sequence for its default), and a domain's dependencies on
    functions belong to its default and constraints, not to the domain.
    """
    for dep in ctx.catalog.dependencies:
        if dep.catalog == "pg_class" and ("seq", dep.oid) in ctx.units:
            continue
        unit = ctx.owner.get((dep.catalog, dep.oid))
        ref = ctx.owner.get((dep.ref_catalog, dep.ref_oid))
        if unit is None or ref is None:
            continue
        if unit[0] == "type" and dep.ref_catalog not in ("pg_type", "pg_collation"):
            unit = ("domain", unit[1]) if ("domain", unit[1]) in ctx.units else unit
        if unit != ref:
            ctx.units[unit].deps.add(ref)


def _add_reference_locks(ctx: PlanContext) -> None:
    """Rules and policies lock the relations their expressions name, as views do."""
    for unit in ctx.units.values():
        if unit.key[0] in ("rule", "pol"):
            unit.locks |= {f"t{dep[1]}" for dep in unit.deps if dep[0] == "rel"}
