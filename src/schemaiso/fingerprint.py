"""What determines a migrated template, as a fingerprint stored in its marker.

``--keepdb`` skips ``migrate`` only when the kept template's fingerprint equals
this run's; otherwise the template is rebuilt, and :func:`differences` says why
in words. The fingerprint is cheap: migration files are read as bytes, never
imported, and the parts are kept apart so a mismatch can name what changed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import django
from django.apps import apps
from django.conf import settings

from . import __version__
from .conf import NOT_FINGERPRINTED_KEYS
from .errors import SchemaIsoError

#: The ``TEST`` keys of a database that change what ``migrate`` creates.
_TEST_KEYS = ("MIGRATE", "CHARSET", "COLLATION", "TEMPLATE")
_DIGEST_CHARS = 16


def _digest(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:_DIGEST_CHARS]


def _package_files(module_name: str) -> list[Path] | None:
    """The .py files of a package (recursively), or None when there is no such package.

    Found through the import system without importing it (``find_spec`` imports
    the parent packages only, which ``INSTALLED_APPS`` already did).
    """
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else None
    return sorted(path for location in locations for path in Path(location).rglob("*.py"))


def _files_digest(files: list[Path], root: Path | None = None) -> str:
    hasher = hashlib.sha256()
    for path in files:
        name = str(path.relative_to(root)) if root else path.name
        hasher.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()[:_DIGEST_CHARS]


def _app_part(app_config: Any, migrate: bool) -> str:
    """One app's share: its migration files, or its models' source when it has none.

    Django syncs apps without migrations (and every app when ``TEST["MIGRATE"]``
    is False) straight from their models, so then the models' modules count.
    """
    from django.db.migrations.loader import MigrationLoader

    module_name, _explicit = MigrationLoader.migrations_module(app_config.label)
    files = _package_files(module_name) if module_name and migrate else None
    if files:
        return "migrations:" + _files_digest(files, _common_root(files))
    sources = sorted(
        {
            Path(origin)
            for model in app_config.get_models()
            if (origin := getattr(_module_of(model), "__file__", None))
        }
    )
    return "models:" + _files_digest(sources) if sources else "empty"


def _migration_modules() -> dict[str, str | None]:
    """Each installed app's migrations module as Django resolves it from
    ``MIGRATION_MODULES``, None where it has none. Not the setting itself: it may be
    an object (the usual "disable migrations" class, pytest-django's
    ``--no-migrations``) whose repr holds its memory address, which would differ on
    every run and make every ``--keepdb`` run rebuild the template."""
    from django.db.migrations.loader import MigrationLoader

    return {
        app.label: MigrationLoader.migrations_module(app.label)[0]
        for app in apps.get_app_configs()
    }


def migration_files(settings_dict: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per app with migrations: each file of its migrations package (path inside
    the package) and a digest of its bytes. A snapshot records them, to tell later
    that only migrations were added since (each old file still there, unchanged)."""
    from django.db.migrations.loader import MigrationLoader

    if (settings_dict.get("TEST") or {}).get("MIGRATE", True) is False:
        return {}
    found: dict[str, dict[str, str]] = {}
    for app in apps.get_app_configs():
        module_name, _explicit = MigrationLoader.migrations_module(app.label)
        files = _package_files(module_name) if module_name else None
        if files:
            root = _common_root(files)
            found[app.label] = {str(path.relative_to(root)): _digest(path.read_bytes())
                                for path in files}
    return found


def _common_root(files: list[Path]) -> Path:
    root = Path(files[0]).parent
    while not all(root in path.parents for path in files):
        root = root.parent
    return root


def _module_of(model: Any) -> Any:
    return sys.modules.get(model.__module__)


def _cache_tables() -> list[str]:
    """The database cache tables ``createcachetable`` makes in the template after
    ``migrate``: a template is reused (and its clone plan cached) only while they match."""
    from django.core.cache import caches
    from django.core.cache.backends.db import BaseDatabaseCache

    tables = set()
    for cache_alias in getattr(settings, "CACHES", {}) or {}:
        cache = caches[cache_alias]
        if isinstance(cache, BaseDatabaseCache):
            tables.add(str(getattr(cache, "_table", "")))
    return sorted(tables)


