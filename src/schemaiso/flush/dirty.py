"""Which members of a flush hold rows: most are proved empty by their size alone.

A table without a page cannot hold a row (``TRUNCATE`` leaves none behind), so
``pg_relation_size``, read with the catalog, clears most of a schema for the
price of a file size each. A table with pages may still be empty (a rolled-back
insert, rows a ``DELETE`` removed): one ``EXISTS`` each, in one statement, tells.
Under row security a probe may not see every row: such a table with pages is
taken as holding rows.

The tables with pages are first locked in ``SHARE`` mode, which waits for every
transaction writing to them and keeps new writers out until the flush commits:
rows another session is still inserting (a thread's open transaction) are
flushed once it commits, as Django's ``TRUNCATE``, which waits for them too,
would flush them, instead of being missed by the probe.
"""

from __future__ import annotations

from typing import Any

from .plan import Members


def members_with_rows(cursor: Any, found: Members) -> set[int]:
    """The members holding at least one row (their partitions and children included)."""
    candidates = found.maybe_holding_rows()
    if candidates:
        cursor.execute("LOCK TABLE " + ", ".join(found.qualified(m) for m in candidates)
                       + " IN SHARE MODE")
    dirty = {m for m in candidates if found.unprobeable(m)}
    probed = [m for m in candidates if m not in dirty]
    if probed:
        cursor.execute("\nUNION ALL ".join(
            f"SELECT {m} WHERE EXISTS (SELECT FROM {found.qualified(m)})" for m in probed
        ))
        dirty.update(int(row[0]) for row in cursor.fetchall())
    return dirty
