"""Shared pieces of the clone engine tests: drivers, a scratch database, templates and clones.

Each test module that imports the ``database`` fixture gets its own scratch
database, created from DATABASE_URL and dropped at the end of the module.
"""

from __future__ import annotations

import importlib
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from schemaiso.clone import ClonePlan, clone_schema, read_template
from schemaiso.naming import quote_ident

from .support.describe import describe_schema, diff_descriptions

Connect = Callable[[str], Any]


def _driver(name: str) -> Any:
    """The driver module if installed: tox also runs the suite with psycopg2 alone."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def connect_psycopg(dsn: str) -> Any:
    return _driver("psycopg").connect(dsn, autocommit=True)


def connect_psycopg2(dsn: str) -> Any:
    connection = _driver("psycopg2").connect(dsn)
    connection.autocommit = True
    return connection


# Every installed driver (psycopg first, the default); without any, connecting fails loudly.
DRIVERS: dict[str, Connect] = {
    name: factory
    for name, factory in [("psycopg", connect_psycopg), ("psycopg2", connect_psycopg2)]
    if _driver(name) is not None
} or {"psycopg": connect_psycopg}
connect: Connect = next(iter(DRIVERS.values()))


EXTENSIONS = ("hstore", "citext", "pg_trgm", "btree_gist")


def new_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A scratch database with the shared extensions installed in public, dropped at the end."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail(
            "DATABASE_URL is not set: the clone tests need a PostgreSQL 15 server where they may create a"
            " scratch database, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres",
            pytrace=False,
        )
    name = new_name("schemaiso_clonetest")
    admin = connect(url)
    try:
        run(admin, f"CREATE DATABASE {quote_ident(name)}")
        try:
            dsn = urlunsplit(urlsplit(url)._replace(path="/" + name))
            with_extensions = connect(dsn)
            run(
                with_extensions,
                "".join(f"CREATE EXTENSION {extension} SCHEMA public;" for extension in EXTENSIONS),
            )
            with_extensions.close()
            yield dsn
        finally:
            run(admin, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        admin.close()


@pytest.fixture
def conn(database: str) -> Iterator[Any]:
    connection = connect(database)
    try:
        yield connection
    finally:
        connection.close()


def run(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """Execute ``sql``; return the rows of a single statement (drivers differ on multi-statement results)."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


def build_template(conn: Any, sql: str, schema: str | None = None) -> str:
    """Create a template schema by running ``sql`` with it first on the search path."""
    schema = schema or new_name("tpl")
    run(conn, f"CREATE SCHEMA {schema}")
    run(
        conn,
        f"BEGIN; SET LOCAL search_path TO {schema}, public; {sql.format(schema=schema)}; COMMIT",
    )
    return schema


def clone_into(conn: Any, plan: ClonePlan, **kwargs: Any) -> str:
    target = new_name("worker")
    run(conn, f"CREATE SCHEMA {target}")
    clone_schema(conn, plan, target, **kwargs)
    return target



def assert_faithful(conn: Any, template: str, clones: int = 2) -> tuple[ClonePlan, list[str]]:
    """Clone ``template`` and prove the clones faithful and independent of it.

    Every clone must describe exactly like the template, and still describe
    the same after the template is dropped with CASCADE (nothing in a clone
    depends on the template).  Returns the plan and the clones' names.
    """
    plan = read_template(conn, template)
    expected = describe_schema(conn, template)
    targets = [clone_into(conn, plan) for _ in range(clones)]
    for target in targets:
        differences = diff_descriptions(expected, describe_schema(conn, target))
        assert not differences, "\n".join(differences)
    run(conn, f"DROP SCHEMA {quote_ident(template)} CASCADE")
    for target in targets:
        differences = diff_descriptions(expected, describe_schema(conn, target))
        assert not differences, "after dropping the template:\n" + "\n".join(differences)
    return plan, targets


# Entries this session holds in the shared lock table: one per locked object
# whatever the number of modes, and none for fast-path locks.
LOCK_TABLE_ENTRIES = """
SELECT count(*) FROM (
    SELECT DISTINCT locktype, database, relation, page, tuple, virtualxid, transactionid,
        classid, objid, objsubid
    FROM pg_locks WHERE pid = pg_backend_pid() AND NOT fastpath
) AS held
"""


def clone_counting_locks(conn: Any, plan: ClonePlan, target: str, budget: int) -> list[int]:
    """Clone by hand, counting the lock table entries each transaction holds before committing."""
    held = []
    for script in plan.scripts(target, lock_budget=budget):
        run(conn, "BEGIN")
        run(conn, script)
        held.append(run(conn, LOCK_TABLE_ENTRIES)[0][0])
        run(conn, "COMMIT")
    return held
