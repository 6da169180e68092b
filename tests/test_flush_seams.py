"""The fast flush's seams (backends/flush.py) on an isolated connection, in process:
the introspection sql_flush uses lists what Django's lists, sql_flush returns
Django's text without touching the database, and the flush's own statements run
only for the statement sql_flush made."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import transaction
from django.db.backends.base.introspection import BaseDatabaseIntrospection
from django.test.utils import CaptureQueriesContext

from schemaiso.backends.flush import FlushStatement
from schemaiso.backends.state import get_state

from .conftest import admin_connect


class _Rollback(Exception):
    pass


@pytest.fixture
def connection(isolated_default: Any) -> Iterator[Any]:
    state = get_state(isolated_default.settings_dict)
    assert state is not None and state["role"] == "main"
    yield isolated_default


def _both(connection: Any, include_views: bool) -> tuple[list[str], list[str]]:
    ours = connection.introspection.django_table_names(only_existing=True, include_views=include_views)
    djangos = BaseDatabaseIntrospection.django_table_names(
        connection.introspection, only_existing=True, include_views=include_views)
    return ours, djangos


# Shapes where a model's table name finds something else first on the search_path.
SHAPES = [
    # a view where the table was: a table only with include_views
    "ALTER TABLE auth_user_groups RENAME TO was_user_groups; "
    "CREATE VIEW auth_user_groups AS SELECT 1 AS id",
    # the worker has no such table, the shared schema has: visible, listed
    "ALTER TABLE auth_group_permissions RENAME TO was_group_permissions; "
    "CREATE TABLE public.auth_group_permissions (id int)",
    # a temporary table comes first on every search_path
    "CREATE TEMP TABLE django_content_type (id int)",
    # a sequence of that name hides the shared schema's table
    "ALTER TABLE auth_user RENAME TO was_user; CREATE SEQUENCE auth_user; "
    "CREATE TABLE public.auth_user (id int)",
    # a partitioned table is a table; its partitions are not model tables
    "ALTER TABLE auth_group RENAME TO was_group; "
    "CREATE TABLE auth_group (id int) PARTITION BY RANGE (id); "
    "CREATE TABLE auth_group_1 PARTITION OF auth_group DEFAULT",
]


@pytest.mark.parametrize("shape", ["", *SHAPES])
@pytest.mark.parametrize("include_views", [False, True])
def test_existing_model_tables_are_listed_as_django_lists_them(
    connection: Any, shape: str, include_views: bool
) -> None:
    try:
        with transaction.atomic():
            if shape:
                with connection.cursor() as cursor:
                    cursor.execute(shape)
            ours, djangos = _both(connection, include_views)
            assert ours == djangos
            assert type(ours) is list
            raise _Rollback
    except _Rollback:
        pass


def test_sql_flush_returns_djangos_text_and_runs_nothing(connection: Any) -> None:
    tables = ["auth_group", "django_content_type"]
    with CaptureQueriesContext(connection) as captured:
        made = connection.ops.sql_flush(no_style(), tables, allow_cascade=True)
        restarted = connection.ops.sql_flush(no_style(), tables, reset_sequences=True)
    assert captured.captured_queries == []
    assert made == ['TRUNCATE "auth_group", "django_content_type" CASCADE;']
    assert isinstance(made[0], FlushStatement) and made[0].allow_cascade
    # RESTART IDENTITY resets every table's sequences: Django's statement, as is.
    assert restarted == ['TRUNCATE "auth_group", "django_content_type" RESTART IDENTITY;']
    assert not isinstance(restarted[0], FlushStatement)


def test_a_flush_empties_only_what_holds_rows_and_keeps_sequences(connection: Any) -> None:
    from django.contrib.auth.models import Group, User

    User.objects.create(username="u")
    group = Group.objects.create(name="g")
    with CaptureQueriesContext(connection) as captured:
        call_command("flush", verbosity=0, interactive=False, reset_sequences=False,
                     inhibit_post_migrate=True)
    emptying = [q["sql"] for q in captured.captured_queries if q["sql"].startswith(("TRUNCATE", "DELETE"))]
    assert len(emptying) == 1 and emptying[0].startswith("DELETE"), emptying
    assert "auth_group" in emptying[0] and "auth_user" in emptying[0]
    assert "auth_user_groups" not in emptying[0]  # never held a row
    assert not User.objects.exists() and not Group.objects.exists()
    # as TRUNCATE without RESTART IDENTITY: the sequence goes on
    assert Group.objects.create(name="h").pk == group.pk + 1


def test_a_plain_statement_list_runs_as_given(connection: Any) -> None:
    from django.contrib.auth.models import Group

    Group.objects.create(name="g")
    with CaptureQueriesContext(connection) as captured:
        connection.ops.execute_sql_flush(['TRUNCATE "auth_group" CASCADE;'])
    ran = [q["sql"] for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert ran == ['TRUNCATE "auth_group" CASCADE;']
    assert not Group.objects.exists()


def test_djangos_flush_goes_through_the_three_seams(connection: Any, monkeypatch: Any) -> None:
    """What the fast flush relies on in Django's flush command: the tables come from
    ``introspection.django_table_names(only_existing=True, include_views=False)``,
    the list ``ops.sql_flush`` returns reaches ``ops.execute_sql_flush`` as is, and
    ``post_migrate`` follows when that list is not empty."""
    from django.db.models.signals import post_migrate

    seen: dict[str, Any] = {}
    introspection, ops = connection.introspection, connection.ops
    listed = introspection.django_table_names
    made = ops.sql_flush

    def django_table_names(*args: Any, **kwargs: Any) -> Any:
        seen["listed"] = (args, kwargs)
        return listed(*args, **kwargs)

    def sql_flush(*args: Any, **kwargs: Any) -> Any:
        seen["made"] = made(*args, **kwargs)
        return seen["made"]

    monkeypatch.setattr(introspection, "django_table_names", django_table_names)
    monkeypatch.setattr(ops, "sql_flush", sql_flush)
    monkeypatch.setattr(ops, "execute_sql_flush", lambda sql_list: seen.setdefault("ran", sql_list))

    def receiver(**kwargs: Any) -> None:
        seen["post_migrate"] = True

    post_migrate.connect(receiver)
    try:
        call_command("flush", verbosity=0, interactive=False, reset_sequences=False)
    finally:
        post_migrate.disconnect(receiver)
    assert seen["listed"] == ((), {"only_existing": True, "include_views": False})
    assert seen["ran"] is seen["made"] and isinstance(seen["ran"][0], FlushStatement)
    assert seen.get("post_migrate")


def test_a_plan_that_fails_gives_way_to_djangos_statement(
    connection: Any, monkeypatch: Any, caplog: Any
) -> None:
    """A statement of the plan failing (nothing the catalog showed) is rolled back to
    its savepoint, and Django's own statement runs in the same transaction."""
    from django.contrib.auth.models import Group

    from schemaiso.backends import flush
    from schemaiso.flush.plan import FlushStatements

    Group.objects.create(name="g")
    monkeypatch.setattr(flush, "statements", lambda found, dirty: FlushStatements(
        truncated=(), deleted=(), sql=("DELETE FROM no_such_table",)))
    with caplog.at_level("DEBUG", logger="schemaiso"):
        call_command("flush", verbosity=0, interactive=False, reset_sequences=False,
                     inhibit_post_migrate=True)
    assert not Group.objects.exists()
    assert "Django's flush of schema" in caplog.text and "no_such_table" in caplog.text


def test_rows_another_session_is_still_writing_are_flushed_once_it_commits(
    connection: Any,
) -> None:
    """Django's TRUNCATE waits for a transaction writing to a table, then empties it;
    the fast flush waits too (its probe alone would miss rows not yet committed)."""
    import threading

    from django.contrib.auth.models import Group
    from django.db import connections

    state = get_state(connection.settings_dict)
    assert state is not None
    database = connection.settings_dict["NAME"]
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            call_command("flush", verbosity=0, interactive=False, reset_sequences=False,
                         inhibit_post_migrate=True)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connection

    with admin_connect(database) as writer, admin_connect(database) as watcher:
        pid = writer.execute("SELECT pg_backend_pid()")[0][0]
        writer.execute(f"BEGIN; INSERT INTO \"{state['schema']}\".auth_group (name) VALUES ('pending')")
        flushing = threading.Thread(target=flush)
        flushing.start()
        # Ready when the flush waits for a lock the writer holds.
        while not watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]
        ):
            assert flushing.is_alive() and not errors, errors
        writer.execute("COMMIT")
        flushing.join(60)
    assert not flushing.is_alive() and not errors, errors
    assert not Group.objects.exists()
