"""--keep-failed-schemas: the schema where tests failed stays, with a psql line that works."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import Project, Run


def psql_lines(run: Run) -> list[str]:
    return [line.strip() for line in run.output.splitlines() if line.strip().startswith("psql ")]


def run_printed(command: str) -> str:
    """Run a printed psql line as a user would paste it into a shell."""
    done = subprocess.run(
        command, shell=True, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 0, f"$ {command}\n{done.stdout}{done.stderr}"
    return done.stdout


# fork is heavy (run once): the e2e isolation tests run both start methods everywhere,
# and what is kept does not depend on how the workers started.
@pytest.mark.parametrize("start_method", [pytest.param("fork", marks=pytest.mark.heavy), "spawn"])
def test_failed_worker_schema_is_kept_and_the_printed_psql_line_opens_it(
    project: Project, start_method: str
) -> None:
    failing = {"TESTPROJECT_RUN_FAILING": "1"}
    run = project.manage(
        "test", "demo_failures", "isolation", "--parallel", "2", "--noinput",
        "--keep-failed-schemas", SCHEMAISO_START_METHOD=start_method, **failing,
    )
    assert run.returncode == 1, run.explain()
    assert "FAILED (failures=1, errors=1)" in run.output, run.explain()
    assert "kept 1 schema(s) of alias 'default' where tests failed" in run.output, run.explain()
    [line] = psql_lines(run)
    test_db = f"test_{project.name}"
    kept = [s for s in project.leftovers()[test_db] if s.endswith(("_w1", "_w2"))]
    # Only the worker that ran the failing class keeps its schema.
    assert len(kept) == 1, project.leftovers()
    assert f"dbname={test_db}" in line and f'SET search_path TO "{kept[0]}", "public"' in line
    listing = run_printed(line)
    assert f"{kept[0]} | isolation_" in listing, listing
    schemas = project.manage("schemaiso", "list")
    kept_line = next(x for x in schemas.output.splitlines() if x.strip().startswith(kept[0]))
    assert "worker (failed)" in kept_line, schemas.output

    # Without --parallel the main process's schema is the one kept.
    main = project.manage("test", "demo_failures", "isolation", "--noinput",
                          "--keep-failed-schemas", **failing)
    assert main.returncode == 1, main.explain()
    [line] = psql_lines(main)
    assert "_main" in line, main.explain()
    assert [s for s in project.leftovers()[test_db] if s.endswith("_main")], project.leftovers()
    run_printed(line)

    # The next run starts from a fresh test database; a run that passes keeps nothing.
    clean = project.manage("test", "isolation", "--parallel", "2", "--noinput",
                           "--keep-failed-schemas")
    assert clean.returncode == 0, clean.explain()
    assert not psql_lines(clean), clean.explain()
    assert project.leftovers() == {}


def test_without_the_option_failed_schemas_are_dropped(project: Project) -> None:
    run = project.manage(
        "test", "demo_failures", "isolation", "--parallel", "2", "--noinput",
        TESTPROJECT_RUN_FAILING="1",
    )
    assert run.returncode == 1, run.explain()
    assert not psql_lines(run), run.explain()
    assert project.leftovers() == {}
