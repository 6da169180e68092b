"""Triggers and rules: what fires on a table's rows, so it is created after the rows are copied.

A trigger on a partitioned table is cloned by PostgreSQL onto every
partition; only the parent's is written out, followed by the enabled state
of each clone.  Rules are read pretty-printed, which names their table as
the search path shows it, and rebuilt after checking that exact prefix.
"""

from __future__ import annotations

from collections import defaultdict

from .catalog import Trigger
from .context import PlanContext
from .text import TARGET, find_unquoted, strip_prefix, unexpected
from .units import TRIGGERS, Unit

_TRIGGER_STATES = {
    "O": "ENABLE TRIGGER",
    "D": "DISABLE TRIGGER",
    "R": "ENABLE REPLICA TRIGGER",
    "A": "ENABLE ALWAYS TRIGGER",
}
_RULE_STATES = {"D": "DISABLE RULE", "R": "ENABLE REPLICA RULE", "A": "ENABLE ALWAYS RULE"}


def add_triggers(ctx: PlanContext) -> None:
    clones: dict[int, list[Trigger]] = defaultdict(list)
    for trg in ctx.catalog.triggers:
        if trg.parent:
            clones[trg.parent].append(trg)
    for trg in ctx.catalog.triggers:
        if trg.parent:
            continue
        rel = ctx.relations[trg.rel]
        what = f"trigger {trg.name} on {ctx.template}.{rel.name}"
        rest = strip_prefix(trg.definition, trg.prefix, what)
        on = find_unquoted(rest, trg.on_clause)
        if on < 0:
            raise unexpected(f"cannot find {trg.on_clause.strip()!r} in the definition of {what}")
        events, after = rest[:on], rest[on + len(trg.on_clause) :]
        ctx.warn_if_names_template(what, after)
        statements = [f"{trg.prefix}{events} ON {TARGET}.{rel.name} {after}"]
        family = _clones_of(trg, clones)
        unit = Unit(("trg", trg.oid), TRIGGERS, rel.name, what, statements)
        if trg.enabled != "O" or any(clone.enabled != "O" for clone in family):
            # Each table's state explicitly, parents first: whether a parent's
            # change reaches its partitions has varied between PostgreSQL releases.
            only = "ONLY " if rel.kind == "p" else ""
            statements.append(
                f"ALTER TABLE {only}{TARGET}.{rel.name} {_TRIGGER_STATES[trg.enabled]} {trg.name}"
            )
            statements += [
                f"ALTER TABLE ONLY {TARGET}.{ctx.rel_name(clone.rel)}"
                f" {_TRIGGER_STATES[clone.enabled]} {clone.name}"
                for clone in family
            ]
        unit.locks = ctx.target_tree(trg.rel) | {f"t{trg.oid}"}
        unit.deps |= ctx.after_rows(trg.rel)
        objects = [("pg_trigger", trg.oid)] + [("pg_trigger", clone.oid) for clone in family]
        if trg.constraint:
            objects.append(("pg_constraint", trg.constraint))
        ctx.add(unit, *objects)


def _clones_of(trg: Trigger, clones: dict[int, list[Trigger]]) -> list[Trigger]:
    """The trigger's clones on partitions, sub-partitions' after their partition's."""
    found: list[Trigger] = []
    pending = [trg]
    while pending:
        children = clones[pending.pop(0).oid]
        found += children
        pending += children
    return found


def add_rules(ctx: PlanContext) -> None:
    for rule in ctx.catalog.rules:
        table = ctx.rel_name(rule.rel)
        what = f"rule {rule.name} on {ctx.template}.{table}"
        rest = strip_prefix(rule.definition, rule.prefix, what).rstrip().removesuffix(";")
        ctx.warn_if_names_template(what, rest)
        statements = [f"CREATE RULE {rule.name} AS ON {rule.event} TO {TARGET}.{table}{rest}"]
        if rule.enabled in _RULE_STATES:
            statements.append(f"ALTER TABLE {TARGET}.{table} {_RULE_STATES[rule.enabled]} {rule.name}")
        unit = Unit(("rule", rule.oid), TRIGGERS, table, what, statements)
        unit.locks = ctx.target(rule.rel)
        unit.deps |= ctx.after_rows(rule.rel)
        ctx.add(unit, ("pg_rewrite", rule.oid))
