"""Runs that die leave schemas; ``manage.py schemaiso list|prune`` and the next run
find them, and a live run's schemas are never touched.

The run is killed the hard way: SIGKILL to its whole process group (main process
and workers), as when a CI job is cancelled, while its tests sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TESTPROJECT, Project
from .test_faults import wait_until_sleeping
from .test_keepdb import TEMPLATE, Evolving, passed, spares


def run_schemas(project: Project) -> list[str]:
    found = project.leftovers().get(f"test_{project.name}", [])
    return [name for name in found if name != TEMPLATE and not name.startswith("schemaiso_spare_")]


def start_sleeping_run(
    project: Project, evolving: Evolving, ready: Path
) -> subprocess.Popen[str]:
    env = project.env(
        TESTPROJECT_EVOLVING=str(evolving.root),
        TESTPROJECT_EVOLVING_COLUMNS=",".join(evolving.columns),
        TESTPROJECT_EVOLVING_SLEEP="60",
        TESTPROJECT_EVOLVING_READY=str(ready),
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "test", "evolving", "--parallel", "2", "--noinput",
         "--keepdb"],
        cwd=TESTPROJECT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def wait_for_workers(project: Project, proc: subprocess.Popen[str], ready: Path) -> list[str]:
    """The run's schemas, once both workers are inside their (sleeping) tests."""
    wait_until_sleeping(proc, ready, lambda: proc.communicate()[0])
    schemas = run_schemas(project)
    assert sum(name.endswith(("_w1", "_w2")) for name in schemas) == 2, schemas
    return schemas


@pytest.mark.heavy  # a run killed with SIGKILL: fault injection
def test_a_killed_run_is_pruned_and_a_live_one_is_not(project: Project, tmp_path: Path) -> None:
    evolving = Evolving(project, tmp_path)
    passed(evolving.run())  # the template exists; the run below reuses it

    ready = tmp_path / "ready"
    ready.mkdir()
    proc = start_sleeping_run(project, evolving, ready)
    try:
        schemas = wait_for_workers(project, proc, ready)

        # Beside the live run: nothing to prune, and list says it is live.
        dry = project.manage("schemaiso", "prune", "--older-than", "1s")
        assert dry.returncode == 0, dry.explain()
        assert "no orphan schemas" in dry.output, dry.explain()
        listing = project.manage("schemaiso", "list")
        assert listing.returncode == 0, listing.explain()
        for name in schemas:
            line = next(x for x in listing.output.splitlines() if x.strip().startswith(name))
            assert " live " in line and str(proc.pid) in line, listing.output
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()

    assert run_schemas(project) == schemas  # left behind by the killed run
    listing = project.manage("schemaiso", "list")
    assert all(
        " dead " in next(x for x in listing.output.splitlines() if x.strip().startswith(name))
        for name in schemas
    ), listing.output
    template_line = next(x for x in listing.output.splitlines() if x.strip().startswith(TEMPLATE))
    assert " template " in template_line and " kept " in template_line, listing.output

    dry = project.manage("schemaiso", "prune", "--dry-run")
    assert dry.returncode == 0, dry.explain()
    assert f"would drop {len(schemas)} schema(s)" in dry.output, dry.explain()
    assert run_schemas(project) == schemas

    # The next run drops them by itself, and says so.
    after = evolving.run()
    passed(after)
    assert f"dropped {len(schemas)} schema(s) left by runs whose process is gone" in after.output, (
        after.explain()
    )
    kept = spares(project)
    assert len(kept) == 2  # the new run's two workers, kept for the next one
    assert project.leftovers() == {f"test_{project.name}": sorted([TEMPLATE, *kept])}


def test_prune_never_touches_unmarked_schemas_and_checks_its_input(
    project: Project, tmp_path: Path
) -> None:
    evolving = Evolving(project, tmp_path)
    passed(evolving.run())
    from .conftest import admin_connect

    with admin_connect(f"test_{project.name}") as conn:
        conn.execute("CREATE SCHEMA schemaiso_deadbeef_w1")  # our naming, no marker
        conn.execute(
            "CREATE SCHEMA schemaiso_cafecafe_w1; COMMENT ON SCHEMA schemaiso_cafecafe_w1 IS "
            "'schemaiso:{\"role\": \"worker\", \"run\": \"cafecafe\", \"host\": \"elsewhere\", "
            "\"pid\": 1, \"created\": 0}'"
        )
    kept = project.manage("schemaiso", "prune")
    assert kept.returncode == 0 and "no orphan schemas" in kept.output, kept.explain()
    old = project.manage("schemaiso", "prune", "--older-than", "2h")
    assert old.returncode == 0, old.explain()
    assert "dropped 1 schema(s)" in old.output and "schemaiso_cafecafe_w1" in old.output
    with admin_connect(f"test_{project.name}") as conn:
        names = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    assert "schemaiso_deadbeef_w1" in names and "schemaiso_cafecafe_w1" not in names
    assert TEMPLATE in names

    bad = project.manage("schemaiso", "prune", "--older-than", "soon")
    assert bad.returncode != 0 and "30m, 2h or 7d" in bad.output, bad.explain()
