"""PostGIS end to end: the extension lives in the shared schema and works in every worker.

testproject's ``places`` app (installed with TESTPROJECT_GIS=1) has geometry
columns and a spatial index, distance and containment queries, colliding
TransactionTestCases and a serial class. PostGIS is not relocatable, so it must
be created in the shared schema in the first place, never in the template.
tools/test.sh installs it from Debian.
"""

from __future__ import annotations

import re

import pytest

from .conftest import Project


@pytest.mark.parametrize(
    "engine", ["django.contrib.gis.db.backends.postgis", "schemaiso.backends.postgis"]
)
def test_postgis_works_in_every_worker_and_the_serial_phase(project: Project, engine: str) -> None:
    run = project.manage(
        "test", "places", "--parallel", "2", "--noinput", "-v", "2",
        TESTPROJECT_GIS="1", TESTPROJECT_ENGINE=engine,
    )
    assert run.returncode == 0, run.explain()
    assert re.search(r"^Ran 7 tests in", run.stderr, re.M), run.explain()
    assert "2 worker schemas" in run.output and "1 serial test(s)" in run.output, run.explain()
    assert "schemaiso: warning" not in run.output, run.explain()
    assert project.leftovers() == {}


def test_postgis_tests_collide_without_schemaiso(project: Project) -> None:
    """The negative control: the same tests fail when workers share one schema."""
    run = project.manage(
        "test", "places", "--parallel", "2", "--noinput",
        TESTPROJECT_GIS="1", TESTPROJECT_ENGINE="django.contrib.gis.db.backends.postgis",
        TESTPROJECT_RUNNER="testproject.runners.SharedDatabaseRunner",
    )
    assert run.returncode != 0, run.explain()
