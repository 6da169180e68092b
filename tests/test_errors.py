"""Bad input gets a clear message naming the alias, role, database or setting, and what to do."""

from __future__ import annotations

import socket

import pytest

from .conftest import Project, Run, admin_connect, as_role


def assert_clean_error(run: Run, *fragments: str) -> None:
    assert run.returncode != 0, run.explain()
    assert "Traceback" not in run.output, run.explain()
    for fragment in fragments:
        assert fragment in run.output, f"missing {fragment!r}\n{run.explain()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_names_alias_and_host(project: Project) -> None:
    port = free_port()
    run = project.manage(
        "test", "library", "--noinput",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/nowhere",
    )
    assert_clean_error(run, "alias 'default'", f"127.0.0.1:{port}", "DATABASES['default']")


def test_missing_createdb_names_role_database_and_grant(
    project: Project, role_without_createdb: str
) -> None:
    run = project.manage(
        "test", "library", "--noinput", DATABASE_URL=as_role(project, role_without_createdb)
    )
    assert_clean_error(
        run,
        f"role '{role_without_createdb}'",
        f"'test_{project.name}'",
        "alias 'default'",
        f'ALTER ROLE "{role_without_createdb}" CREATEDB',
        "SCHEMAISO = {'EXISTING_DATABASE': True}",
    )
    assert project.leftovers() == {}


def test_missing_create_on_kept_database_names_the_grant(
    project: Project, role_without_createdb: str
) -> None:
    # A kept test database the role may connect to but not create schemas in.
    with admin_connect() as conn:
        for db in project.test_databases:
            conn.execute(f'CREATE DATABASE "{db}"')
    run = project.manage(
        "test", "library", "--noinput", "--keepdb",
        DATABASE_URL=as_role(project, role_without_createdb),
    )
    assert_clean_error(
        run,
        f"role '{role_without_createdb}'",
        f"GRANT CREATE ON DATABASE \"test_{project.name}\" TO \"{role_without_createdb}\"",
    )


def test_tables_in_the_shared_schema_stop_the_run(project: Project) -> None:
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "test_{project.name}"')
    with admin_connect(f"test_{project.name}") as conn:
        conn.execute("CREATE TABLE public.leftover_from_stock_django (id int)")
    run = project.manage("test", "library", "--noinput", "--keepdb")
    assert_clean_error(
        run, "shared schema 'public'", "leftover_from_stock_django", "without --keepdb"
    )
    with admin_connect(f"test_{project.name}") as conn:
        # Nothing outside our schemas was touched.
        assert conn.execute("SELECT count(*) FROM public.leftover_from_stock_django") == [(0,)]


@pytest.mark.parametrize("prefix", ["bad prefix", "pg_mine", "x" * 31])
def test_unsafe_or_long_prefix_is_rejected_with_the_setting_named(
    project: Project, prefix: str
) -> None:
    run = project.manage("test", "library", "--noinput", TESTPROJECT_SCHEMAISO_PREFIX=prefix)
    assert_clean_error(run, "SCHEMAISO['PREFIX']")


def test_custom_prefix_is_used_for_every_schema(project: Project) -> None:
    run = project.manage(
        "test", "library", "isolation", "--parallel", "2", "--noinput",
        TESTPROJECT_SCHEMAISO_PREFIX="ci_job_42",
    )
    assert run.returncode == 0, run.explain()
    assert "template 'ci_job_42_template'" in run.output
    assert project.leftovers() == {}
