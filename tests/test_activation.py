"""Isolation applies to every PostgreSQL-family wrapper, including a project's own subclass."""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.backends.postgresql import base as postgresql

from schemaiso import activation
from schemaiso.backends.creation import SchemaIsolationCreationMixin
from schemaiso.backends.wrapper import SchemaIsolationWrapperMixin


class ProjectWrapper(postgresql.DatabaseWrapper):  # type: ignore[misc]
    """What a project might use as its ENGINE's DatabaseWrapper."""

    marker = "project"


def _wrapper(cls: type) -> Any:
    return cls({**connections["default"].settings_dict}, alias="default")


def test_a_projects_own_wrapper_subclass_is_isolated_and_keeps_its_behaviour() -> None:
    connection = _wrapper(ProjectWrapper)
    assert activation.isolate(connection)
    assert isinstance(connection, SchemaIsolationWrapperMixin)
    assert isinstance(connection, ProjectWrapper) and connection.marker == "project"
    assert isinstance(connection.creation, SchemaIsolationCreationMixin)
    assert isinstance(connection.creation, postgresql.DatabaseWrapper.creation_class)
    # One isolated class per original class, reused.
    assert type(connection) is activation.isolated_class(ProjectWrapper)
    assert activation.isolate(connection)
    assert type(connection) is activation.isolated_class(ProjectWrapper)


def test_other_vendors_keep_stock_behaviour() -> None:
    from django.db.backends.sqlite3 import base as sqlite3

    connection = sqlite3.DatabaseWrapper({**connections["default"].settings_dict, "NAME": ":memory:"})
    assert not activation.isolate(connection)
    assert type(connection) is sqlite3.DatabaseWrapper
