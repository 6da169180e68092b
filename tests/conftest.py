"""Fixtures: the real PostgreSQL server and ``manage.py test`` runs of testproject."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTPROJECT = ROOT / "testproject"


def _has_psycopg3() -> bool:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


#: Django's connection pool (OPTIONS["pool"]) exists for psycopg 3 only; the
#: psycopg2 tox environment runs every other combination.
POOL_MODES = [False, True] if _has_psycopg3() else [False]

#: How many runs in a row the repetition tests make (colliding tests, run after
#: run). 10 by default, as the isolation proof asks; tox's secondary environments
#: make fewer (tox.ini), so that the whole matrix fits CI's time.
REPEAT_RUNS = int(os.environ.get("SCHEMAISO_TEST_RUNS", "10"))


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail(
            "DATABASE_URL is not set. Run the suite through "
            "`python3 tools/pgserver.py run -- tox` (see README.md), which starts a "
            "throwaway PostgreSQL, or point DATABASE_URL at a server you own.",
            pytrace=False,
        )
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class AdminConnection:
    """An autocommit superuser connection through whichever driver is installed.

    tox runs the suite with psycopg 3 and, in one environment, psycopg2 alone.
    """

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            import psycopg2

            self.raw: Any = psycopg2.connect(url)
            self.raw.autocommit = True
        else:
            self.raw = psycopg.connect(url, autocommit=True)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.raw.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def __enter__(self) -> AdminConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def admin_connect(dbname: str = "postgres") -> AdminConnection:
    return AdminConnection(with_database(server_url(), dbname))


@dataclass
class Run:
    """One finished ``manage.py`` subprocess."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def explain(self) -> str:
        command = " ".join(self.args) if self.args[:1] == ["pytest"] else "manage.py " + " ".join(self.args)
        return f"$ {command}\nexit {self.returncode}\n{self.output}"


@dataclass
class Started:
    """A ``manage.py`` subprocess still running."""

    args: list[str]
    proc: subprocess.Popen[str]

    def finish(self, timeout: float = 600) -> Run:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers too
            stdout, stderr = self.proc.communicate()
            stderr += f"\n[killed after {timeout} s]"
        return Run(self.args, self.proc.returncode, stdout, stderr)


@dataclass
class Project:
    """testproject pointed at a database name of its own on the test server."""

    name: str
    tmp_path: Path

    @property
    def url(self) -> str:
        return with_database(server_url(), self.name)

    @property
    def snapshot_dir(self) -> Path:
        return self.tmp_path / "snapshots"

    @property
    def test_databases(self) -> list[str]:
        return [f"test_{self.name}", f"test_{self.name}_reports"]

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TESTPROJECT_", "SCHEMAISO_", "DJANGO_SETTINGS_MODULE"))
        }
        env.update(DATABASE_URL=self.url, PYTHONUNBUFFERED="1")
        # Snapshots are on by default, as for users, in a directory of this test's
        # own: every cold run writes one, and none leaks from test to test.
        env["SCHEMAISO_SNAPSHOT_DIR"] = str(self.snapshot_dir)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        env.update(extra)
        return env

    def manage(self, *args: str, timeout: float = 600, **env: str) -> Run:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=TESTPROJECT,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Run(list(args), proc.returncode, proc.stdout, proc.stderr)

    def pytest(self, *args: str, timeout: float = 600, **env: str) -> Run:
        """pytest (pytest-django, pytest-xdist, schemaiso's plugin) on testproject
        with its pytest.ini, in an environment free of this run's pytest variables."""
        return self.start_pytest(*args, **env).finish(timeout)

    def start_pytest(self, *args: str, **env: str) -> Started:
        """Start such a pytest run without waiting for it."""
        clean = {k: v for k, v in self.env(**env).items() if not k.startswith("PYTEST_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-c", "pytest.ini", "--rootdir", ".",
             "-p", "no:cacheprovider", *args],
            cwd=TESTPROJECT, env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        return Started(["pytest", *args], proc)

    def start(self, *args: str, **env: str) -> Started:
        """Start ``manage.py`` without waiting for it (runs at the same time as others)."""
        proc = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=TESTPROJECT,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
        return Started(list(args), proc)

    def leftovers(self) -> dict[str, list[str]]:
        """What this project left on the server: test databases and our schemas."""
        found: dict[str, list[str]] = {}
        with admin_connect() as conn:
            existing = {
                r[0]
                for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s",
                    [f"test\\_{self.name}%"],
                )
            }
        for db in sorted(existing):
            with admin_connect(db) as conn:
                found[db] = [
                    r[0]
                    for r in conn.execute(
                        "SELECT nspname FROM pg_namespace "
                        "WHERE obj_description(oid, 'pg_namespace') LIKE 'schemaiso:%' "
                        "ORDER BY 1"
                    )
                ]
        return found

    def drop_everything(self) -> None:
        with admin_connect() as conn:
            for db in [self.name, *self.test_databases]:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A testproject with its own database names, removed afterwards whatever happens."""
    proj = Project(name=f"e2e_{uuid.uuid4().hex[:10]}", tmp_path=tmp_path)
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{proj.name}"')
    try:
        yield proj
    finally:
        proj.drop_everything()


@pytest.fixture
def role_without_createdb() -> Iterator[str]:
    """A login role that may not create databases, dropped with what it owns."""
    role = f"si_role_{uuid.uuid4().hex[:8]}"
    with admin_connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        yield role
    finally:
        with admin_connect() as conn:
            for (db,) in conn.execute("SELECT datname FROM pg_database WHERE datallowconn"):
                with admin_connect(db) as dbconn:
                    dbconn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def as_role(project: Project, role: str) -> str:
    """The project's DATABASE_URL, connecting as ``role``."""
    parts = urlsplit(project.url)
    netloc = f"{role}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def isolated_default(django_db_blocker: Any) -> Iterator[Any]:
    """The default alias, isolated, with a freshly created test database."""
    from django.db import connections

    from schemaiso import activation
    from schemaiso.backends.state import STATE_KEY, get_state

    with django_db_blocker.unblock():
        activation.install()
        connection = connections["default"]
        saved_test = dict(connection.settings_dict["TEST"])
        old_name = connection.settings_dict["NAME"]
        connection.settings_dict["TEST"]["NAME"] = f"test_inproc_{uuid.uuid4().hex[:8]}"
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        state = get_state(connection.settings_dict)
        try:
            yield connection
        finally:
            connection.settings_dict[STATE_KEY] = state
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
            connection.settings_dict["TEST"] = saved_test
