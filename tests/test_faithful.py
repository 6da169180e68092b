"""What Django's own test suite observes of a connection stays as under the stock runner.

Each test here reproduces a failure seen in Django's suite (``tests/runtests.py``)
under ``TEST_RUNNER = "schemaiso.Runner"``: the connection's class names,
``execute_wrappers``, the query log of extension DDL, and what ``create_test_db``
does when Django's ``backends.base.test_creation`` mocks its parts. Whatever
Django's tests can see, a project's tests can see too.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import connections
from django.db.backends.base.creation import BaseDatabaseCreation
from django.db.backends.postgresql import base as postgresql
from django.test.utils import CaptureQueriesContext

from schemaiso import activation
from schemaiso.backends.creation import SchemaIsolationCreationMixin
from schemaiso.backends.state import get_state

from .conftest import admin_connect


def _stock_wrapper() -> Any:
    return postgresql.DatabaseWrapper({**connections["default"].settings_dict}, alias="default")


def test_an_isolated_connection_keeps_its_class_names_and_repr() -> None:
    connection = _stock_wrapper()
    stock = (repr(connection), type(connection.creation).__qualname__, type(connection.ops).__qualname__)
    assert activation.isolate(connection)
    assert (repr(connection), type(connection.creation).__qualname__,
            type(connection.ops).__qualname__) == stock
    assert repr(connection) == "<DatabaseWrapper vendor='postgresql' alias='default'>"
    assert type(connection).__module__ == postgresql.DatabaseWrapper.__module__
    # Made from the isolated class, as a new thread's connection is: the same names.
    made = activation.isolated_class(postgresql.DatabaseWrapper)(
        {**connections["default"].settings_dict}, alias="default"
    )
    assert repr(made) == repr(connection)
    assert type(made.creation).__name__ == "DatabaseCreation"
    assert isinstance(made.creation, SchemaIsolationCreationMixin)


def test_execute_wrappers_stay_the_projects_own() -> None:
    connection = _stock_wrapper()
    activation.isolate(connection)
    assert connection.execute_wrappers == []
    made = activation.isolated_class(postgresql.DatabaseWrapper)(
        {**connections["default"].settings_dict}, alias="default"
    )
    assert made.execute_wrappers == []

    def project_wrapper(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        return execute(sql, params, many, context)

    with made.execute_wrapper(project_wrapper):
        assert made.execute_wrappers == [project_wrapper]
    assert made.execute_wrappers == []


@pytest.fixture
def in_main_schema(isolated_default: Any) -> Iterator[Any]:
    """The isolated default alias in its main schema, where tests run."""
    state = get_state(isolated_default.settings_dict)
    assert state is not None and state["role"] == "main"
    yield isolated_default


def _extension_schema(database: str, name: str) -> str | None:
    with admin_connect(database) as admin:
        rows = admin.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = %s",
            [name],
        )
    return str(rows[0][0]) if rows else None


def test_extension_ddl_is_logged_and_wrapped_as_issued(in_main_schema: Any) -> None:
    connection = in_main_schema
    database = connection.settings_dict["NAME"]
    create = 'CREATE EXTENSION IF NOT EXISTS "tablefunc"'
    drop = 'DROP EXTENSION IF EXISTS "tablefunc"'
    seen: list[str] = []

    def project_wrapper(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(project_wrapper):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.execute(create)
            cursor.execute("SELECT 2")
            # Skipped (the template and other workers share it), and logged as
            # issued: not None, and not the statement before it on this cursor.
            cursor.execute(drop)
    assert seen == ["SELECT 1", create, "SELECT 2", drop]
    assert [query["sql"] for query in captured.captured_queries] == ["SELECT 1", create, "SELECT 2", drop]
    # What the server got: the extension in the shared schema, and kept.
    assert _extension_schema(database, "tablefunc") == get_state(connection.settings_dict)["shared"]  # type: ignore[index]


def _connection_copy() -> Any:
    """As Django's backends.base.test_creation.get_connection_copy() makes it."""
    test_connection = copy.copy(connections["default"])
    test_connection.settings_dict = copy.deepcopy(connections["default"].settings_dict)
    return test_connection


