"""Putting a used copy back into the template's state, much cheaper than a new clone.

After a test run most tables of a worker schema are empty again (``TestCase``
rolls back, ``TransactionTestCase`` flushes), but a flush also removed the rows
migrations wrote, tests may leave committed rows behind, and sequences have
moved on. ``reset_schema`` empties only the tables that hold rows the template
does not (a table without pages holds none; a table whose rows equal the
template's, as text, is left alone), copies the template's rows back into those in
one transaction, then sets every sequence to the template's value. It empties
them with ``DELETE``, never ``TRUNCATE``: a truncate makes new files for every
table it empties, and its CASCADE reaches every table that references one of
them; on the 300-model benchmark project that is 1.9 s against 7 ms for the same
15 tables. No transaction of it holds more locks than the caller's budget.

It never repairs structure: a copy a test changed with DDL differs from the
template in ``structure_signature`` and must be cloned again. Where a faithful
reset cannot be promised (triggers or rules on tables that get rows back would
fire; more tables to empty than the lock budget holds), or where it would cost
more than a clone (many rows left in tables that foreign keys reference, see
``_delete_ms``), it declines, changing nothing; when a statement fails midway (a constraint, the server going away) the
copy is in no known state. Either way the caller drops it and clones afresh.
"""

from __future__ import annotations

from contextlib import closing, suppress
from dataclasses import dataclass

from schemaiso.naming import quote_ident, quote_literal

from .dbapi import Connection, Cursor, rollback
from .text import for_target

# Locks taken per emptied table: the table, its TOAST table and index, its indexes.
_LOCKS_PER_TABLE = 8
_PROBE_CHUNK = 200


@dataclass(frozen=True)
class ResetPlan:
    """What a reset needs from the template, prepared once with the clone plan.

    Table, view and sequence names are SQL identifiers as the catalog's
    ``quote_ident`` prints them (``item``, ``"CaseSensitive_Post"``): ready to put
    after the schema, never to be quoted again.
    """

    #: Every table that stores rows of its own (plain tables, partitions, children),
    #: tables referencing others by foreign key before the tables they reference.
    tables: tuple[str, ...]
    #: Tables with triggers or rules, which a DELETE or INSERT would fire.
    with_triggers: frozenset[str]
    #: The tables the template has rows in, and the SQL copying them (target placeholders).
    seeded: tuple[str, ...]
    copies: tuple[str, ...]
    #: (sequence, last_value, is_called) of every sequence, as in the template.
    sequences: tuple[tuple[str, int, bool], ...]
    #: (materialized view, populated) in dependency order.
    matviews: tuple[tuple[str, bool], ...]
    #: Why a reset would not be faithful for this template, or None.
    declined: str | None = None
    #: The template, quoted, to compare a copy's rows with; without it every
    #: table the template has rows in is emptied and refilled.
    source: str = ""
    #: (table, tables the template has rows in that reference it by foreign key):
    #: emptying the table may cascade into them, or fail while they reference it,
    #: so they are emptied and refilled with it.
    referenced_by: tuple[tuple[str, tuple[str, ...]], ...] = ()


