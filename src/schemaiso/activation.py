"""Applying schema isolation to a project's connections at run time.

The runner calls :func:`install` so that no ENGINE change is needed: every
PostgreSQL-family connection (stock, PostGIS, a project's own subclass) gets the
wrapper and creation mixins, in the main process and in every worker. New
connections are covered too (other threads, spawned workers) because the
connection handler's ``create_connection`` is wrapped.
"""

from __future__ import annotations

from typing import Any

from django.db import connections

from .backends.creation import SchemaIsolationCreationMixin
from .backends.state import close_with_pool
from .backends.wrapper import SchemaIsolationWrapperMixin

_isolated_classes: dict[type, type] = {}


def isolated_class(wrapper_class: type) -> type:
    """The wrapper class with schema isolation mixed in (one per original class)."""
    if issubclass(wrapper_class, SchemaIsolationWrapperMixin):
        return wrapper_class
    if wrapper_class not in _isolated_classes:
        base_creation: type = getattr(wrapper_class, "creation_class")
        creation_class = type(
            f"SchemaIsolated{base_creation.__name__}",
            (SchemaIsolationCreationMixin, base_creation),
            {"__module__": __name__},
        )
        _isolated_classes[wrapper_class] = type(
            f"SchemaIsolated{wrapper_class.__name__}",
            (SchemaIsolationWrapperMixin, wrapper_class),
            {"creation_class": creation_class, "__module__": __name__},
        )
    return _isolated_classes[wrapper_class]


def isolate(connection: Any) -> bool:
    """Give one PostgreSQL connection object schema isolation; False for other vendors."""
    if connection.vendor != "postgresql":
        return False
    if isinstance(connection, SchemaIsolationWrapperMixin):
        return True
    connection.__class__ = isolated_class(type(connection))
    connection.creation = connection.creation_class(connection)
    connection.isolate_extensions()
    return True


def install() -> None:
    """Isolate every PostgreSQL alias now and every connection created from now on."""
    handler: Any = connections
    if not getattr(handler, "_schemaiso_installed", False):
        create_connection = handler.create_connection

        def create_isolated_connection(alias: str) -> Any:
            connection = create_connection(alias)
            isolate(connection)
            return connection

        handler.create_connection = create_isolated_connection
        handler._schemaiso_installed = True
    for alias in handler:
        isolate(handler[alias])


def close_connections() -> None:
    """Close this thread's connections and their pools.

    Forked workers inherit open sockets: a pool's connections would be used without
    the pool's threads (the run hangs), and a worker closing an inherited
    connection ends the parent's session. So the parent closes everything first.
    """
    for connection in connections.all(initialized_only=True):
        close_with_pool(connection)
