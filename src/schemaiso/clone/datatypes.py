"""Collations, enum, domain and composite types of the template, recreated in the target.

Columns of the target must use the target's own types and collations: a
worker column typed with the template's enum would make every worker depend
on the template (dropping it would cascade into them).
"""

from __future__ import annotations

import json

from schemaiso.naming import quote_literal

from .catalog import Collation, Type
from .context import PlanContext
from .text import TARGET, unexpected
from .units import TABLES, TYPES, Unit


def add_collations(ctx: PlanContext) -> None:
    for coll in ctx.catalog.collations:
        sql = f"CREATE COLLATION {TARGET}.{coll.name} {collation_definition(coll)}"
        ctx.add(
            Unit(("coll", coll.oid), TYPES, coll.name, f"collation {coll.name}", [sql]),
            ("pg_collation", coll.oid),
        )


_PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}


def collation_definition(coll: Collation) -> str:
    """What follows ``CREATE COLLATION name``, spelled out from the catalog rather
    than ``FROM template.name``, so the plan does not need the template (a snapshot
    restores it on another server).

    A libc collation usable with any encoding (``collencoding`` -1) exists only as a
    copy of ``C`` or ``POSIX``: one spelled out with options gets the database's
    encoding, so that one is copied from pg_catalog's, as it was made.
    """
    settings = json.loads(coll.settings)
    provider = _PROVIDERS.get(str(settings.get("collprovider")))
    collate, ctype = settings.get("collcollate"), settings.get("collctype")
    if provider == "libc" and settings.get("collencoding") == -1 and collate == ctype \
            and collate in ("C", "POSIX"):
        return f'FROM pg_catalog."{collate}"'
    if provider is None:
        raise unexpected(f"cannot clone collation {coll.name}: unknown provider {settings!r}")
    options = [f"provider = {provider}"]
    if provider == "libc":
        options += [f"lc_collate = {quote_literal(str(collate))}",
                    f"lc_ctype = {quote_literal(str(ctype))}"]
    else:
        locale = settings.get("colllocale") or settings.get("colliculocale")
        options.append(f"locale = {quote_literal(str(locale))}")
    if settings.get("collicurules"):
        options.append(f"rules = {quote_literal(str(settings['collicurules']))}")
    if not settings.get("collisdeterministic", True):
        options.append("deterministic = false")
    if settings.get("collversion") is not None:
        options.append(f"version = {quote_literal(str(settings['collversion']))}")
    return f"({', '.join(options)})"


def add_types(ctx: PlanContext) -> None:
    for typ in ctx.catalog.types:
        key = ("type", typ.oid)
        objects = [("pg_type", typ.oid), ("pg_type", typ.array)]
        if typ.kind == "e":
            labels = ", ".join(quote_literal(label) for label in typ.labels)
            sql = f"CREATE TYPE {TARGET}.{typ.name} AS ENUM ({labels})"
        elif typ.kind == "d":
            sql = f"CREATE DOMAIN {TARGET}.{typ.name} AS {typ.base}"
            sql += f" COLLATE {typ.collation}" if typ.collation else ""
            sql += " NOT NULL" if typ.not_null else ""
            _domain_extras(ctx, typ)
        else:
            attributes = ", ".join(
                f"{col.name} {col.type}" + (f" COLLATE {col.collation}" if col.collation else "")
                for col in ctx.columns[typ.relid]
            )
            sql = f"CREATE TYPE {TARGET}.{typ.name} AS ({attributes})"
            objects.append(("pg_class", typ.relid))
        ctx.add(Unit(key, TYPES, typ.name, f"type {typ.name}", [sql]), *objects)


def _domain_extras(ctx: PlanContext, typ: Type) -> None:
    """A domain's default and constraints, which may call functions taking the domain itself."""
    what = f"domain {ctx.template}.{typ.name}"
    ctx.warn_if_names_template(what, typ.default)
    statements = (
        [f"ALTER DOMAIN {TARGET}.{typ.name} SET DEFAULT {typ.default}"] if typ.default else []
    )
    constraints = [con for con in ctx.catalog.constraints if con.domain == typ.oid]
    for con in constraints:
        ctx.warn_if_names_template(f"constraint {con.name} of {what}", con.definition)
    statements += [
        f"ALTER DOMAIN {TARGET}.{typ.name} ADD CONSTRAINT {con.name} {con.definition}"
        for con in constraints
    ]
    if not statements:
        return
    unit = Unit(
        ("domain", typ.oid), TABLES, typ.name, f"constraints of domain {typ.name}", statements
    )
    unit.deps.add(("type", typ.oid))
    ctx.add(unit, *(("pg_constraint", con.oid) for con in constraints))


def add_domain_locks(ctx: PlanContext) -> None:
    """Adding a domain constraint checks, and so locks, every table with a column of the domain."""
    for typ in ctx.catalog.types:
        unit = ctx.units.get(("domain", typ.oid))
        if unit is not None:
            users = {
                col.rel for col in ctx.catalog.columns if col.type in (typ.name, typ.name + "[]")
            }
            unit.locks = {f"domain{typ.oid}"}.union(
                *(ctx.target(rel) for rel in users if rel in ctx.relations)
            )