def structure_signature(conn: Connection, schema: str) -> str:
    """A digest of the schema's structure that does not depend on its name.

    Equal for a template and its faithful copies; changed by any DDL a test runs
    in a copy (a table, column, constraint, index, function, trigger or type
    added, dropped or altered). Rows and sequence values are not part of it.
    """
    ns = quote_literal(schema)
    query = f"""
    WITH ns AS (SELECT oid, quote_ident(nspname) AS nspname FROM pg_namespace WHERE nspname = {ns}),
    rels AS (SELECT c.oid, c.relname, c.relkind FROM pg_class c, ns WHERE c.relnamespace = ns.oid)
    -- The multiset of items, as their count and two 64-bit hash sums: the same as
    -- an md5 of the sorted items for telling a change, without sorting them.
    SELECT count(item) || ' ' || coalesce(sum(hashtextextended(item COLLATE "C", 0)::numeric), 0)
           || ' ' || coalesce(sum(hashtextextended(item COLLATE "C", 1)::numeric), 0) FROM (
        SELECT 'rel ' || relname || ' ' || relkind::text FROM rels
        UNION ALL
        -- A relation's columns in order (a clone has no dropped columns' gaps in
        -- attnum), read through pg_attribute's index: a hash join would scan the
        -- columns of every schema in the database, spares included. The index
        -- gives them in attnum order, which the ordered subquery hands to
        -- string_agg as is: an ORDER BY in the aggregate would sort each relation.
        SELECT 'cols ' || quote_ident(r.relname) || ' ' || cols.list
        FROM rels r, LATERAL (
            SELECT string_agg(item, ', ') AS list FROM (
                SELECT quote_ident(a.attname) || ' '
                    || CASE WHEN t.typnamespace = (SELECT oid FROM ns) THEN '.' || t.typname
                            ELSE format_type(a.atttypid, a.atttypmod) END
                    || ' ' || a.attnotnull || ' ' || a.attidentity::text || ' ' || a.attgenerated::text
                    || ' ' || CASE WHEN a.atthasdef THEN coalesce((
                        SELECT replace(pg_get_expr(d.adbin, d.adrelid), (SELECT nspname FROM ns) || '.', '')
                        FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum), '')
                        ELSE '' END
                FROM pg_attribute a
                JOIN pg_type t ON t.oid = a.atttypid
                WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY a.attnum
            ) ordered(item)
        ) cols
        -- a sequence's columns are the same for every sequence
        WHERE cols.list IS NOT NULL AND r.relkind <> 'S'
        UNION ALL
        SELECT 'con ' || conname || ' ' || contype::text || ' ' || convalidated
               || ' ' || condeferrable || ' ' || condeferred
        FROM pg_constraint, ns WHERE connamespace = ns.oid
        UNION ALL
        SELECT 'idx ' || r.relname || ' ' || i.indisunique || ' ' || i.indisvalid
        FROM rels r JOIN pg_index i ON i.indexrelid = r.oid
        UNION ALL
        -- Arguments of the schema's own types print qualified by its name.
        SELECT 'fn ' || proname || '('
               || replace(pg_get_function_identity_arguments(p.oid), (SELECT nspname FROM ns) || '.', '')
               || ') '
               || md5(coalesce(prosrc, ''))
        FROM pg_proc p, ns WHERE pronamespace = ns.oid
        UNION ALL
        SELECT 'trg ' || r.relname || '.' || tgname || ' ' || tgenabled::text
        FROM rels r JOIN pg_trigger g ON g.tgrelid = r.oid WHERE NOT g.tgisinternal
        UNION ALL
        SELECT 'typ ' || typname || ' ' || typtype::text FROM pg_type, ns
        WHERE typnamespace = ns.oid AND typrelid = 0 AND typelem = 0
        UNION ALL
        SELECT 'pol ' || r.relname || '.' || polname FROM rels r JOIN pg_policy p ON p.polrelid = r.oid
        UNION ALL
        SELECT 'rule ' || r.relname || '.' || rulename FROM rels r
        JOIN pg_rewrite w ON w.ev_class = r.oid WHERE w.rulename <> '_RETURN'
    ) items(item)
    """
    with closing(conn.cursor()) as cur:
        # Right after a template build the catalogs' statistics are stale, the
        # estimated cost passes jit_above_cost, and JIT compiling the query took
        # longer (0.1 s) than running it.
        cur.execute("BEGIN; SET LOCAL jit = off")
        try:
            cur.execute(query)
            digest = str(cur.fetchall()[0][0])
        finally:
            rollback(cur)  # read only: nothing to keep
        return digest


def _probe(quoted: str, name: str, plan: ResetPlan) -> str:
    """SQL naming ``name`` when the copy's table must be emptied: it has rows and
    the template has none, or its rows differ from the template's.

    Rows are compared as text, bytewise: every built-in type prints its value
    exactly (floats too, with ``extra_float_digits`` set by the caller), so equal
    text is equal rows, stricter than ``=`` (1.0 and 1.00 differ).
    """
    table = f"{quoted}.{name}"
    if name in plan.seeded and plan.source:
        # As many rows, none of them missing from the template's (as multisets):
        # the same rows. EXCEPT ALL sorts or hashes within work_mem, spilling to disk.
        source = f"{plan.source}.{name}"
        return (f"SELECT {quote_literal(name)}::text WHERE "
                f"(SELECT count(*) FROM ONLY {table}) <> (SELECT count(*) FROM ONLY {source}) "
                f'OR EXISTS (SELECT r::text COLLATE "C" FROM ONLY {table} r '
                f'EXCEPT ALL SELECT r::text COLLATE "C" FROM ONLY {source} r)')
    if name in plan.seeded:
        return f"SELECT {quote_literal(name)}::text"
    return f"SELECT {quote_literal(name)}::text WHERE EXISTS (SELECT FROM ONLY {table})"


