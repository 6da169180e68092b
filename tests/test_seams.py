"""What the patches no seam replaces rely on, pinned (docs/how-it-works.md, "Patches no
seam replaces"): each test fails when a Django or pytest release changes it.

Fast and direct: no test database, no subprocess. The end-to-end tests named in the
table show the same patches at work.
"""

from __future__ import annotations

import copy
import inspect
import threading
from typing import Any
from unittest import mock

import pytest
from _pytest.runner import SetupState
from django.conf import settings
from django.db import connections
from django.db.backends.base.creation import BaseDatabaseCreation
from django.db.backends.postgresql import base as postgresql
from django.db.utils import ConnectionHandler

from schemaiso.backends.template import migrations_skipped_when


def _settings_copy(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(connections["default"].settings_dict), **changes}


# -- activation.install wraps connections.create_connection ------------------------


def test_the_handler_makes_every_connection_through_its_create_connection_attribute() -> None:
    assert list(inspect.signature(ConnectionHandler.create_connection).parameters) == ["self", "alias"]
    handler = ConnectionHandler({"default": copy.deepcopy(settings.DATABASES["default"])})
    asked: list[str] = []

    def wrapped(alias: str) -> Any:  # what install() puts on the instance
        asked.append(alias)
        return ConnectionHandler.create_connection(handler, alias)

    handler.create_connection = wrapped  # type: ignore[method-assign]
    made = handler["default"]
    other_thread = threading.Thread(target=lambda: handler["default"])
    other_thread.start()
    other_thread.join()
    assert asked == ["default", "default"]  # this thread's, then the new thread's
    assert isinstance(made, postgresql.DatabaseWrapper)


# -- activation.isolate swaps the connection's class and replaces its creation -------


def test_a_wrapper_builds_its_parts_from_class_attributes_and_its_creation_holds_only_it() -> None:
    connection = postgresql.DatabaseWrapper(_settings_copy(), alias="default")
    # The isolated class's creation_class and ops_class reach connections made from it.
    assert type(connection.creation) is postgresql.DatabaseWrapper.creation_class
    assert type(connection.ops) is postgresql.DatabaseWrapper.ops_class
    # A new creation loses nothing: the stock one holds the connection alone.
    assert vars(connection.creation) == {"connection": connection}
    # Instances whose class can be swapped: no __slots__ anywhere up the line.
    for obj in (connection, connection.ops):
        assert all("__slots__" not in vars(cls) for cls in type(obj).__mro__[:-1]), type(obj)


# -- migrations_skipped_when replaces django.core.management.call_command ------------


def test_create_test_db_calls_migrate_and_createcachetable_through_the_module_at_call_time() -> None:
    connection = copy.copy(connections["default"])
    connection.settings_dict = _settings_copy()
    creation = BaseDatabaseCreation(connection)
    commands: list[tuple[str, str]] = []

    def recorded(name: str, *args: Any, **options: Any) -> None:
        commands.append((name, options["database"]))

    name = settings.DATABASES["default"]["NAME"]  # create_test_db changes it
    try:
        with (
            mock.patch("django.core.management.call_command", recorded),
            migrations_skipped_when(lambda alias: False),  # wraps the recorder
            mock.patch.object(creation, "_create_test_db"),
            mock.patch.object(creation, "serialize_db_to_string", return_value=""),
            mock.patch.object(connection, "close"),
            mock.patch.object(connection, "ensure_connection"),
        ):
            creation.create_test_db(verbosity=0)
    finally:
        settings.DATABASES["default"]["NAME"] = name
    assert commands == [("migrate", "default"), ("createcachetable", "default")]


