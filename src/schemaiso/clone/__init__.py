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

Modules: ``catalog`` reads the template (its SQL is in ``catalog_sql``),
``plan`` (with one module per kind of object) turns it into ordered units of
DDL, ``run`` executes them.
"""

from __future__ import annotations

from .dbapi import Connection, Cursor
from .plan import read_template
from .reset import ResetPlan, reset_schema, structure_signature
from .run import ClonePlan, clone_schema, server_lock_budget
from .text import split_search_path

__all__ = [
    "ClonePlan",
    "Connection",
    "Cursor",
    "ResetPlan",
    "clone_schema",
    "read_template",
    "reset_schema",
    "server_lock_budget",
    "split_search_path",
    "structure_signature",
]
