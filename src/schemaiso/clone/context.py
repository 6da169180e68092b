"""What every planning step shares: the catalog, indexed, and the units built so far.

The lock-key helpers live here because every kind of object estimates its
locks the same way: a key per relation (and its TOAST table and index) of the
target, or of the template for the rows read from it.
"""

from __future__ import annotations

from collections import defaultdict

from .catalog import Catalog, Column, SequenceRow
from .text import names_schema
from .units import Key, Unit


class PlanContext:
    """The template's catalog with lookups, plus the units, owners and warnings being built."""

    def __init__(self, template: str, catalog: Catalog) -> None:
        self.template = template
        self.catalog = catalog
        self.source = catalog.quoted  # the template, quoted, for reading its data
        self.units: dict[Key, Unit] = {}
        self.warnings: list[str] = []
        # Statements that name the copy's own schema (a function's SET search_path),
        # to run again when a copy is renamed.
        self.retarget: list[str] = []
        # (catalog, oid) of a template object -> the unit that creates it
        self.owner: dict[tuple[str, int], Key] = {}
        self.relations = {rel.oid: rel for rel in catalog.relations}
        self.columns: dict[int, list[Column]] = defaultdict(list)
        for column in catalog.columns:
            self.columns[column.rel].append(column)
        self.types = {typ.oid: typ for typ in catalog.types}
        self.sequences: dict[int | None, list[SequenceRow]] = defaultdict(list)
        for seq in catalog.sequences:
            self.sequences[seq.owner_rel].append(seq)
        self.index_oids: dict[int, list[int]] = defaultdict(list)
        for index in catalog.indexes:
            self.index_oids[index.rel].append(index.oid)
        # Direct inheritance children and partitions of each table.
        self.children: dict[int, list[int]] = defaultdict(list)
        for rel in catalog.relations:
            for parent in rel.parents:
                self.children[parent].append(rel.oid)

    def add(self, unit: Unit, *objects: tuple[str, int]) -> Unit:
        self.units[unit.key] = unit
        for obj in objects:
            self.owner[obj] = unit.key
        return unit

    def rel_name(self, oid: int) -> str:
        return self.relations[oid].name

    def family(self, oid: int) -> list[int]:
        """A table and all its descendants (inheritance children, partitions, their children)."""
        found: list[int] = []
        pending = [oid]
        while pending:
            current = pending.pop()
            if current not in found:
                found.append(current)
                pending.extend(reversed(self.children[current]))
        return found

    def after_rows(self, oid: int) -> set[Key]:
        """Units to wait for before anything that checks or fires on a relation's rows.

        For a table with children or partitions that is every descendant's
        data, because constraints and triggers added to a parent recurse.
        """
        keys: set[Key] = {("rel", oid)}
        keys.update(("data", rel) for rel in self.family(oid) if self.relations[rel].kind == "r")
        return keys

    def warn_if_names_template(self, what: str, text: str | None, where: str = "definition") -> None:
        """Warn about text that names the template: nothing repoints it, so clones keep using the template."""
        if text and names_schema(text, self.template):
            self.warnings.append(
                f'{what} names schema "{self.template}" in its {where};'
                " clones will still read the template"
            )

    # -- lock keys ---------------------------------------------------------

    def target(self, oid: int) -> set[str]:
        """Lock keys of the target's copy of a relation, with its toast table and toast index."""
        rel = self.relations.get(oid)
        toasted = rel is not None and rel.has_toast
        return {f"t{oid}", f"t{oid}.toast", f"t{oid}.toast_index"} if toasted else {f"t{oid}"}

    def target_indexes(self, oid: int) -> set[str]:
        """Lock keys of the target's indexes on a relation, which planning a query on it opens."""
        return {f"t{index}" for index in self.index_oids[oid]}

    def target_tree(self, oid: int, *, indexes: bool = False) -> set[str]:
        """Lock keys of a relation and all its descendants (and their indexes), which recursing DDL takes."""
        keys: set[str] = set()
        for rel in self.family(oid):
            keys |= self.target(rel)
            if indexes:
                keys |= self.target_indexes(rel)
        return keys

    def source_keys(self, oid: int) -> set[str]:
        """Lock keys of a template relation read by the data copy: itself, toast, indexes."""
        return {"s" + key[1:] for key in self.target(oid) | self.target_indexes(oid)}
