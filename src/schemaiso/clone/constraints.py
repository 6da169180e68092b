"""Table constraints and indexes, including those of partitioned tables.

An index on a partitioned table is created ``ON ONLY`` that table and then
has each partition's own index attached (``ALTER INDEX ... ATTACH
PARTITION``), as pg_dump does: the template's index names and attachments are
reproduced exactly, where letting PostgreSQL cascade would invent names and
could attach the wrong one of two equivalent indexes.

Objects PostgreSQL creates by itself from a parent's are not written out:
CHECK constraints a child inherits, foreign keys cloned onto partitions
under the parent's name, and the per-partition constraints of a foreign key
that references a partitioned table.  Their parent's unit creates them, so
they are mapped to it (for comments and ordering).
"""

from __future__ import annotations

from collections import defaultdict

from .catalog import Constraint, Index
from .context import PlanContext
from .text import TARGET, sql_options, strip_prefix
from .units import FOREIGN_KEYS, INDEXES, Key, Unit


def add_constraints_and_indexes(ctx: PlanContext) -> None:
    _Builder(ctx).build()


class _Builder:
    def __init__(self, ctx: PlanContext) -> None:
        self.ctx = ctx
        self.constraints = {con.oid: con for con in ctx.catalog.constraints}
        self.by_name = {(con.rel, con.name): con for con in ctx.catalog.constraints if con.rel}
        self.index_of = {
            index.constraint: index for index in ctx.catalog.indexes if index.constraint is not None
        }
        self.attached: dict[int, list[Index]] = defaultdict(list)
        for index in ctx.catalog.indexes:
            if index.parent is not None:
                self.attached[index.parent].append(index)

    def build(self) -> None:
        implicit: list[Constraint] = []
        for con in self.ctx.catalog.constraints:
            if con.domain:
                continue
            if self._created_by_parent(con):
                implicit.append(con)
            else:
                self._constraint(con)
        for index in self.ctx.catalog.indexes:
            if index.constraint is None:
                self._index(index)
        for con in implicit:
            owner = self._creator(con)
            if owner is not None:
                self.ctx.owner[("pg_constraint", con.oid)] = owner
        self._children_first()

    def _created_by_parent(self, con: Constraint) -> bool:
        """Whether PostgreSQL creates this constraint itself when the parent's is created."""
        if con.kind == "c":
            return not con.is_local
        if con.kind == "f" and con.parent:
            parent = self.constraints[con.parent]
            # Same table: one of the constraints of a foreign key to a partitioned table.
            return con.rel == parent.rel or con.name == parent.name
        return False

    def _creator(self, con: Constraint) -> Key | None:
        """The unit of the nearest written-out ancestor constraint, which creates ``con``."""
        units = self.ctx.units
        if con.kind == "f":
            while con.parent and ("con", con.oid) not in units:
                con = self.constraints[con.parent]
            return ("con", con.oid) if ("con", con.oid) in units else None
        for rel in self._ancestors(con.rel):
            other = self.by_name.get((rel, con.name))
            if other is not None and ("con", other.oid) in units:
                return ("con", other.oid)
        return None

    def _ancestors(self, oid: int) -> list[int]:
        found: list[int] = []
        pending = list(self.ctx.relations[oid].parents)
        while pending:
            rel = pending.pop(0)
            if rel not in found:
                found.append(rel)
                pending.extend(self.ctx.relations[rel].parents)
        return found

    def _constraint(self, con: Constraint) -> None:
        ctx = self.ctx
        rel = ctx.relations[con.rel]
        table = rel.name
        what = f"constraint {con.name} on {table}"
        ctx.warn_if_names_template(f"constraint {con.name} on {ctx.template}.{table}", con.definition)
        # ONLY: a partitioned table's index is attached to its partitions' below, not cascaded.
        only = "ONLY " if rel.kind == "p" and con.kind in ("p", "u", "x") else ""
        statements = [f"ALTER TABLE {only}{TARGET}.{table} ADD CONSTRAINT {con.name} {con.definition}"]
        index = self.index_of.get(con.oid)
        foreign = con.kind == "f"
        unit = Unit(("con", con.oid), FOREIGN_KEYS if foreign else INDEXES, table, what, statements)
        unit.deps |= ctx.after_rows(con.rel)
        # CHECK constraints and foreign keys recurse to every child and partition.
        unit.locks = ctx.target_tree(con.rel) if con.kind in ("c", "f") else ctx.target(con.rel)
        if index is not None:
            statements += self._index_settings(index, table, options=con.kind != "x")
            self._attach_children(unit, index)
        if foreign and con.ref_rel in ctx.relations:
            # Validation plans a join of both tables, which opens all their indexes.
            unit.deps |= ctx.after_rows(con.ref_rel)
            unit.locks |= ctx.target_tree(con.rel, indexes=True)
            unit.locks |= ctx.target_tree(con.ref_rel, indexes=True)
        objects = [("pg_constraint", con.oid)] + ([("pg_class", index.oid)] if index else [])
        ctx.add(unit, *objects)

    def _index(self, index: Index) -> None:
        ctx = self.ctx
        table = ctx.rel_name(index.rel)
        rest = strip_prefix(index.definition, index.prefix, f"index {ctx.template}.{index.name}")
        ctx.warn_if_names_template(f"index {ctx.template}.{index.name}", rest)
        unique = "UNIQUE " if index.prefix.startswith("CREATE UNIQUE") else ""
        only = "ONLY " if ctx.relations[index.rel].kind == "p" else ""
        statements = [f"CREATE {unique}INDEX {index.name} ON {only}{TARGET}.{table} USING {rest}"]
        statements += self._index_settings(index, table, options=False)
        unit = Unit(("idx", index.oid), INDEXES, table, f"index {index.name}", statements)
        unit.locks = ctx.target(index.rel) | {f"t{index.oid}"}
        unit.deps |= ctx.after_rows(index.rel)
        self._attach_children(unit, index)
        ctx.add(unit, ("pg_class", index.oid))

    def _attach_children(self, unit: Unit, index: Index) -> None:
        """Attach the partitions' indexes; once all are, PostgreSQL marks the parent index valid."""
        for child in self.attached[index.oid]:
            unit.statements.append(
                f"ALTER INDEX {TARGET}.{index.name} ATTACH PARTITION {TARGET}.{child.name}"
            )
            unit.deps.add(
                ("con", child.constraint) if child.constraint is not None else ("idx", child.oid)
            )
            unit.locks |= self.ctx.target(child.rel) | {f"t{child.oid}", f"t{index.oid}"}

    @staticmethod
    def _index_settings(index: Index, table: str, *, options: bool) -> list[str]:
        """Storage parameters pg_get_constraintdef leaves out, CLUSTER ON and REPLICA IDENTITY."""
        statements = []
        if options and index.options:
            statements.append(
                f"ALTER INDEX {TARGET}.{index.name} SET ({', '.join(sql_options(index.options))})"
            )
        if index.clustered:
            statements.append(f"ALTER TABLE {TARGET}.{table} CLUSTER ON {index.name}")
        if index.replica_identity:
            statements.append(
                f"ALTER TABLE {TARGET}.{table} REPLICA IDENTITY USING INDEX {index.name}"
            )
        return statements

    def _children_first(self) -> None:
        """A child's own copy of a parent's constraint must exist before the parent's recurses.

        PostgreSQL then merges them (a local CHECK constraint that is also
        inherited) or attaches it (a partition's foreign key under another name).
        """
        units = self.ctx.units
        for con in self.ctx.catalog.constraints:
            if ("con", con.oid) not in units or con.domain:
                continue
            if con.kind == "f" and con.parent:
                creator = self._creator(self.constraints[con.parent])
                if creator is not None:
                    units[creator].deps.add(("con", con.oid))
            elif con.kind == "c" and con.inh_count:
                for rel in self._ancestors(con.rel):
                    other = self.by_name.get((rel, con.name))
                    if other is not None and ("con", other.oid) in units:
                        units["con", other.oid].deps.add(("con", con.oid))