@pytest.fixture
def stock_parts_mocked() -> Iterator[mock.MagicMock]:
    """What TestDbCreationTests mocks: the parts stock create_test_db touches.
    Anything else that reaches the database fails the test."""
    no_database = AssertionError("create_test_db reached the database beyond the stock steps")
    with (
        mock.patch("django.db.migrations.recorder.MigrationRecorder.has_table", return_value=False),
        mock.patch("django.core.management.commands.migrate.Command.sync_apps"),
        mock.patch("django.core.management.commands.migrate.emit_pre_migrate_signal"),
        mock.patch("django.core.management.commands.migrate.emit_post_migrate_signal"),
        mock.patch("django.db.migrations.executor.MigrationExecutor.migrate") as migrate,
        mock.patch.object(BaseDatabaseCreation, "serialize_db_to_string", return_value=""),
        mock.patch.object(postgresql.DatabaseWrapper, "cursor", side_effect=no_database),
        mock.patch.object(postgresql.DatabaseWrapper, "_nodb_cursor", side_effect=no_database),
    ):
        yield migrate


def _creation_of_copy(creation_class: type | None = None) -> Any:
    activation.install()
    test_connection = _connection_copy()
    test_connection.ensure_connection = mock.Mock()
    test_connection.prepare_database = mock.Mock()
    return (creation_class or test_connection.creation_class)(test_connection)


def test_create_test_db_does_only_stock_work_when_its_parts_are_mocked(
    stock_parts_mocked: mock.MagicMock,
) -> None:
    creation = _creation_of_copy()
    assert isinstance(creation, SchemaIsolationCreationMixin)
    old_name = creation.connection.settings_dict["NAME"]
    expected = creation._get_test_db_name()
    with mock.patch.object(creation, "_create_test_db", return_value="test_mocked"):
        assert creation.create_test_db(verbosity=0, autoclobber=True) == expected
    stock_parts_mocked.assert_called()
    with mock.patch.object(creation, "_destroy_test_db"):
        creation.destroy_test_db(old_name, verbosity=0)


class _WarningCreation(postgresql.DatabaseWrapper.creation_class):  # type: ignore[misc, name-defined]
    """A stock-style create_test_db that warns at its caller, as Django 6.1 does."""

    def create_test_db(self, *args: Any, **kwargs: Any) -> str:
        warnings.warn("stock deprecation", DeprecationWarning, stacklevel=2)
        return super().create_test_db(*args, **kwargs)  # type: ignore[no-any-return]


def test_django_warnings_through_our_overrides_point_at_the_caller(
    stock_parts_mocked: mock.MagicMock,
) -> None:
    isolated = type("DatabaseCreation", (SchemaIsolationCreationMixin, _WarningCreation), {})
    creation = _creation_of_copy(isolated)
    with (
        mock.patch.object(creation, "_create_test_db", return_value="test_mocked"),
        pytest.warns(DeprecationWarning, match="stock deprecation") as caught,
    ):
        creation.create_test_db(verbosity=0, autoclobber=True)
    assert [w.filename for w in caught] == [__file__]

    if inspect.signature(BaseDatabaseCreation.create_test_db).parameters["serialize"].default is None:
        # Django 6.1 deprecates create_test_db(serialize): its own warning, too.
        creation = _creation_of_copy()
        with (
            mock.patch.object(creation, "_create_test_db", return_value="test_mocked"),
            pytest.warns(Warning, match=r"create_test_db\(serialize\) is deprecated") as caught,
        ):
            creation.create_test_db(verbosity=0, serialize=False)
        assert [w.filename for w in caught] == [__file__]
