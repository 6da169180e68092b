"""What a flush needs to know about a worker's schema, read in one round trip.

Django's flush lists tables with ``pg_table_is_visible`` over all of ``pg_class``,
where every worker's schema (and the template) lies; this reads the worker's
schema alone, by namespace: its tables with their size in pages, triggers,
rules, row security and inheritance, the foreign keys that reference them, and
where each table name the flush was given resolves on the ``search_path`` (as
``TRUNCATE "name"`` would resolve it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: ``pg_trigger.tgtype`` bits (PostgreSQL's ``TRIGGER_TYPE_*``).
TRIGGER_DELETE = 1 << 3
TRIGGER_UPDATE = 1 << 4
TRIGGER_TRUNCATE = 1 << 5


@dataclass(frozen=True)
class Relation:
    """A table of the schema (plain, partitioned, partition, child or foreign)."""

    oid: int
    #: Its name as an SQL identifier (``quote_ident``), ready to put after the schema.
    name: str
    #: ``pg_class.relkind``: 'r' plain (or partition), 'p' partitioned, 'f' foreign.
    kind: str
    #: Pages of its heap (0 for a partitioned or foreign table): none means no rows.
    pages: int
    #: The OR of the ``tgtype`` of its own triggers (not the internal FK ones).
    trigger_types: int
    #: A ``DELETE`` rule or row security: a ``DELETE`` would not do what ``TRUNCATE`` does.
    rewritten: bool
    #: The tables it inherits from (its partitioned table, or inheritance parents).
    parents: tuple[int, ...]


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key that references a table of the schema."""

    referencing: int
    referenced: int
    #: ``DEFERRABLE INITIALLY DEFERRED`` (Django's own): checked at commit.
    deferred: bool


@dataclass(frozen=True)
class FlushCatalog:
    schema: str
    relations: dict[int, Relation]
    #: Each table name the flush was given, and the relation it resolves to (None: none).
    resolved: dict[str, int | None]
    foreign_keys: tuple[ForeignKey, ...]


_QUERY = """
WITH ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s),
rels AS (
    SELECT c.oid, c.relname, c.relkind, c.relrowsecurity,
           CASE WHEN c.relkind = 'r' THEN pg_catalog.pg_relation_size(c.oid) / 8192 ELSE 0 END AS pages
    FROM pg_catalog.pg_class c, ns
    WHERE c.relnamespace = ns.oid AND c.relkind IN ('r', 'p', 'f')
)
SELECT pg_catalog.json_build_object(
    'relations', (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(
        r.oid, pg_catalog.quote_ident(r.relname), r.relkind, r.pages,
        (SELECT coalesce(bit_or(t.tgtype::int), 0) FROM pg_catalog.pg_trigger t
         WHERE t.tgrelid = r.oid AND NOT t.tgisinternal),
        r.relrowsecurity OR EXISTS (SELECT FROM pg_catalog.pg_rewrite w
                                    WHERE w.ev_class = r.oid AND w.ev_type = '4'),
        (SELECT pg_catalog.json_agg(i.inhparent) FROM pg_catalog.pg_inherits i
         WHERE i.inhrelid = r.oid)
    )) FROM rels r),
    'resolved', (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(
        n.name, pg_catalog.to_regclass(pg_catalog.quote_ident(n.name))::oid
    )) FROM pg_catalog.unnest(%s::text[]) n(name)),
    'foreign_keys', (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(
        k.conrelid, k.confrelid, k.condeferrable AND k.condeferred
    )) FROM pg_catalog.pg_constraint k
    WHERE k.contype = 'f' AND k.confrelid IN (SELECT oid FROM rels))
)::text
"""


def read_catalog(cursor: Any, schema: str, tables: list[str]) -> FlushCatalog:
    """The flush's view of ``schema``, for the table names ``tables``."""
    cursor.execute(_QUERY, [schema, list(tables)])
    found = json.loads(cursor.fetchone()[0])
    relations = {
        int(row[0]): Relation(oid=int(row[0]), name=row[1], kind=row[2], pages=int(row[3]),
                              trigger_types=int(row[4]), rewritten=bool(row[5]),
                              parents=tuple(int(p) for p in row[6] or ()))
        for row in found["relations"] or ()
    }
    return FlushCatalog(
        schema=schema,
        relations=relations,
        # oids come as JSON numbers or strings (to_regclass's cast): ints here.
        resolved={name: None if oid is None else int(oid) for name, oid in found["resolved"] or ()},
        foreign_keys=tuple(ForeignKey(referencing=int(a), referenced=int(b), deferred=bool(d))
                           for a, b, d in found["foreign_keys"] or ()),
    )
