"""``--keepdb`` warm runs: ``migrate`` is skipped while the fingerprint matches, and
the template is rebuilt, with one line saying why, when a migration changes.

testproject's ``evolving`` app takes its migrations from a directory these tests
write (``TESTPROJECT_EVOLVING``); its tests fail in any worker whose schema does
not have the columns the latest migrations give ``evolving_probe``.
"""

from __future__ import annotations

from pathlib import Path

from .conftest import Project, Run, admin_connect
from .support.evolving import Evolving

TEMPLATE = "schemaiso_template"
SKIPPED = f"schemaiso: alias 'default': template '{TEMPLATE}' is up to date; migrate skipped."
REBUILDING = f"schemaiso: alias 'default': rebuilding template '{TEMPLATE}': "

def spare_oids(project: Project, database: str | None = None) -> dict[int, str]:
    """The kept spare schemas of a test database, by oid (a rename keeps the oid)."""
    with admin_connect(database or f"test_{project.name}") as conn:
        rows = conn.execute(
            "SELECT oid::int8, nspname FROM pg_namespace WHERE nspname LIKE 'schemaiso\\_spare\\_%' "
            "AND obj_description(oid, 'pg_namespace') LIKE 'schemaiso:%' ORDER BY nspname"
        )
    return {int(oid): name for oid, name in rows}


def spares(project: Project) -> list[str]:
    return sorted(spare_oids(project).values())


def passed(run: Run) -> None:
    assert run.returncode == 0, run.explain()
    assert "Ran 4 tests" in run.output, run.explain()
    assert "2 worker schemas" in run.output, run.explain()


def test_warm_run_skips_migrate_and_a_changed_migration_rebuilds(
    project: Project, tmp_path: Path
) -> None:
    evolving = Evolving(project, tmp_path)

    cold = evolving.run()
    passed(cold)
    assert SKIPPED not in cold.output and REBUILDING not in cold.output

    warm = evolving.run("-v", "2")
    passed(warm)
    assert SKIPPED in warm.output, warm.explain()
    # Django's migrate prints this at -v 2 whenever it runs, even with nothing to do.
    assert "Operations to perform" not in warm.output, warm.explain()

    evolving.add_column("0002_added", "0001_initial", "added")
    changed = evolving.run()
    passed(changed)
    assert f"{REBUILDING}migrations or models changed in evolving." in changed.output, (
        changed.explain()
    )
    assert SKIPPED not in changed.output
    assert evolving.template_columns() == ["id", "added"]

    again = evolving.run()
    passed(again)
    assert SKIPPED in again.output, again.explain()
    assert project.leftovers() == {f"test_{project.name}": sorted([TEMPLATE, *spares(project)])}
    assert len(spares(project)) == 2


def test_an_interrupted_migrate_is_never_reused(project: Project, tmp_path: Path) -> None:
    evolving = Evolving(project, tmp_path)
    evolving.write("0002_broken", ["0001_initial"], "SELECT no_such_function()", "")
    broken = evolving.run()
    assert broken.returncode != 0, broken.explain()
    assert "no_such_function" in broken.output, broken.explain()

    (evolving.package / "0002_broken.py").unlink()
    fixed = evolving.run()
    passed(fixed)
    assert REBUILDING in fixed.output, fixed.explain()
    assert "an earlier migrate did not finish" in fixed.output, fixed.explain()


def test_a_settings_change_rebuilds(project: Project, tmp_path: Path) -> None:
    evolving = Evolving(project, tmp_path)
    passed(evolving.run())
    renamed = evolving.project.manage(
        "test", "evolving", "--parallel", "2", "--noinput", "--keepdb",
        TESTPROJECT_EVOLVING=str(tmp_path), TESTPROJECT_EVOLVING_COLUMNS="id",
        TESTPROJECT_WIDE_TABLES="1",
    )
    passed(renamed)
    assert f"{REBUILDING}settings changed" in renamed.output, renamed.explain()


def test_database_cache_tables_come_with_the_template(project: Project) -> None:
    """``createcachetable`` runs into the template when it is built; a warm run skips
    it with ``migrate`` (the cache tables are in the fingerprint, so a matching
    template has them) and its workers, reset spares, still have the table; another
    cache table rebuilds the template."""

    def run(table: str) -> Run:
        return project.manage("test", "dbcache", "--parallel", "2", "--noinput", "--keepdb",
                              TESTPROJECT_DB_CACHE=table)

    passed(run("cache_one"))
    warm = run("cache_one")
    passed(warm)
    assert SKIPPED in warm.output, warm.explain()
    assert "Using existing clone" in warm.output, warm.explain()
    other = run("cache_two")
    passed(other)
    assert f"{REBUILDING}settings changed" in other.output, other.explain()
    with admin_connect(f"test_{project.name}") as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace "
            "AND relkind = 'r' AND relname LIKE 'cache\\_%%' ORDER BY 1",
            [TEMPLATE],
        )
    assert rows == [("cache_two",)]


def test_worker_schemas_are_kept_reset_and_reused_across_worker_counts(project: Project) -> None:
    """library's suite checks migration data, commits rows in TransactionTestCases and
    moves sequences: every warm run must still pass on reused schemas."""

    def run(parallel: int) -> Run:
        result = project.manage("test", "library", "--parallel", str(parallel), "--noinput",
                                "--keepdb")
        assert result.returncode == 0, result.explain()
        return result

    run(2)
    first = spare_oids(project)
    assert len(first) == 2

    more = run(3)  # two reused, one cloned; all three kept
    assert "keeping 3 schema(s) of alias 'default'" in more.output, more.explain()
    second = spare_oids(project)
    assert len(second) == 3 and set(first) < set(second)

    fewer = run(2)  # two reused, the third dropped as surplus
    assert "dropping 1 unused" in fewer.output, fewer.explain()
    third = spare_oids(project)
    assert len(third) == 2 and set(third) < set(second)

    # Changing what migrate produces makes every spare stale: dropped with the template.
    changed = project.manage("test", "library", "--parallel", "2", "--noinput", "--keepdb",
                             TESTPROJECT_WIDE_TABLES="1")
    assert changed.returncode == 0, changed.explain()
    assert REBUILDING in changed.output
    assert not set(spare_oids(project)) & set(third)
