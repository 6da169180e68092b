"""Schema names: run ids, worker names, validation and quoting.

Which of those schemas are really ours is the marker's job (markers.py).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from .errors import SchemaIsoError

#: PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
MAX_IDENTIFIER_BYTES = 63
DEFAULT_PREFIX = "schemaiso"

_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HASH_CHARS = 8


def new_run_id() -> str:
    """A short random id that keeps two runs on one server apart."""
    return secrets.token_hex(4)


def validate_schema_name(name: str, *, setting: str = "schema name") -> str:
    """Return ``name`` if it is a safe schema name, else raise a clear error.

    Safe means letters, digits and ``_`` only, not starting with a digit, not a
    reserved ``pg_`` name, and at most 63 bytes. Names are quoted everywhere anyway;
    this keeps them predictable in ``search_path`` values and marker lookups.
    """
    if not _SAFE_NAME.match(name):
        raise SchemaIsoError(
            f"schemaiso: {setting} {name!r} is not a safe schema name. Use letters, "
            "digits and '_' only, starting with a letter or '_'."
        )
    if name.lower().startswith("pg_"):
        raise SchemaIsoError(
            f"schemaiso: {setting} {name!r} starts with 'pg_', which PostgreSQL "
            "reserves for system schemas. Choose another name."
        )
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise SchemaIsoError(
            f"schemaiso: {setting} {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes, "
            "PostgreSQL's identifier limit. Choose a shorter name."
        )
    return name


def fit_name(name: str) -> str:
    """Shorten ``name`` to 63 bytes deterministically, keeping it unique with a hash.

    PostgreSQL would silently truncate a longer identifier, so two long names that
    differ only at the end would collide. The hash of the full name keeps them apart.
    """
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:_HASH_CHARS]
    keep = MAX_IDENTIFIER_BYTES - _HASH_CHARS - 1
    return f"{name[:keep]}_{digest}"


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL text, doubling embedded quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string constant that reads the same whatever standard_conforming_strings says.

    A value with a backslash (a marker's JSON escapes, an enum label, a comment)
    becomes an ``E''`` string with the backslashes doubled: a plain literal
    would lose them, or end early, on a server with the setting off.  NUL is
    refused: PostgreSQL text never holds it, libpq would cut the statement
    there, and the clone engine's placeholders are made of it.
    """
    if "\0" in value:
        raise ValueError(f"schemaiso: a SQL string literal cannot contain NUL: {value[:60]!r}")
    text = value.replace("'", "''")
    if "\\" in text:
        return "E'" + text.replace("\\", "\\\\") + "'"
    return "'" + text + "'"


@dataclass(frozen=True)
class SchemaNames:
    """The names of one run's schemas in one test database."""

    prefix: str
    run_id: str

    def __post_init__(self) -> None:
        validate_schema_name(self.prefix, setting="SCHEMAISO['PREFIX']")
        if not re.fullmatch(r"[0-9a-f]{1,16}", self.run_id):
            raise SchemaIsoError(f"schemaiso: invalid run id {self.run_id!r}.")

    @property
    def template(self) -> str:
        """The schema ``migrate`` runs into; shared by runs so ``--keepdb`` can reuse it."""
        return fit_name(f"{self.prefix}_template")

    @property
    def run_template(self) -> str:
        """A template of this run alone, for when the shared one is in use by another
        run and does not fit this one (other migrations, or no ``--keepdb``)."""
        return fit_name(f"{self.prefix}_{self.run_id}_template")

    @property
    def main(self) -> str:
        """The main process's schema: tests without ``--parallel`` and serial tests."""
        return fit_name(f"{self.prefix}_{self.run_id}_main")

    def worker(self, worker_id: int) -> str:
        """The schema of parallel worker ``worker_id`` (Django counts from 1)."""
        if worker_id < 1:
            raise SchemaIsoError(f"schemaiso: invalid worker id {worker_id}.")
        return fit_name(f"{self.prefix}_{self.run_id}_w{worker_id}")

    @property
    def run_pattern(self) -> str:
        """A ``LIKE`` pattern for this run's schemas."""
        return like_escape(f"{self.prefix}_{self.run_id}_") + "%"


def like_escape(text: str) -> str:
    """``text`` as a ``LIKE`` pattern that matches only itself: ``_`` (which every
    schemaiso name has) and ``%`` match any character otherwise."""
    return text.replace("\\", "\\\\").replace("_", r"\_").replace("%", r"\%")
