"""Functions and procedures, with their own ``SET search_path`` repointed to the target.

A body is text PostgreSQL does not resolve until it runs, so it is copied as
is (bodies with unqualified names then read the worker's tables through the
worker's search_path); a body naming the template is reported, not rewritten.
"""

from __future__ import annotations

from schemaiso.naming import quote_literal

from .catalog import Function
from .context import PlanContext
from .text import TARGET, split_search_path, strip_prefix, unexpected
from .units import FUNCTIONS, Unit


def add_functions(ctx: PlanContext) -> None:
    for fn in ctx.catalog.functions:
        kind = "procedure" if fn.kind == "p" else "function"
        what = f"{kind} {ctx.template}.{fn.name}({fn.arg_types})"
        if fn.definition is None:
            # catalog refuses aggregates before planning, so this is a shape it did not expect.
            raise unexpected(f"cannot clone aggregate {what}")
        rest = strip_prefix(fn.definition, fn.prefix, what)
        keyword = "PROCEDURE" if fn.kind == "p" else "FUNCTION"
        statements = [f"CREATE {keyword} {TARGET}.{fn.name}({rest.rstrip()}"]
        statements += _function_search_path(ctx, fn, keyword)
        ctx.warn_if_names_template(what, fn.source, "body")
        ctx.add(Unit(("func", fn.oid), FUNCTIONS, fn.name, what, statements), ("pg_proc", fn.oid))


def _function_search_path(ctx: PlanContext, fn: Function, keyword: str) -> list[str]:
    """Repoint a function's own ``SET search_path`` from the template to the target."""
    for setting in fn.config:
        name, _, value = setting.partition("=")
        if name != "search_path":
            continue
        schemas = split_search_path(value)
        if ctx.template not in schemas:
            return []
        items = ", ".join(
            TARGET if schema == ctx.template else quote_literal(schema) for schema in schemas
        )
        statement = f"ALTER {keyword} {TARGET}.{fn.name}({fn.args}) SET search_path TO {items}"
        ctx.retarget.append(statement)
        return [statement]
    return []
