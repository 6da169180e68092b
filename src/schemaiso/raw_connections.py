"""The worker's schema for connections that Django does not open.

schemaiso sets ``search_path`` on every connection Django opens for an alias. A
connection made some other way (``psycopg.connect`` with the settings' parameters,
an SQLAlchemy engine, a subprocess running ``psql`` or ``manage.py``) starts with
the test database's default ``search_path`` instead, where the project's tables do
not exist. These give such a connection the same schemas (docs/adopting.md).
"""

from __future__ import annotations

from django.db import connections

from .backends import state
from .naming import quote_ident


def search_path(alias: str = "default") -> list[str]:
    """The schemas, first to last, that this process's connections to ``alias`` use
    right now: the worker's (or main process's) schema, then the shared schema that
    holds extensions. Empty outside a schemaiso test run, or for an alias schemaiso
    does not manage (then the default ``search_path`` is the right one)."""
    return list(state.search_path(connections[alias].settings_dict) or [])


def libpq_options(alias: str = "default") -> str:
    """``search_path(alias)`` as libpq ``options`` (``-c search_path=...``): pass it as
    ``psycopg.connect(..., options=...)`` or in ``PGOPTIONS`` for a subprocess.
    Empty when :func:`search_path` is: then leave ``options`` out, since even an
    empty ``options`` replaces the ``PGOPTIONS`` a connection would otherwise read."""
    path = search_path(alias)
    if not path:
        return ""
    value = ",".join(map(quote_ident, path))
    # libpq splits options at spaces unless a backslash escapes them.
    return "-c search_path=" + value.replace("\\", "\\\\").replace(" ", "\\ ")
