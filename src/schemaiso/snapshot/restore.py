"""Restoring a snapshot into a new, empty template schema, with psycopg alone.

The plan's DDL runs as a clone's does (same order, same transactions sized to the
lock table), except that each step that would copy a table's rows from the
template runs ``COPY ... FROM STDIN`` with the snapshot's rows instead. Missing
extensions are created in the shared schema first, at the snapshot's versions,
then what ``migrate`` put into the shared schema.
The result is checked: the restored template's structure signature must be the
one the snapshot recorded, or the restore counts as failed.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

from ..backends.extensions import EXTENSION_LOCK
from ..clone import ClonePlan, clone_schema, structure_signature
from ..clone.dbapi import rollback
from ..clone.text import for_target
from ..naming import quote_ident, quote_literal
from .capture import TEXT_FORMAT_SETTINGS, copy_in, copy_sql, describe, outside_objects
from .fileformat import SnapshotContents


class RestoreError(Exception):
    """The snapshot could not be restored here; the text says why."""


def ensure_extensions(conn: Any, wanted: list[list[str]], shared: str) -> list[str]:
    """Create the snapshot's extensions that this database lacks, in ``shared``;
    refuse when one is here at another version. Returns the names created."""
    created = []
    with closing(conn.cursor()) as cur:
        for name, version, schema in wanted:
            have = _extension_version(cur, name)
            if have is None:
                if schema == "pg_catalog":
                    raise RestoreError(f"extension {name} (in pg_catalog) is not installed here")
                _check_available(cur, name, version)
                cur.execute(
                    f"SELECT pg_advisory_xact_lock({EXTENSION_LOCK}, 0); "
                    f"CREATE EXTENSION IF NOT EXISTS {quote_ident(name)} "
                    f"WITH SCHEMA {quote_ident(shared)} VERSION {quote_literal(version)} CASCADE"
                )
                created.append(name)
                have = _extension_version(cur, name)
            if have != version:
                raise RestoreError(
                    f"extension {name} is at version {have} here; the snapshot was made with {version}"
                )
    return created


def _check_available(cur: Any, name: str, version: str) -> None:
    cur.execute("SELECT version FROM pg_available_extension_versions WHERE name = %s "
                "ORDER BY version", [name])
    versions = [str(row[0]) for row in cur.fetchall()]
    if version not in versions:
        offered = f"versions {', '.join(versions)}" if versions else "no version"
        raise RestoreError(f"extension {name} {version} is not available on this server "
                           f"(it offers {offered})")


def _extension_version(cur: Any, name: str) -> str | None:
    cur.execute("SELECT extversion FROM pg_extension WHERE extname = %s", [name])
    found = cur.fetchall()
    return str(found[0][0]) if found else None


def restore_shared_objects(
    conn: Any, plan: ClonePlan, recorded: list[str], shared: str, *, lock_budget: int
) -> None:
    """Recreate in the shared schema what ``migrate`` made there (a collation, enum,
    domain or function created with an explicit schema): all of it, or nothing when
    it is all there already (a kept test database); some of it is an error."""
    present = {describe(item) for item in outside_objects(conn, shared) if item[1] == shared}
    there = sorted(set(recorded) & present)
    if there == sorted(recorded):
        return
    if there:
        raise RestoreError(
            f"the shared schema '{shared}' holds some of the snapshot's objects already "
            f"({', '.join(there[:3])}) but not all"
        )
    clone_schema(conn, plan, shared, lock_budget=lock_budget)


def restore(
    conn: Any, contents: SnapshotContents, plan: ClonePlan, target: str, *, lock_budget: int
) -> None:
    """Run the snapshot into the empty schema ``target`` (schemaiso's new template)."""
    copies = {step: (table, columns) for step, table, columns in plan.row_copies}
    missing = sorted(set(copies) - set(contents.rows))
    if missing:
        raise RestoreError(f"the file lacks the rows of {len(missing)} table(s)")
    with closing(conn.cursor()) as cur:
        for batch in plan.batches(lock_budget):
            cur.execute("BEGIN;\n" + plan.preamble(target) + TEXT_FORMAT_SETTINGS)
            try:
                pending: list[str] = []
                for index in batch:
                    if index not in copies:
                        pending.append(plan.steps[index][0])
                        continue
                    _run(cur, pending, target)
                    table, columns = copies[index]
                    copy_in(cur, copy_sql(target, table, columns, "FROM STDIN"),
                            contents.rows[index])
                _run(cur, pending, target)
                cur.execute("COMMIT")
            except BaseException:
                rollback(cur)
                raise


def _run(cur: Any, pending: list[str], target: str) -> None:
    if pending:
        cur.execute(for_target("".join(pending), target))
        pending.clear()


def check_structure(conn: Any, target: str, expected: str | None) -> None:
    """The restored template must have the structure the snapshot recorded."""
    if expected and structure_signature(conn, target) != expected:
        raise RestoreError("the restored template's structure differs from the snapshot's record")
