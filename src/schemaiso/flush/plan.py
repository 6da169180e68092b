"""Which tables a flush must empty, and how, from the catalog alone (no SQL runs here).

Django's flush is one ``TRUNCATE`` of every table of the project's models (with
``CASCADE`` when a test names its ``available_apps``). This plans the same
outcome for less: the *members* are the tables that ``TRUNCATE`` would empty
(the named tables, their partitions and inheritance children, and with
``CASCADE`` every table that references one of them), and only those that hold
rows are emptied:

- ``TRUNCATE`` for tables whose emptying by ``DELETE`` would differ (their own
  ``DELETE``/``UPDATE`` triggers, ``DELETE`` rules, row security), tables a
  ``DELETE`` would cost more than a ``TRUNCATE`` (many pages, foreign keys
  checking each row), and cycles of foreign keys checked at once. PostgreSQL
  refuses to truncate a table that another references unless that one is in the
  same statement, even when it is empty: the set is closed over referencing tables.
- ``DELETE`` for the rest, referencing tables first: it makes no new files.

Where the plan cannot promise Django's outcome it gives a reason and the caller
runs Django's own statement instead: a name that resolves outside the schema, a
foreign table, a table outside the flush referencing one inside (Django's
``TRUNCATE`` fails there, and must), a ``TRUNCATE`` trigger (Django's flush fires
it on every table of the project, empty or not, and after all of them are empty).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..naming import quote_ident
from .catalog import TRIGGER_DELETE, TRIGGER_TRUNCATE, TRIGGER_UPDATE, FlushCatalog

# Measured on this project's 300-model benchmark (2 cores, PostgreSQL 15, fsync on):
# TRUNCATE costs about 2 ms a table whatever it holds (new files for the table, its
# TOAST and indexes); DELETE 0.06 ms a page, plus about 1.9 ms a page for each
# foreign key referencing the table (the check runs for every row). Emptying
# django_content_type and auth_permission at 300 models: DELETE 30 ms, TRUNCATE
# of them and their two referencing tables 7 ms.
_TRUNCATE_MS_PER_TABLE = 2.0
_DELETE_MS_PER_PAGE = 0.06
_CHECK_MS_PER_PAGE_AND_KEY = 1.9


@dataclass(frozen=True)
class Members:
    """The tables a flush empties, as ``TRUNCATE`` would see them."""

    catalog: FlushCatalog
    #: Relation oids the flush names or cascades to (the statement's tables).
    tables: frozenset[int]
    #: Each member and the relations it covers (itself, partitions, children).
    covers: dict[int, frozenset[int]]
    #: member -> members referencing it by a foreign key, and whether every such
    #: key between the two is checked at commit.
    referenced_by: dict[int, dict[int, bool]] = field(default_factory=dict)

    def has_triggers(self, member: int, bits: int) -> bool:
        """Whether a relation ``member`` covers has a trigger on one of the events ``bits``."""
        rels = self.catalog.relations
        return any(rels[oid].trigger_types & bits for oid in self.covers[member])

    def maybe_holding_rows(self) -> list[int]:
        """Members a page of which exists somewhere: the others hold no rows."""
        rels = self.catalog.relations
        return sorted(m for m in self.tables if any(rels[o].pages for o in self.covers[m]))

    def unprobeable(self, member: int) -> bool:
        """Row security may hide rows from a probe (and a ``DELETE`` rule would rewrite
        the ``DELETE``): such a table with pages is truncated without a probe."""
        rels = self.catalog.relations
        return any(rels[o].rewritten for o in self.covers[member])

    def qualified(self, member: int) -> str:
        return f"{quote_ident(self.catalog.schema)}.{self.catalog.relations[member].name}"


def members(catalog: FlushCatalog, tables: Iterable[str], *, cascade: bool) -> Members | str:
    """The members of a flush of ``tables``, or why the fast flush cannot promise
    Django's outcome."""
    rels = catalog.relations
    chosen: set[int] = set()
    for name in tables:
        oid = catalog.resolved.get(name)
        if oid is None or oid not in rels:
            return f"table {name!r} is not in schema {catalog.schema!r}"
        chosen.add(oid)
    children: dict[int, list[int]] = {}
    for rel in rels.values():
        for parent in rel.parents:
            children.setdefault(parent, []).append(rel.oid)

    def covered(oid: int) -> frozenset[int]:
        found, pending = {oid}, [oid]
        while pending:
            for child in children.get(pending.pop(), ()):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return frozenset(found)

    while True:
        covers = {m: covered(m) for m in chosen}
        owners: dict[int, set[int]] = {}
        for member, rel_oids in covers.items():
            for oid in rel_oids:
                owners.setdefault(oid, set()).add(member)
        outside = [k for k in catalog.foreign_keys if k.referenced in owners and k.referencing not in owners]
        if not outside:
            break
        for key in outside:
            if key.referencing not in rels:
                return f"a table outside schema {catalog.schema!r} references one of its tables"
            if not cascade:
                # Django's TRUNCATE fails here; its own flush reports it.
                return (f"table {rels[key.referencing].name} references "
                        f"{rels[key.referenced].name} and is not flushed")
            chosen.add(key.referencing)
    if any(rels[oid].kind == "f" for oid in owners):
        return "a foreign table is flushed"
    if any(rels[oid].trigger_types & TRIGGER_TRUNCATE for oid in owners):
        return "a flushed table has a TRUNCATE trigger"
    referenced_by: dict[int, dict[int, bool]] = {}
    for key in catalog.foreign_keys:
        if key.referenced not in owners:
            continue
        for target in owners[key.referenced]:
            for source in owners[key.referencing]:
                edges = referenced_by.setdefault(target, {})
                edges[source] = edges.get(source, True) and key.deferred
    return Members(catalog=catalog, tables=frozenset(chosen), covers=covers,
                   referenced_by=referenced_by)


