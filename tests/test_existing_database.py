"""SCHEMAISO['EXISTING_DATABASE']: a role without CREATEDB runs the suite inside
databases it was given, as on managed PostgreSQL.

The databases hold objects of their own in ``public``: a table with a row, an
extension, and a ``django_migrations`` table that claims every app's first
migration as applied. If ``public`` were on the ``search_path`` while ``migrate``
runs into the template, Django's MigrationRecorder would read that table, skip
the migrations and every test would fail on missing tables.
"""

from __future__ import annotations

import pytest

from .conftest import Project, admin_connect, as_role

LABELS = ("isolation", "shop", "library")
APPS = ("admin", "auth", "contenttypes", "sessions", "library", "shop", "isolation", "serialproof")


@pytest.fixture
def existing_databases(project: Project, role_without_createdb: str) -> Project:
    """The project's test databases, created by an administrator, with CREATE granted
    to the role and the database's own objects in ``public``."""
    with admin_connect() as conn:
        for db in project.test_databases:
            conn.execute(f'CREATE DATABASE "{db}"')
            conn.execute(f'GRANT CONNECT, CREATE ON DATABASE "{db}" TO "{role_without_createdb}"')
    for db in project.test_databases:
        with admin_connect(db) as conn:
            conn.execute(
                "CREATE TABLE public.precious (id int PRIMARY KEY, note text);"
                "INSERT INTO public.precious VALUES (1, 'keep me');"
                "CREATE TABLE public.django_migrations (id serial PRIMARY KEY, "
                "app varchar(255), name varchar(255), applied timestamptz);"
                "CREATE EXTENSION fuzzystrmatch SCHEMA public"
            )
            conn.execute(
                "INSERT INTO public.django_migrations (app, name, applied) "
                "SELECT unnest(%s::text[]), '0001_initial', now()",
                [list(APPS)],
            )
    return project


def database_contents(db: str) -> dict[str, object]:
    """What an administrator sees in ``db``: schemas, extensions and public's rows."""
    with admin_connect(db) as conn:
        return {
            "schemas": [
                r[0] for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                    "AND nspname <> 'information_schema' ORDER BY 1"
                )
            ],
            "extensions": conn.execute(
                "SELECT extname, extnamespace::regnamespace::text FROM pg_extension ORDER BY 1"
            ),
            "precious": conn.execute("SELECT id, note FROM public.precious"),
            "recorded": conn.execute("SELECT count(*) FROM public.django_migrations")[0][0],
        }


UNTOUCHED = {
    "extensions": [("fuzzystrmatch", "public"), ("plpgsql", "pg_catalog")],
    "precious": [(1, "keep me")],
    "recorded": len(APPS),
}


def test_a_role_without_createdb_runs_inside_existing_databases(
    existing_databases: Project, role_without_createdb: str
) -> None:
    project = existing_databases
    url = as_role(project, role_without_createdb)

    run = project.manage(
        "test", *LABELS, "--parallel", "2", "--noinput",
        DATABASE_URL=url, TESTPROJECT_EXISTING_DATABASE="1",
    )
    assert run.returncode == 0, run.explain()
    assert "working inside the existing database" in run.output, run.explain()
    # The migrations ran into the template although public claims them applied,
    # and the extensions they create went into schemaiso's own shared schema.
    assert "extension(s) fuzzystrmatch (in public)" in run.output, run.explain()
    assert "last run out of the existing database" in run.output, run.explain()
    for db in project.test_databases:
        # The databases stay, with nothing of ours left and nothing of theirs changed.
        assert database_contents(db) == {"schemas": ["public"], **UNTOUCHED}
    with admin_connect() as conn:
        assert conn.execute(
            "SELECT rolcreatedb FROM pg_roles WHERE rolname = %s", [role_without_createdb]
        ) == [(False,)]


def test_keepdb_inside_an_existing_database_reuses_template_and_schemas(
    existing_databases: Project, role_without_createdb: str
) -> None:
    project = existing_databases
    env = {"DATABASE_URL": as_role(project, role_without_createdb),
           "TESTPROJECT_EXISTING_DATABASE": "1"}
    first = project.manage("test", *LABELS, "--parallel", "2", "--noinput", "--keepdb", **env)
    assert first.returncode == 0, first.explain()
    second = project.manage("test", *LABELS, "--parallel", "2", "--noinput", "--keepdb", **env)
    assert second.returncode == 0, second.explain()
    assert "is up to date; migrate skipped" in second.output, second.explain()
    assert "rebuilding" not in second.output, second.explain()
    kept = project.leftovers()[f"test_{project.name}"]
    assert "schemaiso_template" in kept and "schemaiso_shared" in kept, kept
    assert len([s for s in kept if s.startswith("schemaiso_spare_")]) == 2, kept
    contents = database_contents(f"test_{project.name}")
    assert contents["precious"] == UNTOUCHED["precious"]
    assert contents["recorded"] == UNTOUCHED["recorded"]
    # The extensions the migrations create live in the shared schema, next to the
    # one the administrator installed in public.
    assert ("hstore", "schemaiso_shared") in contents["extensions"]  # type: ignore[operator]
    assert ("fuzzystrmatch", "public") in contents["extensions"]  # type: ignore[operator]

    # A run without --keepdb, last out, drops everything schemaiso made there.
    last = project.manage("test", *LABELS, "--parallel", "2", "--noinput", **env)
    assert last.returncode == 0, last.explain()
    assert database_contents(f"test_{project.name}") == {"schemas": ["public"], **UNTOUCHED}


def test_without_the_opt_in_the_role_is_told_about_it(
    existing_databases: Project, role_without_createdb: str
) -> None:
    project = existing_databases
    run = project.manage(
        "test", "isolation", "--noinput", DATABASE_URL=as_role(project, role_without_createdb)
    )
    assert run.returncode != 0, run.explain()
    assert "Traceback" not in run.output, run.explain()
    assert "lacks the CREATEDB privilege" in run.output, run.explain()
    assert "SCHEMAISO = {'EXISTING_DATABASE': True}" in run.output, run.explain()
    assert database_contents(f"test_{project.name}") == {"schemas": ["public"], **UNTOUCHED}


def test_a_missing_existing_database_is_named(
    project: Project, role_without_createdb: str
) -> None:
    run = project.manage(
        "test", "isolation", "--noinput",
        DATABASE_URL=as_role(project, role_without_createdb), TESTPROJECT_EXISTING_DATABASE="1",
    )
    assert run.returncode != 0, run.explain()
    assert "Traceback" not in run.output, run.explain()
    assert f"existing database 'test_{project.name}', but it does not exist" in run.output, (
        run.explain()
    )
    assert "DATABASES['default']['TEST']['NAME']" in run.output, run.explain()