def _tables_with_pages(cur: Cursor, schema: str) -> set[str]:
    """The tables of ``schema`` whose files hold at least one page.

    A table without a page cannot hold a row: that proves most tables of a used
    copy empty for the price of a file size each. Flushed tables have no pages
    (TRUNCATE gives them new files), but a rolled-back insert leaves its pages
    behind, so a table with pages still needs a probe. ``pg_relation_size``
    releases its lock at once; nothing piles up in the lock table.
    """
    cur.execute(
        "SELECT pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_class c WHERE c.relnamespace = "
        f"(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = {quote_literal(schema)}) "
        "AND c.relkind = 'r' AND pg_catalog.pg_relation_size(c.oid) > 0"
    )
    return {row[0] for row in cur.fetchall()}


def _tables_to_empty(cur: Cursor, schema: str, plan: ResetPlan, lock_budget: int) -> set[str]:
    """The copy's tables that differ from the template's, and the tables with rows
    that reference them (see ``ResetPlan.referenced_by``).

    Each chunk of probes is one statement (the connection is in autocommit) of
    at most ``lock_budget`` locks: planning a probe locks the table and every
    index of it until the transaction ends, over a thousand locks for a 300-table
    schema, and the lock table is shared by every session on the server. The
    caller has set ``extra_float_digits = 3`` (see ``_probe``).
    """
    quoted = quote_ident(schema)
    with_pages = _tables_with_pages(cur, schema)
    # Tables the template has rows in are always compared: an empty one differs too.
    probed = [name for name in plan.tables if name in with_pages or name in plan.seeded]
    per_statement = max(1, min(_PROBE_CHUNK, lock_budget // _LOCKS_PER_TABLE))
    found: set[str] = set()
    for start in range(0, len(probed), per_statement):
        cur.execute("\nUNION ALL ".join(
            _probe(quoted, name, plan) for name in probed[start : start + per_statement]
        ))
        found.update(row[0] for row in cur.fetchall())
    referencing = dict(plan.referenced_by)
    pending = list(found)
    while pending:
        for name in referencing.get(pending.pop(), ()):
            if name not in found:
                found.add(name)
                pending.append(name)
    return found


def reset_schema(conn: Connection, plan: ResetPlan, schema: str, shared: str,
                 *, lock_budget: int) -> bool:
    """Bring ``schema`` (a copy of the template) back to the template's rows and sequence
    values. Returns False when it cannot: having changed nothing when it declines,
    with the copy in no known state when a statement failed (the caller drops it).

    The caller has checked ``structure_signature`` first. No transaction holds more
    than about ``lock_budget`` locks: the probes and the sequences go in chunks, and
    a reset that would have to empty more tables than one transaction may lock
    declines. They need not share a snapshot: nothing but the caller uses the copy
    (a claimed spare has just been renamed to a name of the caller's run).
    """
    if plan.declined:
        return False
    with closing(conn.cursor()) as cur:
        try:
            # For this session, not a transaction: the probes run one statement each.
            # JIT compiling these queries took longer than running them.
            cur.execute("SET extra_float_digits = 3; SET jit = off")
            empty = _tables_to_empty(cur, schema, plan, lock_budget)
            dirty = [name for name in plan.tables if name in empty]  # referencing first
            if len(dirty) * _LOCKS_PER_TABLE > lock_budget or empty & plan.with_triggers:
                return False
            if _delete_ms(cur, schema, dirty) > _clone_ms(plan):
                return False  # cloning afresh is cheaper
            # Rows in one transaction: all of them come back, or none. The commits
            # here are made durable by the claim's next (synchronous) statement;
            # waiting for their own WAL flushes would only add fsyncs.
            if dirty or plan.matviews:
                cur.execute(_in_transaction(_row_statements(plan, schema, shared, dirty)))
            # A sequence's value is not transactional anyway; setval locks the
            # sequence until commit, so they go in chunks.
            for statement in _setval_statements(plan, schema, max(1, lock_budget)):
                cur.execute(_in_transaction([statement]))
        except Exception:
            rollback(cur)
            return False
        except BaseException:
            rollback(cur)
            raise
        finally:
            with suppress(Exception):
                cur.execute("RESET extra_float_digits; RESET jit")
    return True


# Measured on the template of Django's own test suite (823 tables, 3,178 relations;
# 2 cores, PostgreSQL 15): a clone took 1.1-1.7 s, about 1.5 ms a table on top of a
# fixed part; DELETE took 0.06 ms per heap page of a table that no foreign key
# references, and 1.9 ms more per page for every foreign key referencing it (its
# check runs for each row deleted): 20,000 rows of auth_group (109 pages, 6 keys)
# took 1.3 s to reset against a 1.1 s clone, 100,000 rows 6.3 s.
_CLONE_MS_FIXED = 50.0
_CLONE_MS_PER_TABLE = 1.5
_DELETE_MS_PER_PAGE = 0.06
_CHECK_MS_PER_PAGE_AND_KEY = 1.9


def _clone_ms(plan: ResetPlan) -> float:
    """What a fresh clone of the template is expected to cost, in milliseconds."""
    return _CLONE_MS_FIXED + _CLONE_MS_PER_TABLE * len(plan.tables)


def _delete_ms(cur: Cursor, schema: str, dirty: list[str]) -> float:
    """What emptying ``dirty`` is expected to cost: by the pages of each table and
    the foreign keys that reference it. A reset that would cost more than a clone
    declines: a spare a test left many rows in is cloned afresh instead."""
    if not dirty:
        return 0.0
    names = ", ".join(quote_literal(name) for name in dirty)
    cur.execute(
        "SELECT coalesce(sum(pg_catalog.pg_relation_size(c.oid) / 8192 * "
        f"({_DELETE_MS_PER_PAGE} + {_CHECK_MS_PER_PAGE_AND_KEY} * (SELECT count(*) "
        "FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = c.oid))), 0) "
        "FROM pg_catalog.pg_class c WHERE c.relnamespace = (SELECT oid FROM "
        f"pg_catalog.pg_namespace WHERE nspname = {quote_literal(schema)}) "
        f"AND c.relkind = 'r' AND pg_catalog.quote_ident(c.relname) IN ({names})"
    )
    return float(cur.fetchall()[0][0])


def _in_transaction(statements: list[str]) -> str:
    """One round trip: ``statements`` in a transaction of their own."""
    return ";\n".join(["BEGIN", "SET LOCAL synchronous_commit = off", *statements, "COMMIT;"])


def _row_statements(plan: ResetPlan, schema: str, shared: str, dirty: list[str]) -> list[str]:
    """Empty ``dirty`` (referencing tables first), refill those the template has rows
    in (referenced first) and refresh materialized views."""
    quoted = quote_ident(schema)
    statements = [
        f"SET LOCAL search_path TO {quoted}, pg_catalog, {quote_ident(shared)}",
        "SET LOCAL row_security = off",
        "SET CONSTRAINTS ALL DEFERRED",
    ]
    # Referencing tables first: a foreign key that is not deferrable checks at once.
    statements += [f"DELETE FROM ONLY {quoted}.{name}" for name in dirty]
    refill = set(dirty)
    statements += [
        for_target(copy.rstrip().rstrip(";"), schema)
        for name, copy in zip(plan.seeded, plan.copies, strict=True)
        if name in refill
    ]
    statements += [
        f"REFRESH MATERIALIZED VIEW {quoted}.{name}"
        + ("" if populated else " WITH NO DATA")
        for name, populated in plan.matviews
    ]
    return statements


def _setval_statements(plan: ResetPlan, schema: str, per_statement: int) -> list[str]:
    """Every sequence back to the template's value, ``per_statement`` sequences at a time."""
    quoted = quote_ident(schema)
    setvals = [
        f"pg_catalog.setval({quote_literal(f'{quoted}.{name}')}, {last}, "
        f"{str(called).lower()})"
        for name, last, called in plan.sequences
    ]
    size = min(_PROBE_CHUNK, per_statement)
    return ["SELECT " + ", ".join(setvals[start : start + size])
            for start in range(0, len(setvals), size)]
