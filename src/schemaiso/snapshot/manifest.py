"""What a snapshot claims to be, and whether this run may trust it.

A snapshot is trusted whole or not at all. It fits **exactly** when its
fingerprint is this run's (fingerprint.py: Django and schemaiso versions, the
settings that shape ``migrate``, every app's migration files or models) on the
same PostgreSQL major version. It fits **incrementally** when the only change is
migration files added since: every file the snapshot recorded is still there with
the same bytes, nothing else in the fingerprint moved. Then ``migrate`` applies
just the new migrations on top, as it does on a ``--keepdb`` database.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from .fileformat import FORMAT, SUFFIX


@dataclass(frozen=True)
class RunFacts:
    """What this run's template must match: computed once per alias."""

    alias: str
    fingerprint: dict[str, Any]
    migrations: dict[str, dict[str, str]]
    postgresql: int  # the server's major version

    @property
    def key(self) -> str:
        """The snapshot's file name for this exact fingerprint and server version."""
        digest = hashlib.sha256(json.dumps(self.fingerprint, sort_keys=True).encode())
        return f"{digest.hexdigest()[:16]}-pg{self.postgresql}{SUFFIX}"


def build(facts: RunFacts, **described: Any) -> dict[str, Any]:
    """The manifest of a snapshot of ``facts``' template; ``described`` adds what the
    capture found (template, tables, extensions, structure signature...)."""
    return {
        "format": FORMAT,
        "key": facts.key,
        "created": time.time(),
        "alias": facts.alias,
        "fingerprint": facts.fingerprint,
        "postgresql": facts.postgresql,
        "django": facts.fingerprint.get("django"),
        "schemaiso": facts.fingerprint.get("schemaiso"),
        "migrations": facts.migrations,
        **described,
    }


def short_id(manifest: dict[str, Any]) -> str:
    """How messages name a snapshot: the first 8 characters of its key."""
    return str(manifest.get("key", "?"))[:8]


def fit(manifest: dict[str, Any], facts: RunFacts) -> tuple[str | None, str]:
    """("exact" | "incremental" | None, why not) for a snapshot's manifest."""
    if manifest.get("alias") != facts.alias:
        return None, f"made for alias '{manifest.get('alias')}'"
    if manifest.get("postgresql") != facts.postgresql:
        return None, f"made on PostgreSQL {manifest.get('postgresql')}, this server is {facts.postgresql}"
    kept = manifest.get("fingerprint")
    if not isinstance(kept, dict):
        return None, "its manifest has no fingerprint"
    if kept == facts.fingerprint:
        return "exact", ""
    for key, label in (("django", "Django"), ("schemaiso", "schemaiso")):
        if kept.get(key) != facts.fingerprint.get(key):
            return None, f"made with {label} {kept.get(key)}, this run has {facts.fingerprint.get(key)}"
    if kept.get("settings") != facts.fingerprint.get("settings"):
        return None, ("settings that shape migrate differ (INSTALLED_APPS, MIGRATION_MODULES, "
                      "DATABASE_ROUTERS, AUTH_USER_MODEL, SCHEMAISO, database cache tables or "
                      "the database's ENGINE/TEST)")
    for key in set(kept) | set(facts.fingerprint):
        if key not in ("apps", "django", "schemaiso", "settings") and kept.get(key) != facts.fingerprint.get(key):
            return None, ("files named in SCHEMAISO['FINGERPRINT_EXTRA'] changed" if key == "extra"
                          else f"its fingerprint differs in {key}")
    return _only_added(manifest, kept, facts)


def _only_added(
    manifest: dict[str, Any], kept: dict[str, Any], facts: RunFacts
) -> tuple[str | None, str]:
    """Incremental when every app that changed only gained migration files."""
    old_apps: dict[str, Any] = _mapping(kept.get("apps"))
    new_apps: dict[str, Any] = _mapping(facts.fingerprint.get("apps"))
    recorded: dict[str, Any] = _mapping(manifest.get("migrations"))
    for label in sorted(set(old_apps) | set(new_apps)):
        if old_apps.get(label) == new_apps.get(label):
            continue
        old_files, new_files = recorded.get(label), facts.migrations.get(label)
        if not isinstance(old_files, dict) or new_files is None:
            return None, f"app '{label}' changed and is not made by migrations alone"
        for name, digest in sorted(old_files.items()):
            if name not in new_files:
                return None, f"migration file {label}/{name} was removed since"
            if new_files[name] != digest:
                return None, f"migration file {label}/{name} was edited since"
    return "incremental", ""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def added_migrations(manifest: dict[str, Any], facts: RunFacts) -> list[str]:
    """``app/file`` of each migration file this run has and the snapshot had not."""
    recorded = manifest.get("migrations") or {}
    return sorted(
        f"{label}/{name}"
        for label, files in facts.migrations.items()
        for name in files
        if name not in (recorded.get(label) or {}) and name != "__init__.py"
    )
