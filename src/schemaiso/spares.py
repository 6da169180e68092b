"""Worker schemas kept between ``--keepdb`` runs, reset instead of cloned again.

At the end of a ``--keepdb`` run, this run's worker and main schemas are renamed
to spares (``<prefix>_spare_<hex>``), stamped with the template they copy. The next
run claims a spare by renaming it to the schema it needs, one claim at a time
(an advisory lock), so two runs or two clone threads never get the same spare,
and none of them meets a spare that another has just taken. A claimed spare is used only if its
structure still matches the template (``structure_signature``) and
``reset_schema`` could put its rows and sequences back; otherwise it is dropped
and the schema is cloned afresh, so a warm run is never less faithful than a
cold one.
"""

from __future__ import annotations

import secrets
from typing import Any

from . import cleanup, markers
from .clone import ClonePlan, reset_schema, structure_signature
from .clone.dbapi import rollback
from .markers import marker
from .naming import fit_name, like_escape, quote_ident, quote_literal

ROLE = "spare"
#: The advisory lock (in the test database) that claims of spares take in turn.
CLAIM_LOCK = 0x7369_0008


def spare_pattern(prefix: str) -> str:
    return like_escape(f"{prefix}_spare_") + "%"


def by_template(conn: Any, prefix: str, stamp: str | None) -> tuple[list[str], list[str]]:
    """(spares copying the template built by run ``stamp``, spares of any other
    template: rebuilt since, useless, to be dropped), from one catalog read."""
    current: list[str] = []
    stale: list[str] = []
    for name, payload in markers.marked_schemas(conn, spare_pattern(prefix)).items():
        if payload.get("role") == ROLE:
            (current if payload.get("template") == stamp else stale).append(name)
    return current, stale


def spares_of(conn: Any, prefix: str, stamp: str) -> list[str]:
    """Spare schemas that copy the template built by run ``stamp``."""
    return by_template(conn, prefix, stamp)[0]


def stale_spares(conn: Any, prefix: str, stamp: str | None) -> list[str]:
    """Spares of any other template (rebuilt since): useless, to be dropped."""
    return by_template(conn, prefix, stamp)[1]


def _execute(conn: Any, sql: str) -> None:
    with conn.cursor() as cursor:
        cursor.execute(sql)


def claim(
    conn: Any,
    plan: ClonePlan,
    *,
    prefix: str,
    stamp: str,
    template_signature: str,
    target: str,
    target_marker: str,
    lock_budget: int,
) -> str | None:
    """Turn a spare into ``target``, reset to the template's state; the spare's old
    name, or None when there was none fit to use (``target`` then does not exist)."""
    if plan.reset is None or plan.reset.declined:
        return None
    spare = _rename_one(conn, prefix, stamp, target)
    if spare is None:
        return None
    retarget = plan.retarget_script(target)
    if retarget:
        _execute(conn, f"BEGIN;\n{retarget}COMMIT;")
    if structure_signature(conn, target) == template_signature and reset_schema(
        conn, plan.reset, target, plan.shared, lock_budget=lock_budget
    ):
        _execute(conn, f"COMMENT ON SCHEMA {quote_ident(target)} IS {quote_literal(target_marker)}")
        return spare
    # Changed by a test (DDL), or not resettable: drop it (its spare marker proves
    # it ours) and let the caller clone.
    cleanup.drop_schemas(conn, [target], lock_budget=lock_budget)
    return None


def _rename_one(conn: Any, prefix: str, stamp: str, target: str) -> str | None:
    """Rename the first spare of ``stamp`` to ``target``; its old name, or None.

    Clone threads and other runs claim at the same time. Under a lock, the spare
    listed is still there when it is renamed: no claim fails on the server
    ("schema does not exist") because another took it first. The lock lasts one
    short transaction; the reset that follows runs without it.
    """
    with conn.cursor() as cursor:
        cursor.execute(f"BEGIN; SELECT pg_advisory_xact_lock({CLAIM_LOCK}, 0)")
        try:
            found = spares_of(conn, prefix, stamp)
            if found:
                cursor.execute(
                    f"ALTER SCHEMA {quote_ident(found[0])} RENAME TO {quote_ident(target)}"
                )
            cursor.execute("COMMIT")
        except BaseException:
            rollback(cursor)
            raise
    return found[0] if found else None


def split_by_structure(conn: Any, schemas: list[str], template: str) -> tuple[list[str], list[str]]:
    """(schemas whose structure is still the template's, schemas a test changed
    with DDL). Only the first kind is worth keeping: a claim would find the others
    changed, drop them and clone anyway, on the next run's setup time. The check
    is one catalog query per schema (0.04 s on a 3,178-relation template)."""
    expected = structure_signature(conn, template)
    fit: list[str] = []
    changed: list[str] = []
    for schema in schemas:
        (fit if structure_signature(conn, schema) == expected else changed).append(schema)
    return fit, changed


def keep(conn: Any, schemas: list[str], *, prefix: str, run_id: str, stamp: str) -> list[str]:
    """Rename this run's schemas to spares of the template ``stamp``; their new names."""
    kept = []
    for schema in schemas:
        spare = fit_name(f"{prefix}_spare_{secrets.token_hex(4)}")
        payload = marker(ROLE, run_id, template=stamp)
        # Two statements: if the second fails, the schema still carries this run's
        # marker, and the next run's prune drops it as a finished run's.
        _execute(conn, f"ALTER SCHEMA {quote_ident(schema)} RENAME TO {quote_ident(spare)}")
        _execute(conn, f"COMMENT ON SCHEMA {quote_ident(spare)} IS {quote_literal(payload)}")
        kept.append(spare)
    return kept