def extra_files_digest(entries: Any) -> str | None:
    """``SCHEMAISO["FINGERPRINT_EXTRA"]``: what data migrations read beyond their own
    files. Each string is a file, a directory (every file under it) or a glob, relative
    to ``settings.BASE_DIR`` when the project sets it, else to the working directory;
    their bytes count. Other values (a dict of settings, say) count as they are, being
    part of the ``SCHEMAISO`` setting."""
    if not entries:
        return None
    if isinstance(entries, (str, bytes)) or not isinstance(entries, (list, tuple)):
        raise SchemaIsoError(
            "schemaiso: SCHEMAISO['FINGERPRINT_EXTRA'] must be a list of paths (files, "
            f"directories or globs) and values, not {entries!r}."
        )
    base = Path(getattr(settings, "BASE_DIR", None) or Path.cwd())
    files: set[Path] = set()
    for entry in entries:
        if isinstance(entry, str):
            files.update(_matching_files(base, entry))
    hasher = hashlib.sha256()
    for path in sorted(files):
        # Named relative to the base, so the digest is the same in every checkout.
        name = str(path.relative_to(base)) if base in path.parents else path.name
        hasher.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()[:_DIGEST_CHARS]


def _matching_files(base: Path, entry: str) -> list[Path]:
    path = Path(entry).expanduser()
    path = path if path.is_absolute() else base / path
    found = [p for p in sorted(Path(path.anchor).glob(str(path.relative_to(path.anchor))))]
    files = [f for p in found for f in ([p] if p.is_file() else sorted(p.rglob("*")))
             if f.is_file() and "__pycache__" not in f.parts]
    if not files:
        raise SchemaIsoError(
            f"schemaiso: SCHEMAISO['FINGERPRINT_EXTRA'] entry {entry!r} matches no file "
            f"(looked for {path}; relative paths start at settings.BASE_DIR, else the "
            "working directory). Fix the path or remove the entry."
        )
    return files


def compute(alias: str, settings_dict: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of ``alias``'s migrated state: a small JSON-able dict."""
    test = settings_dict.get("TEST") or {}
    migrate = test.get("MIGRATE", True) is not False
    routers = [r if isinstance(r, str) else type(r).__qualname__ for r in settings.DATABASE_ROUTERS]
    config = {
        "alias": alias,
        "engine": settings_dict.get("ENGINE"),
        "test": {key: test.get(key) for key in _TEST_KEYS},
        "installed_apps": [app.name for app in apps.get_app_configs()],
        "migration_modules": _migration_modules(),
        "routers": routers,
        "auth_user_model": getattr(settings, "AUTH_USER_MODEL", None),
        "schemaiso": {key: value for key, value in (getattr(settings, "SCHEMAISO", None) or {}).items()
                      if key not in NOT_FINGERPRINTED_KEYS},
        "cache_tables": _cache_tables(),
    }
    return {
        "django": django.get_version(),
        "schemaiso": __version__,
        "settings": _digest(json.dumps(config, sort_keys=True, default=repr)),
        "apps": {app.label: _app_part(app, migrate) for app in apps.get_app_configs()},
        **({"extra": extra} if (extra := extra_files_digest(
            (getattr(settings, "SCHEMAISO", None) or {}).get("FINGERPRINT_EXTRA"))) else {}),
    }


def differences(kept: Any, current: dict[str, Any]) -> list[str]:
    """What differs between a kept template's fingerprint and this run's, in words.

    Empty when they match. A template from before fingerprints, or one whose
    ``migrate`` never finished, has none, and that is a difference too.
    """
    if not isinstance(kept, dict):
        return ["the kept template has no fingerprint (an earlier migrate did not finish)"]
    found: list[str] = []
    for key, label in (("django", "Django"), ("schemaiso", "schemaiso")):
        if kept.get(key) != current[key]:
            found.append(f"{label} {kept.get(key)} -> {current[key]}")
    if kept.get("extra") != current.get("extra"):
        found.append("files named in SCHEMAISO['FINGERPRINT_EXTRA'] changed")
    if kept.get("settings") != current["settings"]:
        found.append(
            "settings changed (INSTALLED_APPS, MIGRATION_MODULES, DATABASE_ROUTERS, "
            "AUTH_USER_MODEL, SCHEMAISO, database cache tables or the database's ENGINE/TEST)"
        )
    kept_apps = kept.get("apps")
    old_apps: dict[str, Any] = kept_apps if isinstance(kept_apps, dict) else {}
    changed = sorted(
        label for label in set(old_apps) | set(current["apps"])
        if old_apps.get(label) != current["apps"].get(label)
    )
    if changed:
        shown = ", ".join(changed[:8]) + (", ..." if len(changed) > 8 else "")
        found.append(f"migrations or models changed in {shown}")
    return found
