"""The ``SCHEMAISO`` setting, read and checked in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .errors import SchemaIsoError
from .naming import DEFAULT_PREFIX, validate_schema_name

_KNOWN_KEYS = {"PREFIX", "SHARED_SCHEMA", "SERIAL_TAGS", "CLONE_CONCURRENCY"}


@dataclass(frozen=True)
class Config:
    """What a project may change; every key is optional.

    ``SCHEMAISO = {"PREFIX": "schemaiso", "SHARED_SCHEMA": "public",
    "SERIAL_TAGS": ["serial"], "CLONE_CONCURRENCY": None}``
    """

    prefix: str = DEFAULT_PREFIX
    shared_schema: str = "public"
    serial_tags: frozenset[str] = frozenset({"serial"})
    #: Schemas cloned at once; None picks from the cores and the server's lock table.
    clone_concurrency: int | None = None


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
    shared = validate_schema_name(
        raw.get("SHARED_SCHEMA", "public"), setting="SCHEMAISO['SHARED_SCHEMA']"
    )
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
    return Config(
        prefix=prefix,
        shared_schema=shared,
        serial_tags=frozenset(tags),
        clone_concurrency=concurrency,
    )
