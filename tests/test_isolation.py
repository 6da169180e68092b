"""Isolation proof: colliding tests pass in their own schemas and fail when they share one.

testproject's ``isolation`` tests insert rows with fixed unique keys, sleep, then
check exact counts and ids. Two workers in one schema at once break them; the
negative control below shows that, so the loop above it is a proof that can fail.
"""

from __future__ import annotations

import re

import pytest

from .conftest import POOL_MODES, REPEAT_RUNS, Project

RUNS = REPEAT_RUNS


# heavy: repetition. Every test_e2e parallel run runs these tests once, in every environment.
@pytest.mark.heavy
def test_colliding_tests_pass_in_their_own_schemas_run_after_run(project: Project) -> None:
    for attempt in range(1, RUNS + 1):
        run = project.manage("test", "isolation", "--parallel", "4", "--noinput")
        assert run.returncode == 0, f"run {attempt} of {RUNS} failed\n{run.explain()}"
        assert re.search(r"^Ran 2\d tests", run.stderr, re.M), run.explain()
        assert "4 worker schemas" in run.output, run.explain()
    assert project.leftovers() == {}


def test_the_same_tests_fail_when_workers_share_one_schema(project: Project) -> None:
    run = project.manage(
        "test",
        "isolation",
        "--parallel",
        "4",
        "--noinput",
        TESTPROJECT_RUNNER="testproject.runners.SharedDatabaseRunner",
    )
    assert run.returncode != 0, run.explain()
    failed = re.search(r"^FAILED \((.*)\)$", run.stderr, re.M)
    assert failed, run.explain()


# heavy: test_e2e's test_parallel_run_gives_each_worker_its_own_schema_and_leaves_nothing
# runs these tests too, for each start method with and without the pool, and checks more.
@pytest.mark.heavy
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_isolation_holds_for_each_start_method_with_pooling_where_available(
    project: Project, start_method: str
) -> None:
    pool = POOL_MODES[-1]
    run = project.manage(
        "test",
        "isolation",
        "--parallel",
        "4",
        "--noinput",
        TESTPROJECT_POOL="1" if pool else "0",
        SCHEMAISO_START_METHOD=start_method,
    )
    assert run.returncode == 0, run.explain()
