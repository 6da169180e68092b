"""The DatabaseWrapper mixin: every new connection starts in the right schema."""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import NO_DB_ALIAS

from ..naming import quote_ident
from .extensions import SharedExtensionsCursorMixin
from .state import search_path
from .subclass import mix_into


class SchemaIsolationWrapperMixin:
    """Set ``search_path`` on every connection a process opens for this alias.

    Works on top of any PostgreSQL-family ``DatabaseWrapper`` (stock, PostGIS, a
    project's own subclass). Two paths open connections: ``init_connection_state``
    for plain connections and the psycopg pool's ``configure`` callback, which Django
    points at ``_configure_connection``. Both go through ``_configure_connection``;
    pooled connections are set again on every checkout, because a session-level
    ``SET`` done by one test would otherwise follow the connection back to the pool.

    Its cursor wrappers keep extension DDL in the shared schema (extensions.py).
    """

    settings_dict: dict[str, Any]
    alias: str
    connection: Any

    def make_cursor(self, cursor: Any) -> Any:
        wrapped = super().make_cursor(cursor)  # type: ignore[misc]
        mix_into(wrapped, SharedExtensionsCursorMixin)
        return wrapped

    def make_debug_cursor(self, cursor: Any) -> Any:
        wrapped = super().make_debug_cursor(cursor)  # type: ignore[misc]
        mix_into(wrapped, SharedExtensionsCursorMixin)
        return wrapped

    def _configure_connection(self, connection: Any) -> bool:
        commit: bool = super()._configure_connection(connection)  # type: ignore[misc]
        return self._set_search_path(connection) or commit

    def init_connection_state(self) -> None:
        super().init_connection_state()  # type: ignore[misc]
        pooled = self.connection is not None and getattr(self, "pool", None)
        if pooled and self._set_search_path(self.connection) and not self.get_autocommit():  # type: ignore[attr-defined]
            self.connection.commit()

    def _set_search_path(self, connection: Any) -> bool:
        """Run ``SET search_path`` for this alias's schema; True when something ran."""
        if self.alias == NO_DB_ALIAS:
            return False
        path = search_path(self.settings_dict)
        if path is None:
            return False
        with connection.cursor() as cursor:
            cursor.execute("SET search_path TO " + ", ".join(map(quote_ident, path)))
        return True
