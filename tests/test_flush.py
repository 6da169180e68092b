"""The fast flush end to end: after every flush the database holds exactly what it
holds after Django's own flush, and only the tables holding rows were emptied.

testproject's ``flushcheck`` app (TESTPROJECT_FLUSH_CHECK=1) has the hard cases:
tables referencing themselves and each other by keys checked at once, triggers
that write rows and a ``DELETE`` trigger, a partitioned table, a table dropped and
one created by a test, rows a live server's thread wrote, a ``TRUNCATE`` trigger,
``available_apps``, ``reset_sequences``, ``serialized_rollback``, and a
``manage.py flush`` inside a test. Each of its tests writes what the database
holds right after the flush that ends it (every table's rows, every sequence's
value) and the statements that emptied it. The same suite runs twice in one
process each (no workers: the order, and so every id and sequence value, is the
same in both runs), once with Django's flush (``SCHEMAISO["FAST_FLUSH"] = False``)
and once with schemaiso's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import Project, admin_connect

#: What library's data migration writes (testproject/library/seed.py).
SEED_AUTHOR = "Seed Author"
SEED_TAGS = ("fiction", "history", "science")

FLUSH_CHECK = {"TESTPROJECT_FLUSH_CHECK": "1"}
#: A table no flushcheck test ever writes.
NEVER_WRITTEN = "django_session"


def _run(project: Project, dump: Path, *args: str, **env: str) -> dict[str, dict]:
    dump.mkdir()
    run = project.manage("test", "flushcheck", "--noinput", *args,
                         FLUSHCHECK_DUMP=str(dump), **FLUSH_CHECK, **env)
    assert run.returncode == 0, run.explain()
    found = {path.stem.rsplit(".", 1)[-1]: json.loads(path.read_text())
             for path in dump.glob("*.json")}
    assert len(found) == 14, sorted(found)
    return found


def _djangos(statements: list[str]) -> bool:
    """Whether Django's own statement ran: one TRUNCATE of every table, each name
    quoted (schemaiso's statements quote only names that need it)."""
    return any(sql.startswith('TRUNCATE "') for sql in statements)


def _emptied(statements: list[str]) -> set[str]:
    """The tables the statements of one flush name (every table name has an underscore)."""
    return {name for sql in statements for name in re.findall(r"\b[a-z0-9]+_[a-z0-9_]+\b", sql)}


def test_the_fast_flush_leaves_what_djangos_flush_leaves(project: Project, tmp_path: Path) -> None:
    stock = _run(project, tmp_path / "stock", "--parallel", "1", TESTPROJECT_FAST_FLUSH="0")
    fast = _run(project, tmp_path / "fast", "--parallel", "1")

    for test, after in fast.items():
        tables = after["tables"]
        expected = stock[test]["tables"]
        differing = sorted(t for t in set(tables) | set(expected) if tables.get(t) != expected.get(t))
        assert not differing, (test, {t: (tables.get(t), expected.get(t)) for t in differing})
        assert _djangos(stock[test]["emptied"]), stock[test]["emptied"]

    # A TRUNCATE trigger: Django's flush fires it (after every table is empty), so
    # schemaiso runs Django's statement; everywhere else only what held rows.
    assert _djangos(fast["test_h_a_truncate_trigger"]["emptied"])
    for test, after in fast.items():
        if test != "test_h_a_truncate_trigger":
            assert not _djangos(after["emptied"]), (test, after["emptied"])
            assert NEVER_WRITTEN not in _emptied(after["emptied"]), (test, after["emptied"])

    emptied = {test: _emptied(after["emptied"]) for test, after in fast.items()}
    # Left and Right reference each other by keys checked at once: no order of
    # DELETEs works, so they are truncated; Node references itself, which one
    # DELETE handles; the partitioned table is emptied through its parent.
    orm = fast["test_a_rows_through_the_orm"]["emptied"]
    assert any(sql.startswith("TRUNCATE") and "flushcheck_left" in sql and "flushcheck_right" in sql
               for sql in orm), orm
    assert {"flushcheck_node", "flushcheck_reading"} <= emptied["test_a_rows_through_the_orm"]
    # A DELETE trigger must not fire: the table is truncated; its log rows go too.
    trigger = fast["test_c_rows_by_a_trigger"]["emptied"]
    assert any(sql.startswith("TRUNCATE") and "flushcheck_audited" in sql for sql in trigger), trigger
    assert "flushcheck_auditlog" in emptied["test_c_rows_by_a_trigger"]
    # Rows written and deleted again: the table has pages but no rows, left alone.
    assert "flushcheck_visit" not in emptied["test_d_a_table_the_test_emptied"]
    assert "flushcheck_visit" in emptied["test_rows_written_by_the_live_server"]
    assert "flushcheck_visit" in emptied["test_b_rows_by_raw_sql"]
    assert "flushcheck_transient" in emptied["test_g_a_table_created"]
    # CASCADE beyond available_apps reaches auth_permission, which references
    # django_content_type.
    assert "auth_permission" in emptied["test_flush_cascades_beyond_the_available_apps"]


@pytest.mark.parametrize("runner", ["manage.py test", "pytest"])
def test_a_kept_template_keeps_its_data_migration_rows(project: Project, runner: str) -> None:
    """Django ticket #36043: under stock --keepdb a TransactionTestCase's flush
    erases data-migration rows from the database the next run reuses. Workers
    flush their own schemas, never the template: the kept template still holds the
    rows after every run, and the second run, which skips migrate, finds them
    (library's tests check its seed rows; its TransactionTestCases flush)."""
    for attempt in range(2):
        if runner == "pytest":
            run = project.pytest("-n", "2", "--reuse-db", "-v", "library")
            assert re.search(r"PASSED \S*::test_seed_rows_from_data_migration", run.output), run.explain()
        else:
            run = project.manage("test", "library", "--keepdb", "--parallel", "2", "-v", "2")
            assert "test_seed_rows_from_data_migration (" in run.output, run.explain()
        assert run.returncode == 0, run.explain()
        assert ("migrate skipped" in run.output) == (attempt == 1), run.explain()
        with admin_connect(f"test_{project.name}") as conn:
            authors = conn.execute("SELECT name FROM schemaiso_template.library_author")
            tags = conn.execute("SELECT count(*) FROM schemaiso_template.library_tag")
        assert [row[0] for row in authors] == [SEED_AUTHOR]
        assert tags[0][0] == len(SEED_TAGS)
