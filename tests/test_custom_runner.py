"""A project's own runner adopts schemaiso with the mixin: its hooks keep working, its
tests run in worker schemas and the serial phase, and mixin placements that could not
isolate stop the run instead of running without isolation.

The runners are testproject.runners.ProjectRunner (the mixin in front of
DiscoverRunner, hooks of its own) and ComposedRunner (the mixin composed onto the
project's HookedRunner); the tests are the ``customrunner`` app's. Under
``django.test.runner.DiscoverRunner`` those tests fail: they expect worker schemas.
"""

from __future__ import annotations

import re
import uuid

import pytest

from .conftest import Project, Run
from .test_e2e import assert_serial_phase_came_last_and_alone, ran, read_phase_log, setup_line

#: What each runner prints of its own hooks, in order (stdout).
HOOK_LINES = {
    "ProjectRunner": [
        "customrunner: ProjectRunner.setup_test_environment",
        "customrunner: ProjectRunner.setup_databases: 1 test database(s)",
        "customrunner: ProjectRunner.run_suite: ran 5, failures 0, errors 0, skipped 0",
        "customrunner: ProjectRunner.teardown_test_environment",
    ],
    "ComposedRunner": [
        "customrunner: HookedRunner.setup_test_environment",
        # The base's build_suite sees every test; the mixin splits them afterwards.
        "customrunner: HookedRunner.build_suite: 5 test(s)",
        # The base's result class counted the workers' successes too.
        "customrunner: HookedRunner.run_suite: ran 5, failures 0, errors 0, skipped 0, "
        "successes 5",
        "customrunner: HookedRunner.teardown_test_environment",
    ],
}


def own_lines(run: Run) -> list[str]:
    return [line for line in run.stdout.splitlines() if line.startswith("customrunner: ")]


# ProjectRunner's parallel suite redoes its settings in spawned workers (process_setup);
# ComposedRunner's forked workers inherit them.
@pytest.mark.parametrize(
    "runner, start_method", [("ProjectRunner", "spawn"), ("ComposedRunner", "fork")]
)
def test_project_runner_with_the_mixin_keeps_its_hooks_and_isolates_workers(
    project: Project, runner: str, start_method: str
) -> None:
    log = project.tmp_path / "phase.log"
    mark = uuid.uuid4().hex[:8]
    run = project.manage(
        "test", "customrunner", "--parallel", "2", "--noinput",
        "--customrunner-mark", mark,  # the project runner's own option
        "--keep-failed-schemas",  # and the mixin's, through the project's __init__
        TESTPROJECT_RUNNER=f"testproject.runners.{runner}",
        SCHEMAISO_START_METHOD=start_method,
        SCHEMAISO_PHASE_LOG=str(log),
        CUSTOMRUNNER_EXPECTED_MARK=mark,
        CUSTOMRUNNER_EXPECTED_RUNNER=runner,
    )
    assert run.returncode == 0, run.explain()
    assert ran(run) == 5
    assert own_lines(run) == HOOK_LINES[runner], run.explain()
    line = setup_line(run)
    assert "2 worker schemas" in line and "1 serial test(s)" in line, line
    stdout = run.stdout.splitlines()
    # schemaiso's setup happened inside the project's setup_test_environment ..
    # teardown_test_environment bracket.
    assert stdout.index(HOOK_LINES[runner][0]) < stdout.index(line)
    assert stdout.index(line) < stdout.index(HOOK_LINES[runner][-1])
    run_id = re.search(r"schemaiso_([0-9a-f]{8})_w1", line).group(1)  # type: ignore[union-attr]

    events = read_phase_log(log)
    schemas: dict[int, set[str]] = {}
    for e in events:
        schemas.setdefault(e.pid, set()).add(e.schema)
    parallel_pids = {e.pid for e in events if e.kind == "P"}
    serial_pids = {e.pid for e in events if e.kind == "S"}
    assert len(parallel_pids) == 2 and len(serial_pids) == 1, events
    assert not parallel_pids & serial_pids
    # One schema per process, none shared: two workers' and the main process's.
    assert all(len(s) == 1 for s in schemas.values()), schemas
    assert sorted(s for pid in parallel_pids for s in schemas[pid]) == [
        f"schemaiso_{run_id}_w1", f"schemaiso_{run_id}_w2"
    ]
    assert schemas[serial_pids.pop()] == {f"schemaiso_{run_id}_main"}
    assert_serial_phase_came_last_and_alone(events)
    assert project.leftovers() == {}


#: Runner module and class -> what its error must name (the class involved, and what to do).
BROKEN = {
    "misordered.MisorderedRunner": ["MisorderedRunner", "SchemaIsolationMixin"],
    "foreign_suite.ForeignSuiteRunner": [
        "ForeignSuiteRunner", "parallel_test_suite", "ProjectParallelTestSuite",
        "SchemaIsolatedParallelTestSuite",
    ],
    "inherited_suite.InheritedSuiteRunner": [
        "InheritedSuiteRunner", "parallel_test_suite", "ProjectParallelTestSuite",
        "SchemaIsolatedParallelTestSuite",
    ],
}


@pytest.mark.parametrize("runner", sorted(BROKEN), ids=lambda r: r.split(".")[1])
def test_mixin_that_cannot_isolate_stops_the_run_with_a_clear_error(
    project: Project, runner: str
) -> None:
    run = project.manage(
        "test", "customrunner", "--parallel", "2", "--noinput",
        TESTPROJECT_RUNNER=f"customrunner.broken.{runner}",
        CUSTOMRUNNER_EXPECTED_MARK="", CUSTOMRUNNER_EXPECTED_RUNNER="",
    )
    assert run.returncode == 1, run.explain()
    # Refused before any test database exists or any test runs.
    assert "Creating test database" not in run.output, run.explain()
    assert not re.search(r"^Ran \d+ tests?", run.stderr, re.M), run.explain()
    error = [line for line in run.output.splitlines() if "schemaiso: " in line]
    assert error, run.explain()
    for name in BROKEN[runner]:
        assert name in error[-1], run.explain()
    assert project.leftovers() == {}