def test_a_restore_before_migrate_can_skip_both_commands() -> None:
    """``before_migrate`` runs once, before a ``migrate`` that was not skipped; a
    snapshot it restores makes ``skip`` true for ``migrate`` and ``createcachetable``."""
    restored: list[str] = []
    ran: list[str] = []

    def recorded(name: str, *args: Any, **options: Any) -> None:
        ran.append(name)

    with (
        mock.patch("django.core.management.call_command", recorded),
        migrations_skipped_when(lambda alias: bool(restored), before_migrate=restored.append),
    ):
        from django.core import management

        management.call_command("migrate", database="default")
        management.call_command("createcachetable", database="default")
    assert restored == ["default"] and ran == []


# -- snapshots: what Django's CreateExtension does after creating an extension --------


def test_create_extension_clears_the_type_caches_and_registers_handlers_as_a_restore_does() -> None:
    """``backends/snapshots._register_extension_types`` repeats what Django's
    ``CreateExtension`` does after ``CREATE EXTENSION``, for the extensions a restore
    created instead of ``migrate``: both caches are ``functools.lru_cache``s, and
    ``register_type_handlers`` takes the connection."""
    from django.contrib.postgres import operations, signals

    for cached in (signals.get_hstore_oids, signals.get_citext_oids):
        assert callable(getattr(cached, "cache_clear", None))
    assert list(inspect.signature(signals.register_type_handlers).parameters)[0] == "connection"
    forwards = inspect.getsource(operations.CreateExtension.database_forwards)
    for step in ("get_hstore_oids.cache_clear()", "get_citext_oids.cache_clear()",
                 "register_type_handlers(schema_editor.connection)",
                 "register_geometry_adapters"):
        assert step in forwards, step


# -- _forget_inherited_pool pops Django's _connection_pools in forked workers ---------


def test_a_pool_lives_in_the_class_level_dict_per_alias_and_one_popped_is_made_anew() -> None:
    pools = vars(postgresql.DatabaseWrapper)["_connection_pools"]
    assert isinstance(pools, dict)
    pytest.importorskip("psycopg_pool")  # Django pools with psycopg 3 only
    alias = "schemaiso_pinned"
    connection = postgresql.DatabaseWrapper(_settings_copy(OPTIONS={"pool": True}), alias=alias)
    made = []
    try:
        made.append(connection.pool)  # made closed: nothing connects
        assert pools[alias] is made[0]
        set_aside = pools.pop(alias)  # what a forked worker does with its parent's
        made.append(connection.pool)
        assert made[1] is not set_aside and pools[alias] is made[1]
    finally:
        pools.pop(alias, None)
        for pool in made:
            pool.close()


# -- the pytest plugin tears down to the session before a serial test ----------------


class _Node:
    """The parts of a pytest node SetupState uses."""

    def __init__(self, name: str, log: list[str], parent: _Node | None = None) -> None:
        self.name, self.log, self.parent = name, log, parent

    def listchain(self) -> list[_Node]:
        return ([] if self.parent is None else self.parent.listchain()) + [self]

    def setup(self) -> None:
        self.log.append(f"setup {self.name}")

    def teardown(self) -> None:
        self.log.append(f"teardown {self.name}")


def test_setupstate_tears_down_to_the_node_given_and_pytest_then_finds_nothing_left(
    request: pytest.FixtureRequest,
) -> None:
    # What the plugin reaches: the running session's SetupState, the session its own chain.
    running = request.session._setupstate
    assert isinstance(running, SetupState)
    assert request.session in running.stack and request.node in running.stack
    assert request.session.listchain() == [request.session]

    log: list[str] = []
    session = _Node("session", log)
    module = _Node("module", log, session)
    item = _Node("test", log, _Node("TestCase", log, module))
    serial = _Node("serial test", log, module)
    state: Any = SetupState()
    state.setup(item)
    state.teardown_exact(session)  # the plugin, before a serial test
    assert log[-3:] == ["teardown test", "teardown TestCase", "teardown module"]
    assert list(state.stack) == [session]
    state.teardown_exact(serial)  # pytest's own, right after
    state.setup(serial)
    assert log[-2:] == ["setup module", "setup serial test"]
