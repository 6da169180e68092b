"""``manage.py schemaiso snapshots [--prune [--keep N]]``: what the snapshot
directory holds, whether each snapshot fits this project now, and pruning."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError
from django.db import connections

from ... import fingerprint
from ...conf import get_config
from ...snapshot import manifest, store
from .schemaiso import _age


def handle_snapshots(
    write: Callable[[str], Any], only: str | None, *, prune: bool, keep: int | None
) -> None:
    config = get_config()
    directory = store.snapshot_dir(config.snapshot_dir_setting)
    if directory is None:
        write("schemaiso: snapshots are off (SCHEMAISO['SNAPSHOT_DIR'] is None, or "
              f"${store.ENVIRONMENT} is empty).")
        return
    if keep is not None and keep < 1:
        raise CommandError("schemaiso: --keep takes a positive number of snapshots to keep.")
    if prune:
        removed = store.prune(directory, keep or config.snapshot_keep, unreadable=True)
        write(f"{directory}: removed {len(removed)} file(s)"
              + "".join(f"\n  {path.name}" for path in removed))
        return
    entries = store.listing(directory)
    write(f"{directory}: {len(entries)} snapshot(s), newest first "
          f"(SCHEMAISO['SNAPSHOT_KEEP'] = {config.snapshot_keep})")
    facts = _facts_by_alias(only)
    header = ("snapshot", "alias", "age", "size", "pg", "django", "tables", "migrations", "fits")
    rows = [header] + [_row(entry, facts) for entry in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        write("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _facts_by_alias(only: str | None) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """(fingerprint, migration files) of each PostgreSQL alias, as a run would compute them."""
    if only and only not in connections:
        raise CommandError(f"schemaiso: no database alias '{only}' in DATABASES.")
    found = {}
    for alias in [only] if only else list(connections):
        connection = connections[alias]
        sd = connection.settings_dict
        if connection.vendor == "postgresql" and not sd["TEST"].get("MIRROR"):
            found[alias] = (fingerprint.compute(alias, sd), fingerprint.migration_files(sd))
    return found


def _row(entry: store.Listed, facts: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> tuple[str, ...]:
    age = _age(time.time() - entry.mtime)
    size = store.size_text(entry.size)
    if entry.manifest is None:
        return (entry.path.name, "?", age, size, "?", "?", "?", "?", f"unreadable: {entry.problem}")
    found = entry.manifest
    alias = str(found.get("alias", "?"))
    migrations = sum(len([n for n in files if n != "__init__.py"])
                     for files in (found.get("migrations") or {}).values())
    if alias in facts:
        current = manifest.RunFacts(alias, facts[alias][0], facts[alias][1],
                                    postgresql=int(found.get("postgresql") or 0))
        kind, why = manifest.fit(found, current)
        fits = kind or f"no: {why}"
    else:
        fits = "no: another alias or project"
    return (manifest.short_id(found), alias, age, size, str(found.get("postgresql", "?")),
            str(found.get("django", "?")), str(found.get("tables", "?")), str(migrations), fits)

