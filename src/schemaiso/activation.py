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
from .backends.extensions import IssuedQueryOperationsMixin
from .backends.state import close_with_pool
from .backends.subclass import mix_into, same_named_subclass
from .backends.wrapper import SchemaIsolationWrapperMixin


def isolated_class(wrapper_class: type) -> type:
    """The wrapper class with schema isolation mixed in (one per original class),
    named as the original (backends/subclass.py says why)."""
    if issubclass(wrapper_class, SchemaIsolationWrapperMixin):
        return wrapper_class
    return same_named_subclass(
        SchemaIsolationWrapperMixin,
        wrapper_class,
        creation_class=same_named_subclass(
            SchemaIsolationCreationMixin, getattr(wrapper_class, "creation_class")
        ),
        ops_class=same_named_subclass(IssuedQueryOperationsMixin, getattr(wrapper_class, "ops_class")),
    )


def isolate(connection: Any) -> bool:
    """Give one PostgreSQL connection object schema isolation; False for other vendors."""
    if connection.vendor != "postgresql":
        return False
    if isinstance(connection, SchemaIsolationWrapperMixin):
        return True
    connection.__class__ = isolated_class(type(connection))
    connection.creation = connection.creation_class(connection)
    mix_into(connection.ops, IssuedQueryOperationsMixin)
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
