"""The ``SCHEMAISO`` setting, read and checked in one place."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .errors import SchemaIsoError
from .naming import DEFAULT_PREFIX, fit_name, validate_schema_name

_KNOWN_KEYS = {
    "PREFIX", "SHARED_SCHEMA", "SERIAL_TAGS", "CLONE_CONCURRENCY", "EXISTING_DATABASE",
    "SNAPSHOT_DIR", "SNAPSHOT_KEEP", "FINGERPRINT_EXTRA", "FAST_FLUSH",
}
#: Keys that never change what ``migrate`` makes (where snapshots go, how many
#: clones run at once, which tests are serial): not part of the fingerprint, so that
#: a CI job tuning them still finds its kept template and snapshots.
NOT_FINGERPRINTED_KEYS = frozenset({"SNAPSHOT_DIR", "SNAPSHOT_KEEP", "CLONE_CONCURRENCY",
                                    "SERIAL_TAGS", "FAST_FLUSH"})


@dataclass(frozen=True)
class Config:
    """What a project may change; every key is optional.

    ``SCHEMAISO = {"PREFIX": "schemaiso", "SHARED_SCHEMA": "public",
    "SERIAL_TAGS": ["serial"], "CLONE_CONCURRENCY": None, "EXISTING_DATABASE": False}``
    """

    prefix: str = DEFAULT_PREFIX
    #: The shared schema as set, or None when the setting leaves it out.
    shared_schema_setting: str | None = None
    serial_tags: frozenset[str] = frozenset({"serial"})
    #: Schemas cloned at once; None picks from the cores and the server's lock table.
    clone_concurrency: int | None = None
    #: True for every alias, or the aliases that run inside an existing test
    #: database (no CREATEDB needed; it is never created or dropped).
    existing_database: bool | frozenset[str] = False
    #: ``SNAPSHOT_DIR`` as set (a path, or None for off); ``...`` when left out
    #: (the per-user cache). snapshot/store.py resolves it with the environment.
    snapshot_dir_setting: Any = ...
    #: How many snapshots the directory keeps (the newest).
    snapshot_keep: int = 10
    #: Whether a ``TransactionTestCase`` flush empties only the tables holding rows
    #: (False: Django's own ``TRUNCATE`` of every table).
    fast_flush: bool = True

    def in_existing_database(self, alias: str) -> bool:
        """Whether ``alias`` runs inside an existing database instead of creating one."""
        if isinstance(self.existing_database, bool):
            return self.existing_database
        return alias in self.existing_database

    def shared_schema_for(self, alias: str) -> str:
        """The schema second on every ``search_path`` of ``alias``: ``public`` of the
        test database, or, inside an existing database, where ``public`` holds
        objects that are not ours, a schema of schemaiso's own."""
        if self.in_existing_database(alias):
            return self.shared_schema_setting or fit_name(f"{self.prefix}_shared")
        return self.shared_schema_setting or "public"


def _prefix(value: Any) -> str:
    prefix = validate_schema_name(value, setting="SCHEMAISO['PREFIX']")
    if len(prefix) > 30:
        raise SchemaIsoError(
            f"schemaiso: SCHEMAISO['PREFIX'] {prefix!r} is longer than 30 characters; "
            "schema names add a run id and worker number to it. Shorten it."
        )
    return prefix


