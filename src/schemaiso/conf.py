"""The ``SCHEMAISO`` setting, read and checked in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .errors import SchemaIsoError
from .naming import DEFAULT_PREFIX, fit_name, validate_schema_name

_KNOWN_KEYS = {
    "PREFIX", "SHARED_SCHEMA", "SERIAL_TAGS", "CLONE_CONCURRENCY", "EXISTING_DATABASE",
}


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
    prefix = validate_schema_name(
        raw.get("PREFIX", DEFAULT_PREFIX), setting="SCHEMAISO['PREFIX']"
    )
    if len(prefix) > 30:
        raise SchemaIsoError(
            f"schemaiso: SCHEMAISO['PREFIX'] {prefix!r} is longer than 30 characters; "
            "schema names add a run id and worker number to it. Shorten it."
        )
    shared = raw.get("SHARED_SCHEMA")
    if shared is not None:
        shared = validate_schema_name(shared, setting="SCHEMAISO['SHARED_SCHEMA']")
    tags = raw.get("SERIAL_TAGS", ["serial"])
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise SchemaIsoError(
            "schemaiso: SCHEMAISO['SERIAL_TAGS'] must be a list of tag names, "
            'e.g. ["serial"].'
        )
    concurrency = raw.get("CLONE_CONCURRENCY")
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise SchemaIsoError(
            f"schemaiso: SCHEMAISO['CLONE_CONCURRENCY'] must be a positive integer or None "
            f"(pick from the cores and the server's lock table), not {concurrency!r}."
        )
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
        serial_tags=frozenset(tags),
        clone_concurrency=concurrency,
        existing_database=existing,
    )


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
