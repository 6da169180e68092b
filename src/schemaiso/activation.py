"""Applying schema isolation to a project's connections at run time.

The runner calls :func:`install` so that no ENGINE change is needed: every
PostgreSQL-family connection (stock, PostGIS, a project's own subclass) gets the
wrapper and creation mixins, in the main process and in every worker. New
connections are covered too (other threads, spawned workers) because the
connection handler's ``create_connection`` is wrapped. :func:`uninstall` puts
everything back where a run ends.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.db import connections

from .backends.creation import SchemaIsolationCreationMixin
from .backends.extensions import IssuedQueryOperationsMixin
from .backends.flush import FastFlushOperationsMixin, WorkerTablesIntrospectionMixin
from .backends.state import close_with_pool
from .backends.subclass import mix_into, same_named_subclass
from .backends.wrapper import SchemaIsolationWrapperMixin

#: What ``isolate`` replaced on each connection it changed: its class, its creation,
#: its ops's class and its introspection's class, for ``uninstall`` to put back.
_replaced: weakref.WeakKeyDictionary[Any, tuple[type, Any, type, type]] = weakref.WeakKeyDictionary()
#: Marks the handler's instance dict with what ``install`` found there.
_INSTALLED = "_schemaiso_installed"
#: ``create_connection`` was the class's method, not an instance attribute.
_NOT_SET = object()


class IsolatedOperationsMixin(FastFlushOperationsMixin, IssuedQueryOperationsMixin):
    """An isolated connection's ``ops``: the fast flush and the query log as issued."""


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
        ops_class=same_named_subclass(IsolatedOperationsMixin, getattr(wrapper_class, "ops_class")),
        introspection_class=same_named_subclass(
            WorkerTablesIntrospectionMixin, getattr(wrapper_class, "introspection_class")
        ),
    )


def isolate(connection: Any) -> bool:
    """Give one PostgreSQL connection object schema isolation; False for other vendors."""
    if connection.vendor != "postgresql":
        return False
    if isinstance(connection, SchemaIsolationWrapperMixin):
        return True
    _replaced[connection] = (type(connection), connection.creation, type(connection.ops),
                             type(connection.introspection))
    connection.__class__ = isolated_class(type(connection))
    connection.creation = connection.creation_class(connection)
    mix_into(connection.ops, IsolatedOperationsMixin)
    mix_into(connection.introspection, WorkerTablesIntrospectionMixin)
    return True


def install() -> None:
    """Isolate every PostgreSQL alias now and every connection created from now on."""
    handler: Any = connections
    if _INSTALLED not in vars(handler):
        create_connection = handler.create_connection

        def create_isolated_connection(alias: str) -> Any:
            connection = create_connection(alias)
            isolate(connection)
            return connection

        found = vars(handler).get("create_connection", _NOT_SET)
        handler.create_connection = create_isolated_connection
        setattr(handler, _INSTALLED, found)
    for alias in handler:
        isolate(handler[alias])


def installed() -> bool:
    """Whether :func:`install` is in effect (a run that finds it on leaves it on)."""
    return _INSTALLED in vars(connections)


def uninstall() -> None:
    """Undo :func:`install`: new connections are stock again, and so are this thread's.

    Each connection isolation changed is closed, with its pool, before it gets its
    class, creation and ops back: its session and its pool's ``configure`` callback
    set the ``search_path``. Connections of other threads belong to those threads,
    as they do for Django's ``close_all``. Calling it again does nothing.
    """
    handler: Any = connections
    found = vars(handler).pop(_INSTALLED, None)
    if found is _NOT_SET:
        del handler.create_connection
    elif found is not None:
        handler.create_connection = found
    for connection in handler.all(initialized_only=True):
        replaced = _replaced.pop(connection, None)
        if replaced is None:
            continue
        close_with_pool(connection)
        (connection.__class__, connection.creation, connection.ops.__class__,
         connection.introspection.__class__) = replaced


def close_connections() -> None:
    """Close this thread's connections and their pools.

    Forked workers inherit open sockets: a pool's connections would be used without
    the pool's threads (the run hangs), and a worker closing an inherited
    connection ends the parent's session. So the parent closes everything first.
    """
    for connection in connections.all(initialized_only=True):
        close_with_pool(connection)
