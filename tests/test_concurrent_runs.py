"""Two runs at once against one server and one test database (two CI jobs, two
developers): both pass, and neither drops, rebuilds or resets the other's schemas.

Runs coordinate through advisory locks (lease.py). The ``evolving`` app gets a
migration that sleeps, so that the second run arrives while the first is still
migrating, and tests that sleep, so that both runs' workers are busy at once.
testproject's ``isolation`` tests would collide if the two runs shared a schema.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import Project, Run, Started, admin_connect
from .test_keepdb import SKIPPED, TEMPLATE, Evolving, spares

SHARING = "is in use by 1 other run(s); sharing it"
LEAVING = "in place: 1 other run(s) still use it; the last one drops it."
OWN_TEMPLATE = "migrating into this run's own template 'schemaiso_"
WAITING_FOR_BUILD = f"waiting for another run to finish migrating template '{TEMPLATE}'"


def slow_evolving(project: Project, root: Path, *extra_columns: str) -> Evolving:
    root.mkdir()
    evolving = Evolving(project, root)
    evolving.write("0002_slow", ["0001_initial"], "SELECT pg_sleep(6)", "SELECT 1")
    previous = "0002_slow"
    for number, column in enumerate(extra_columns, start=3):
        name = f"{number:04d}_{column}"
        evolving.add_column(name, previous, column)
        previous = name
    return evolving


def start(evolving: Evolving, *, keepdb: bool) -> Started:
    return evolving.project.start(
        "test", "evolving", "isolation", "--parallel", "2", "--noinput",
        *(["--keepdb"] if keepdb else []),
        TESTPROJECT_EVOLVING=str(evolving.root),
        TESTPROJECT_EVOLVING_COLUMNS=",".join(evolving.columns),
        TESTPROJECT_EVOLVING_SLEEP="2",
    )


def wait_until_migrating(project: Project, first: Started) -> None:
    """Return once the first run has created the shared template (it is migrating)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert first.proc.poll() is None, first.finish().explain()
        with admin_connect() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [f"test_{project.name}"]
            )
        if exists:
            with admin_connect(f"test_{project.name}") as conn:
                if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [TEMPLATE]):
                    return
        time.sleep(0.2)
    raise AssertionError("the first run created no template within 120 s")


def passed(run: Run) -> None:
    assert run.returncode == 0, run.explain()
    assert "Ran 24 tests" in run.stderr and "\nOK\n" in run.stderr, run.explain()
    assert "2 worker schemas" in run.output, run.explain()


def two_at_once(first: Evolving, second: Evolving, *, keepdb: bool) -> tuple[Run, Run]:
    """Start ``first``, then ``second`` while the first migrates; both must pass."""
    started = start(first, keepdb=keepdb)
    wait_until_migrating(first.project, started)
    later = start(second, keepdb=keepdb)
    one, two = started.finish(), later.finish()
    passed(one)
    passed(two)
    return one, two


def test_two_runs_without_keepdb_share_the_database_and_the_last_drops_it(
    project: Project, tmp_path: Path
) -> None:
    evolving = slow_evolving(project, tmp_path / "code")
    one, two = two_at_once(evolving, evolving, keepdb=False)

    # The second run found the first migrating: it did not drop the database
    # (Django's autoclobber would have) and migrated a template of its own at once.
    assert SHARING in two.output, two.explain()
    assert OWN_TEMPLATE in two.output, two.explain()
    assert "Destroying old test database" not in two.output, two.explain()
    assert WAITING_FOR_BUILD not in two.output, two.explain()
    # The first to finish left the database to the other; the last one dropped it.
    assert LEAVING in one.output + two.output, one.explain() + two.explain()
    assert project.leftovers() == {}


# heavy, and the next test too: how runs share a kept template is schemaiso's own logic
# (advisory locks, fingerprints). The test above keeps the part that meets Django (its
# autoclobber of an existing test database) in every environment.
@pytest.mark.heavy
def test_two_keepdb_runs_with_the_same_migrations_migrate_once(
    project: Project, tmp_path: Path
) -> None:
    evolving = slow_evolving(project, tmp_path / "code")
    one, two = two_at_once(evolving, evolving, keepdb=True)

    assert SKIPPED not in one.output, one.explain()
    assert WAITING_FOR_BUILD in two.output, two.explain()
    assert SKIPPED in two.output, two.explain()
    assert "rebuilding template" not in one.output + two.output
    # Both kept their worker schemas as spares; the last one out dropped the surplus.
    assert project.leftovers() == {f"test_{project.name}": sorted([TEMPLATE, *spares(project)])}
    assert len(spares(project)) == 2


@pytest.mark.heavy
def test_a_keepdb_run_with_other_migrations_leaves_the_running_template_alone(
    project: Project, tmp_path: Path
) -> None:
    old = slow_evolving(project, tmp_path / "old")
    new = slow_evolving(project, tmp_path / "new", "added")
    one, two = two_at_once(old, new, keepdb=True)

    assert SHARING in two.output, two.explain()
    assert (
        f"template '{TEMPLATE}' is in use by another run and it differs from this run's: "
        "migrations or models changed in evolving; " + OWN_TEMPLATE
    ) in two.output, two.explain()
    assert WAITING_FOR_BUILD not in two.output, two.explain()
    # The shared template is the first run's, untouched; the second run's own
    # template and schemas went with it (they copy a template nobody keeps).
    assert old.template_columns() == ["id"]
    assert project.leftovers() == {f"test_{project.name}": sorted([TEMPLATE, *spares(project)])}
    assert len(spares(project)) == 2

    # The next --keepdb run with the new migrations, alone, rebuilds the template.
    alone = new.run()
    assert alone.returncode == 0, alone.explain()
    assert "rebuilding template" in alone.output, alone.explain()
    assert new.template_columns() == ["id", "added"]
