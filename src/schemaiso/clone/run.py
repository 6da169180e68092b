"""Running a prepared plan: scripts per target, transactions sized to the lock table.

A worker's clone is string assembly (the target's name into the prepared
steps) and then one round trip per transaction: ``BEGIN``, the script and
``COMMIT`` travel together.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field

from schemaiso.errors import CloneError
from schemaiso.naming import quote_ident

from .dbapi import Connection, Cursor, rollback
from .reset import ResetPlan
from .text import for_target

# Locks every clone transaction holds before doing anything (virtual and real
# transaction id, the target namespace, ...), kept out of the budget.
_BASE_LOCKS = 8


@dataclass(frozen=True)
class ClonePlan:
    """Everything needed to clone one template, prepared once by read_template.

    ``steps`` holds the DDL as text with a placeholder for the target schema,
    in a valid execution order, each with the set of relations (as opaque
    keys) it locks, so that ``scripts`` is cheap string assembly per worker.
    """

    template: str
    shared: str
    table_count: int
    warnings: tuple[str, ...]
    steps: tuple[tuple[str, frozenset[str]], ...] = field(default=(), repr=False)
    #: How to put a used copy back into the template's state (clone.reset).
    reset: ResetPlan | None = field(default=None, repr=False)
    #: Statements naming the copy's own schema (functions' SET search_path), run
    #: again after a copy is renamed (see ``retarget_script``).
    retarget: tuple[str, ...] = field(default=(), repr=False)
    #: The steps that copy a table's rows, as (step index, table, its copied
    #: columns), names quoted: a snapshot's restore runs ``COPY FROM`` there instead.
    row_copies: tuple[tuple[int, str, tuple[str, ...]], ...] = field(default=(), repr=False)

    def retarget_script(self, target: str) -> str:
        """SQL that points what a copy says about its own schema at ``target``."""
        return "".join(for_target(sql, target) + ";\n" for sql in self.retarget)

    def scripts(self, target: str, *, lock_budget: int) -> list[str]:
        """SQL scripts cloning into the existing schema ``target``, one per transaction.

        Steps are packed in order while the distinct relations they lock fit
        in ``lock_budget`` (a relation locked twice in one transaction takes
        one lock table entry); a step heavier than the budget runs alone.
        ``row_security = off`` makes a policy that would hide template rows
        from the cloning role an error rather than a silently shorter copy.
        """
        preamble = self.preamble(target)
        return [
            for_target(preamble + "".join(self.steps[index][0] for index in batch), target)
            for batch in self.batches(lock_budget)
        ]

    def preamble(self, target: str) -> str:
        """What every transaction into ``target`` starts with (see ``scripts``)."""
        ident = quote_ident(target)
        return (
            f"SET LOCAL search_path TO {ident}, pg_catalog, {quote_ident(self.shared)};\n"
            "SET LOCAL check_function_bodies = off;\n"
            "SET LOCAL row_security = off;\n"
        )

    def batches(self, lock_budget: int) -> list[list[int]]:
        """The steps' indexes, one list per transaction (see ``scripts``)."""
        capacity = lock_budget - _BASE_LOCKS
        batches: list[list[int]] = []
        held: set[str] = set()
        for index, (_sql, locks) in enumerate(self.steps):
            if not batches or len(held) + len(locks - held) > capacity:
                batches.append([])
                held = set()
            batches[-1].append(index)
            held |= locks
        return batches


def clone_schema(
    conn: Connection, plan: ClonePlan, target: str, *, lock_budget: int | None = None
) -> None:
    """Run plan.scripts(target) on ``conn``, one transaction per script, rolling back on error.

    Without ``lock_budget`` this is assumed to be the only cloner running
    (``server_lock_budget(conn)``); pass the budget for concurrent cloners.
    """
    budget = server_lock_budget(conn) if lock_budget is None else lock_budget
    with closing(conn.cursor()) as cur:
        for script in plan.scripts(target, lock_budget=budget):
            _run_transaction(cur, script, plan.template, target)


def server_lock_budget(conn: Connection, concurrency: int = 1) -> int:
    """A per-transaction lock budget for each of ``concurrency`` simultaneous cloners.

    The shared lock table has max_locks_per_transaction * (max_connections +
    max_prepared_transactions) slots for all sessions; cloners together take
    at most a quarter of it, leaving the rest to everything else running.
    """
    with closing(conn.cursor()) as cur:
        cur.execute(
            "SELECT current_setting('max_locks_per_transaction')::int8"
            " * (current_setting('max_connections')::int8"
            " + current_setting('max_prepared_transactions')::int8)"
        )
        slots = int(cur.fetchall()[0][0])
    return max(1, slots // 4 // max(1, concurrency))


_ADVICE = (
    "The transaction was rolled back. If the server ran out of shared memory, other sessions hold"
    " many locks: lower their load or raise max_locks_per_transaction. Otherwise report this"
    " message with the definition of the object named."
)


def _run_transaction(cur: Cursor, script: str, template: str, target: str) -> None:
    """Run one script in its own transaction, in one round trip; on failure roll back and say where.

    After an error PostgreSQL skips the rest of the string, COMMIT included,
    and leaves the transaction aborted until the ROLLBACK.
    """
    try:
        cur.execute(f"BEGIN;\n{script}COMMIT;")
    except Exception as exc:
        rollback(cur)
        raise CloneError(
            f'schemaiso: cloning template schema "{template}" into schema "{target}" failed in the'
            f" transaction starting with: {_first_statement(script)}\n{exc}\n{_ADVICE}"
        ) from exc
    except BaseException:
        rollback(cur)
        raise


def _first_statement(script: str) -> str:
    """The first line after the SET LOCAL preamble, which identifies the failing batch."""
    for line in script.splitlines():
        if not line.startswith("SET LOCAL "):
            return line[:200]
    return script[:200]
