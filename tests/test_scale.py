"""A big schema at high parallelism on a server with default lock settings, end to end.

The lock table is shared and small by default (max_locks_per_transaction 64 x
max_connections 100): a transaction creating or dropping a 1000-table schema
does not fit, and several at once certainly do not. testproject's ``wide`` app
creates 1000 tables; ``--parallel 8`` then clones nine schemas of them (eight
workers and the main process's, for the serial class), several at a time.
"""

from __future__ import annotations

import re

import pytest

from .conftest import Project, admin_connect

TABLES = 1000

pytestmark = pytest.mark.heavy


def test_parallel_8_with_1000_tables_on_a_default_server(project: Project) -> None:
    with admin_connect() as admin:
        settings = dict(
            admin.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('max_locks_per_transaction', 'max_connections', 'max_prepared_transactions')"
            )
        )
    assert settings == {
        "max_locks_per_transaction": "64",
        "max_connections": "100",
        "max_prepared_transactions": "0",
    }

    run = project.manage(
        "test", "wide", "--parallel", "8", "--noinput", "--timing", "-v", "2",
        TESTPROJECT_WIDE_TABLES=str(TABLES),
    )

    assert run.returncode == 0, run.explain()
    assert re.search(r"^Ran 18 tests in", run.stderr, re.M), run.explain()
    assert "8 worker schemas" in run.output and "main schema" in run.output, run.explain()
    at_once = re.findall(r"in the background, (\d+) at a time", run.output)
    assert len(at_once) == 8 and int(at_once[0]) > 1, run.explain()
    assert "Waiting for schema clones took" in run.output, run.explain()
    assert "out of shared memory" not in run.output
    assert project.leftovers() == {}