def _clone_concurrency(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SchemaIsoError(
            f"schemaiso: SCHEMAISO['CLONE_CONCURRENCY'] must be a positive integer or None "
            f"(pick from the cores and the server's lock table), not {value!r}."
        )
    return value


def get_config() -> Config:
    """Read ``settings.SCHEMAISO`` and fail clearly on anything unexpected."""
    raw: Any = getattr(settings, "SCHEMAISO", None) or {}
    if not isinstance(raw, dict):
        raise SchemaIsoError("schemaiso: settings.SCHEMAISO must be a dict.")
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise SchemaIsoError(
            f"schemaiso: unknown key(s) {sorted(unknown)} in settings.SCHEMAISO; "
            f"known keys are {sorted(_KNOWN_KEYS)}."
        )
    prefix = _prefix(raw.get("PREFIX", DEFAULT_PREFIX))
    shared = raw.get("SHARED_SCHEMA")
    if shared is not None:
        shared = validate_schema_name(shared, setting="SCHEMAISO['SHARED_SCHEMA']")
    tags = validate_serial_tags(raw.get("SERIAL_TAGS", ["serial"]))
    concurrency = _clone_concurrency(raw.get("CLONE_CONCURRENCY"))
    existing = _existing_database(raw.get("EXISTING_DATABASE", False))
    if existing and shared == "public":
        raise SchemaIsoError(
            "schemaiso: SCHEMAISO['SHARED_SCHEMA'] is 'public', but with "
            "SCHEMAISO['EXISTING_DATABASE'] 'public' belongs to the database's own "
            "objects and is never on a worker's search_path. Leave SHARED_SCHEMA out "
            f"(schemaiso then creates its own '{prefix}_shared') or name another schema."
        )
    return Config(
        prefix=prefix,
        shared_schema_setting=shared,
        serial_tags=tags,
        clone_concurrency=concurrency,
        existing_database=existing,
        snapshot_dir_setting=_snapshot_dir(raw.get("SNAPSHOT_DIR", ...)),
        snapshot_keep=_snapshot_keep(raw.get("SNAPSHOT_KEEP", 10)),
        fast_flush=_fast_flush(raw.get("FAST_FLUSH", True)),
    )


def _fast_flush(value: Any) -> bool:
    if not isinstance(value, bool):
        raise SchemaIsoError(
            "schemaiso: SCHEMAISO['FAST_FLUSH'] must be True (empty only the tables a "
            f"test left rows in) or False (Django's TRUNCATE of every table), not {value!r}."
        )
    return value


def _snapshot_dir(value: Any) -> Any:
    if value is ... or value is None or isinstance(value, (str, os.PathLike)) and str(value).strip():
        return value
    raise SchemaIsoError(
        "schemaiso: SCHEMAISO['SNAPSHOT_DIR'] must be a directory path, or None to turn "
        f"snapshots off, not {value!r}."
    )


def _snapshot_keep(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SchemaIsoError(
            "schemaiso: SCHEMAISO['SNAPSHOT_KEEP'] must be a positive integer (how many "
            f"snapshots the directory keeps, newest first), not {value!r}."
        )
    return value


#: The two places serial tag names come from, as error messages name them.
SERIAL_TAGS_SETTING = "SCHEMAISO['SERIAL_TAGS']"
SERIAL_TAGS_OPTION = "--serial-tag"


def validate_serial_tags(tags: Any, *, source: str = SERIAL_TAGS_SETTING) -> frozenset[str]:
    """Check serial tag names from ``source`` (the setting or the ``--serial-tag`` option)
    by one rule, so that a name one of them accepts the other accepts too."""
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Iterable):
        bad: list[Any] = [tags]
    else:
        tags = list(tags)
        bad = [t for t in tags if not isinstance(t, str) or not t.strip()]
        if not bad:
            return frozenset(tags)
    if source == SERIAL_TAGS_OPTION:
        raise SchemaIsoError(
            f"schemaiso: {source} takes a non-empty tag name, not {bad[0]!r}; give one name "
            "per option, e.g. --serial-tag isolate --serial-tag serial."
        )
    raise SchemaIsoError(
        f'schemaiso: {source} must be a list of tag names, e.g. ["serial"]. Got {tags!r}.'
    )


def serial_tags_for_run(
    option: Iterable[str] | None, config: Config | None = None
) -> frozenset[str]:
    """The serial tags of this run: the ``--serial-tag`` names when given (they replace
    the setting's, so that one command picks its own), else ``SCHEMAISO['SERIAL_TAGS']``."""
    if option is not None:
        return validate_serial_tags(option, source=SERIAL_TAGS_OPTION)
    return (config or get_config()).serial_tags


def _existing_database(value: Any) -> bool | frozenset[str]:
    """``EXISTING_DATABASE``: a bool, or a list of the aliases it applies to."""
    if isinstance(value, bool):
        return value
    if (
        isinstance(value, (list, tuple, set, frozenset))
        and value and all(isinstance(alias, str) and alias for alias in value)
    ):
        return frozenset(value)
    raise SchemaIsoError(
        "schemaiso: SCHEMAISO['EXISTING_DATABASE'] must be True, False or a list of "
        f"database aliases, e.g. [\"default\"], not {value!r}."
    )
