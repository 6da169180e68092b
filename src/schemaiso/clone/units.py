"""Units of DDL and the order they run in.

A unit holds the statements that create one object (with its comments), the
units it must follow, and the relations it locks.  Ordering is a topological
sort that prefers earlier phases, so independent objects still come out in
the familiar order: types, functions, tables, rows, indexes, foreign keys,
views, triggers.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

from .text import unexpected

# Phases order units that do not depend on each other; dependencies always win.
TYPES, FUNCTIONS, TABLES, DATA, INDEXES, FOREIGN_KEYS, VIEWS, TRIGGERS = range(8)

Key = tuple[str, int]


@dataclass
class Unit:
    """Statements that create one object (with its comments), placed as one block."""

    key: Key
    phase: int
    group: str  # keeps a table's units adjacent within a phase, which shares their locks
    label: str
    statements: list[str]
    locks: set[str] = field(default_factory=set)  # keys of the relations it locks
    deps: set[Key] = field(default_factory=set)

    def script(self) -> str:
        return "".join(statement + ";\n" for statement in self.statements)

    def lock_keys(self) -> frozenset[str]:
        """The relations it locks; objects that lock no relation still count one, to stay conservative."""
        return frozenset(self.locks or {repr(self.key)})


def ordered(units: dict[Key, Unit], template: str) -> list[Unit]:
    """Units in dependency order, preferring earlier phases (Kahn's algorithm with a heap).

    The phase preference also guarantees that a table's data is copied as soon
    as the table exists and before anything of a later phase, such as a
    materialized view reading it.
    """
    # A dependency on an object no unit creates (nothing to wait for) is dropped.
    waiting = {key: {dep for dep in unit.deps if dep in units} for key, unit in units.items()}
    dependents: dict[Key, list[Key]] = defaultdict(list)
    for key, deps in waiting.items():
        for dep in deps:
            dependents[dep].append(key)
    ready = [
        (units[key].phase, units[key].group, units[key].label, key)
        for key, deps in waiting.items()
        if not deps
    ]
    heapq.heapify(ready)
    order: list[Unit] = []
    while ready:
        *_, key = heapq.heappop(ready)
        order.append(units[key])
        for dependent in dependents[key]:
            waiting[dependent].discard(key)
            if not waiting[dependent]:
                unit = units[dependent]
                heapq.heappush(ready, (unit.phase, unit.group, unit.label, dependent))
    if len(order) < len(units):
        stuck = sorted(units[key].label for key, deps in waiting.items() if deps)
        raise unexpected(
            f'cannot order these objects of template schema "{template}", they depend on each'
            f" other: {', '.join(stuck[:10])}"
        )
    return order
