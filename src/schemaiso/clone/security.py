"""Row-level security: the tables' ENABLE / FORCE flags and their policies.

Both come after the rows are copied, so the copy is never filtered by the
target's policies; the copy itself runs with ``row_security = off``, so a
template policy that would hide rows from the cloning role fails the clone
instead of silently leaving rows out.  Policy expressions are deparsed like
every other definition: names of the template's objects print unqualified
and bind to the target's.
"""

from __future__ import annotations

from .context import PlanContext
from .text import TARGET
from .units import TRIGGERS, Unit

_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def add_row_security(ctx: PlanContext) -> None:
    materialized = [("rel", rel.oid) for rel in ctx.catalog.relations if rel.kind == "m"]
    for rel in ctx.catalog.relations:
        statements = []
        if rel.row_security:
            statements.append(f"ALTER TABLE {TARGET}.{rel.name} ENABLE ROW LEVEL SECURITY")
        if rel.force_row_security:
            statements.append(f"ALTER TABLE {TARGET}.{rel.name} FORCE ROW LEVEL SECURITY")
        if statements:
            unit = Unit(
                ("rls", rel.oid), TRIGGERS, rel.name, f"row-level security of {rel.name}", statements
            )
            unit.locks = ctx.target(rel.oid)
            # Materialized views are filled as the template's were: without this table's policies.
            unit.deps |= ctx.after_rows(rel.oid) | set(materialized)
            ctx.add(unit)


def add_policies(ctx: PlanContext) -> None:
    for pol in ctx.catalog.policies:
        table = ctx.rel_name(pol.rel)
        what = f"policy {pol.name} on {ctx.template}.{table}"
        kind = "PERMISSIVE" if pol.permissive else "RESTRICTIVE"
        sql = (
            f"CREATE POLICY {pol.name} ON {TARGET}.{table} AS {kind} FOR {_COMMANDS[pol.command]}"
            f" TO {', '.join(pol.roles)}"
        )
        if pol.using is not None:
            ctx.warn_if_names_template(what, pol.using)
            sql += f" USING ({pol.using})"
        if pol.check is not None:
            ctx.warn_if_names_template(what, pol.check)
            sql += f" WITH CHECK ({pol.check})"
        unit = Unit(("pol", pol.oid), TRIGGERS, table, what, [sql])
        unit.locks = ctx.target(pol.rel)
        unit.deps |= ctx.after_rows(pol.rel)
        ctx.add(unit, ("pg_policy", pol.oid))