@dataclass(frozen=True)
class FlushStatements:
    truncated: tuple[int, ...]
    #: In the order they run: referencing tables first.
    deleted: tuple[int, ...]
    sql: tuple[str, ...]


def statements(found: Members, dirty: set[int]) -> FlushStatements:
    """What empties ``dirty`` (the members holding rows) as Django's flush would."""
    rels = found.catalog.relations

    def closure(start: Iterable[int]) -> set[int]:
        result, pending = set(start), list(start)
        while pending:
            for source in found.referenced_by.get(pending.pop(), {}):
                if source not in result:
                    result.add(source)
                    pending.append(source)
        return result

    effects = TRIGGER_DELETE | TRIGGER_UPDATE
    truncated = closure({m for m in dirty if found.has_triggers(m, effects) or found.unprobeable(m)})

    def delete_ms(member: int) -> float:
        pages = sum(rels[o].pages for o in found.covers[member])
        keys = len(found.referenced_by.get(member, {}))
        return pages * (_DELETE_MS_PER_PAGE + _CHECK_MS_PER_PAGE_AND_KEY * keys)

    for member in sorted(dirty - truncated, key=delete_ms, reverse=True):
        if member in truncated:
            continue
        added = closure([member]) - truncated
        if delete_ms(member) > _TRUNCATE_MS_PER_TABLE * len(added):
            truncated |= added
    while True:
        deleted, cycle = _referencing_first(found, dirty - truncated)
        if not cycle:
            break
        truncated |= closure(cycle)
    sql = []
    if truncated:
        sql.append("TRUNCATE " + ", ".join(found.qualified(m) for m in sorted(truncated)))
    if deleted:
        sql.append(";\n".join(f"DELETE FROM {found.qualified(m)}" for m in deleted))
    return FlushStatements(truncated=tuple(sorted(truncated)), deleted=tuple(deleted), sql=tuple(sql))


def _referencing_first(found: Members, chosen: set[int]) -> tuple[list[int], set[int]]:
    """``chosen`` ordered so that keys checked at once never see a referenced row
    go before the rows referencing it, and the members no order can place (a cycle
    of such keys, and what hangs on it). A table referencing itself is fine: one
    ``DELETE`` removes all its rows before the statement's checks run."""
    before: dict[int, set[int]] = {m: set() for m in chosen}  # member -> must go first
    for target in chosen:
        for source, deferred in found.referenced_by.get(target, {}).items():
            if source in chosen and source != target and not deferred:
                before[target].add(source)
    order: list[int] = []
    done: set[int] = set()
    while len(order) < len(chosen):
        ready = sorted(m for m in chosen if m not in done and before[m] <= done)
        if not ready:
            return order, chosen - done
        order += ready
        done.update(ready)
    return order, set()
