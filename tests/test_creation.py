"""The creation mixin in-process, against the real server: worker identity and cleanup."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from schemaiso import activation, cleanup, clone
from schemaiso.backends.state import get_state
from schemaiso.errors import SchemaIsoError
from schemaiso.markers import marker
from schemaiso.naming import SchemaNames, quote_ident, quote_literal
from schemaiso.run_options import RunOptions

from .conftest import AdminConnection, admin_connect


def _current_schema(connection: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return str(cursor.fetchone()[0])


def test_main_process_leaves_the_template_after_setup(isolated_default: Any) -> None:
    state = get_state(isolated_default.settings_dict)
    assert state is not None
    names = SchemaNames(state["prefix"], state["run_id"])
    assert _current_schema(isolated_default) == names.main != state["template"]


def test_replacement_worker_gets_its_own_schema_cloned_on_demand(isolated_default: Any) -> None:
    connection = isolated_default
    state = get_state(connection.settings_dict)
    assert state is not None
    names = SchemaNames(state["prefix"], state["run_id"])
    for suffix in ("1", "2"):
        connection.creation.clone_test_db(suffix=suffix, verbosity=0)

    # Django's pool replaced a worker: the new one is number 3, never cloned up front.
    connection.creation.setup_worker_connection(3)

    assert _current_schema(connection) == names.worker(3)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth_permission")
        worker_permissions = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {quote_ident(state['template'])}.auth_permission")
        assert worker_permissions == cursor.fetchone()[0] > 0
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY 1",
            [names.run_pattern],
        )
        assert [r[0] for r in cursor.fetchall()] == sorted(
            [names.main, names.worker(1), names.worker(2), names.worker(3)]
        )


def _tables_per_schema(connection: Any, like: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, count(c.oid) FROM pg_namespace n "
            "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind = 'r' "
            "WHERE n.nspname LIKE %s GROUP BY 1 ORDER BY 1",
            [like],
        )
        return dict(cursor.fetchall())


def test_background_clones_are_complete_after_wait(isolated_default: Any) -> None:
    connection = isolated_default
    state = get_state(connection.settings_dict)
    assert state is not None
    names = SchemaNames(state["prefix"], state["run_id"])
    creation = connection.creation
    creation.run_options = RunOptions(background_clones=True)
    try:
        for suffix in ("1", "2", "3"):
            creation.clone_test_db(suffix=suffix, verbosity=0)
        assert creation.provisioner._clones is not None and creation.provisioner.concurrency >= 1
        creation.wait_for_clones()
    finally:
        creation.run_options = RunOptions()
    template_tables = _tables_per_schema(connection, state["template"])[state["template"]]
    assert _tables_per_schema(connection, names.run_pattern) == {
        names.main: template_tables,
        names.worker(1): template_tables,
        names.worker(2): template_tables,
        names.worker(3): template_tables,
    }
    assert not [t for t in threading.enumerate() if t.name.startswith("schemaiso-clone-")]


def test_a_background_clone_failure_names_the_schema_and_alias(isolated_default: Any) -> None:
    connection = isolated_default
    state = get_state(connection.settings_dict)
    assert state is not None
    names = SchemaNames(state["prefix"], state["run_id"])
    with connection.cursor() as cursor:  # somebody else's schema, where worker 2's would go
        cursor.execute(f"CREATE SCHEMA {quote_ident(names.worker(2))}")
    creation = connection.creation
    creation.run_options = RunOptions(background_clones=True)
    try:
        for suffix in ("1", "2"):
            creation.clone_test_db(suffix=suffix, verbosity=0)
        with pytest.raises(SchemaIsoError) as caught:
            creation.wait_for_clones()
    finally:
        creation.run_options = RunOptions()
        creation.cancel_clones()
    message = str(caught.value)
    assert f"schema '{names.worker(2)}'" in message
    assert "alias 'default'" in message
    assert "already exists" in message


def test_keepdb_teardown_keeps_this_runs_schemas_as_spares_and_the_template(
    django_db_blocker: Any,
) -> None:
    with django_db_blocker.unblock():
        activation.install()
        connection = connections["default"]
        saved_test = dict(connection.settings_dict["TEST"])
        old_name = connection.settings_dict["NAME"]
        test_db = f"test_inproc_{uuid.uuid4().hex[:8]}"
        connection.settings_dict["TEST"]["NAME"] = test_db
        try:
            connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)
            connection.creation.clone_test_db(suffix="1", verbosity=0, keepdb=True)
            connection.creation.clone_test_db(suffix="2", verbosity=0, keepdb=True)
            state = get_state(connection.settings_dict)
            assert state is not None
            changed = SchemaNames(state["prefix"], state["run_id"]).worker(2)
            with admin_connect(test_db) as admin:  # a test's DDL: not worth keeping
                admin.execute(f"ALTER TABLE {quote_ident(changed)}.auth_group ADD COLUMN extra int")
            for suffix in ("1", "2"):
                connection.creation.destroy_test_db(suffix=suffix, verbosity=0, keepdb=True)
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=True)
            with admin_connect(test_db) as admin:
                left = [
                    r[0]
                    for r in admin.execute(
                        "SELECT nspname FROM pg_namespace "
                        "WHERE obj_description(oid, 'pg_namespace') LIKE 'schemaiso:%'"
                    )
                ]
            # This run's main and unchanged worker schemas, renamed for the next
            # --keepdb run; the changed one is dropped, not kept.
            assert changed not in left
            assert sorted(left)[-1] == state["template"]
            assert len(left) == 3
            assert all(name.startswith("schemaiso_spare_") for name in sorted(left)[:-1])
        finally:
            connection.settings_dict["TEST"] = saved_test
            with admin_connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{test_db}" WITH (FORCE)')


# -- dropping big schemas on a default server ------------------------------------------


@pytest.fixture
def scratch_db() -> Iterator[str]:
    name = f"schemaiso_droptest_{uuid.uuid4().hex[:8]}"
    with admin_connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _build_wide_template(conn: AdminConnection, schema: str, tables: int) -> None:
    conn.execute(
        f"CREATE SCHEMA {quote_ident(schema)}; "
        f"COMMENT ON SCHEMA {quote_ident(schema)} IS {quote_literal(marker('template', '0'))}"
    )
    for start in range(0, tables, 100):
        statements = []
        for i in range(start, min(start + 100, tables)):
            ref = f", parent_id bigint REFERENCES t{i - 1} (id)" if i else ""
            statements.append(
                f"CREATE TABLE t{i} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                f"code text UNIQUE, n integer{ref}); CREATE INDEX t{i}_n ON t{i} (n)"
            )
        conn.execute(
            f"BEGIN; SET LOCAL search_path TO {quote_ident(schema)}; "
            + "; ".join(statements)
            + "; COMMIT"
        )


@pytest.mark.heavy
def test_1000_table_schemas_clone_and_drop_within_a_default_lock_table(scratch_db: str) -> None:
    with admin_connect(scratch_db) as conn:
        assert conn.execute("SHOW max_locks_per_transaction") == [("64",)]
        _build_wide_template(conn, "tpl", 1000)
        plan = clone.read_template(conn.raw, "tpl", "public")
        workers = ["schemaiso_0_w1", "schemaiso_0_w2"]
        for worker in workers:
            conn.execute(
                f"CREATE SCHEMA {quote_ident(worker)}; COMMENT ON SCHEMA {quote_ident(worker)} "
                f"IS {quote_literal(marker('worker', '0'))}"
            )
            clone.clone_schema(conn.raw, plan, worker)
        counts = conn.execute(
            "SELECT n.nspname, count(*) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname LIKE %s "
            "GROUP BY 1 ORDER BY 1",
            ["schemaiso%"],
        )
        assert counts == [(w, 1000) for w in workers]

        # One transaction per schema cannot hold that many locks on a default server...
        with pytest.raises(Exception, match="out of shared memory"):
            conn.execute(f"BEGIN; DROP SCHEMA {quote_ident(workers[0])} CASCADE; COMMIT")
        conn.execute("ROLLBACK")
        # ...the batched drop can, and it leaves nothing behind.
        assert cleanup.drop_schemas(conn.raw, workers) == workers
        left = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'schemaiso%'")
        assert left == []


def test_drop_never_touches_an_unmarked_schema(scratch_db: str) -> None:
    with admin_connect(scratch_db) as conn:
        conn.execute("CREATE SCHEMA schemaiso_0_w1; CREATE TABLE schemaiso_0_w1.keep (id int)")
        conn.execute("COMMENT ON SCHEMA schemaiso_0_w1 IS 'somebody else''s schema'")
        assert cleanup.drop_schemas(conn.raw, ["schemaiso_0_w1"]) == []
        assert conn.execute("SELECT count(*) FROM schemaiso_0_w1.keep") == [(0,)]


def test_partitions_and_inheritance_children_drop_before_their_parents_in_small_batches(
    scratch_db: str,
) -> None:
    schema = "schemaiso_0_w1"
    with admin_connect(scratch_db) as conn:
        conn.execute(
            f"CREATE SCHEMA {schema}; COMMENT ON SCHEMA {schema} IS "
            f"{quote_literal(marker('worker', '0'))}; SET search_path TO {schema}; "
            "CREATE TABLE measurement (id int, day date NOT NULL) PARTITION BY RANGE (day); "
            "CREATE INDEX measurement_day ON measurement (day); "
            + "".join(
                f"CREATE TABLE m{i} PARTITION OF measurement FOR VALUES FROM "
                f"('2020-01-{i + 1:02d}') TO ('2020-01-{i + 2:02d}'); "
                for i in range(20)
            )
            + "CREATE TABLE animal (id int PRIMARY KEY); "
            "CREATE TABLE dog (bark text) INHERITS (animal); "
            "CREATE TABLE puppy (age int) INHERITS (dog); "
            "CREATE TABLE plain (id int); RESET search_path"
        )
        budget = 40
        batches = cleanup._relation_batches(conn.raw, schema, budget=budget)
        order = [name for batch in batches for name, _ in batch]
        assert sorted(order) == sorted(
            ["measurement", "animal", "dog", "puppy", "plain"] + [f"m{i}" for i in range(20)]
        )
        assert order.index("puppy") < order.index("dog") < order.index("animal")
        assert max(order.index(f"m{i}") for i in range(20)) < order.index("measurement")
        # 20 partitions with an index each (5 locks apiece) cannot go in one batch of 40.
        assert len(batches) >= 3
        assert cleanup.drop_schemas(conn.raw, [schema], lock_budget=budget) == [schema]
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema]) == [(0,)]
