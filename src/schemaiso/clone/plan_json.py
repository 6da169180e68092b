"""A clone plan as JSON and back: the plan cache and snapshots store plans as
data that loading cannot run (never pickle)."""

from __future__ import annotations

from typing import Any

from .reset import ResetPlan
from .run import ClonePlan


def plan_to_json(plan: ClonePlan) -> dict[str, Any]:
    reset = plan.reset
    return {
        "template": plan.template,
        "shared": plan.shared,
        "table_count": plan.table_count,
        "warnings": list(plan.warnings),
        "steps": [[sql, sorted(locks)] for sql, locks in plan.steps],
        "retarget": list(plan.retarget),
        "row_copies": [[index, table, list(columns)] for index, table, columns in plan.row_copies],
        "reset": None if reset is None else {
            "tables": list(reset.tables),
            "with_triggers": sorted(reset.with_triggers),
            "seeded": list(reset.seeded),
            "copies": list(reset.copies),
            "sequences": [list(seq) for seq in reset.sequences],
            "matviews": [list(view) for view in reset.matviews],
            "declined": reset.declined,
            "source": reset.source,
            "referenced_by": [[name, list(refs)] for name, refs in reset.referenced_by],
        },
    }


def plan_from_json(data: dict[str, Any]) -> ClonePlan:
    """The plan back from what ``plan_to_json`` wrote (strings stay as JSON gives them)."""
    reset = data["reset"]
    return ClonePlan(
        template=str(data["template"]),
        shared=str(data["shared"]),
        table_count=int(data["table_count"]),
        warnings=tuple(data["warnings"]),
        steps=tuple((sql, frozenset(locks)) for sql, locks in data["steps"]),
        retarget=tuple(data["retarget"]),
        row_copies=tuple(
            (int(index), str(table), tuple(columns)) for index, table, columns in data["row_copies"]
        ),
        reset=None if reset is None else ResetPlan(
            tables=tuple(reset["tables"]),
            with_triggers=frozenset(reset["with_triggers"]),
            seeded=tuple(reset["seeded"]),
            copies=tuple(reset["copies"]),
            sequences=tuple((str(n), int(v), bool(c)) for n, v, c in reset["sequences"]),
            matviews=tuple((str(n), bool(p)) for n, p in reset["matviews"]),
            declined=None if reset["declined"] is None else str(reset["declined"]),
            source=str(reset["source"]),
            referenced_by=tuple((name, tuple(refs)) for name, refs in reset["referenced_by"]),
        ),
    )
