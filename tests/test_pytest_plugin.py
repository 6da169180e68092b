"""pytest + pytest-django (+ pytest-xdist) on testproject under schemaiso's plugin
(testproject/pytest.ini), in a subprocess: output, exit code, server afterwards."""

from __future__ import annotations

import os
import re
import signal
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import REPEAT_RUNS, TESTPROJECT, Project, Run
from .test_e2e import assert_serial_phase_came_last_and_alone, read_phase_log

pytestmark = pytest.mark.e2e

#: serialproof's three @tag("serial") tests and pytests' two @pytest.mark.serial ones.
SERIAL_TESTS = 5
#: The colliding tests: two of isolation's classes and their pytest-style twins,
#: in a project of few apps (TESTPROJECT_WITHOUT_EXTENSIONS), for a quick migrate.
COLLIDING = ["isolation", "pytests/test_collisions.py", "-k", "IsolationA or IsolationB or collisions"]
FEW_APPS = {"TESTPROJECT_WITHOUT_EXTENSIONS": "1"}


def passed(run: Run) -> int:
    """How many tests passed; the run must have failed none."""
    assert run.returncode == 0, run.explain()
    match = re.search(r"^=*\s*(\d+) passed", run.stdout.splitlines()[-1])
    assert match, run.explain()
    return int(match.group(1))


def summary(run: Run, alias: str = "default") -> str:
    """The plugin's line about ``alias``'s test database."""
    lines = re.findall(rf"^schemaiso: alias '{alias}': .*$", run.stdout, re.M)
    assert len(lines) == 1, run.explain()
    return lines[0]


def worker_schemas(line: str) -> list[str]:
    return re.findall(r"schemaiso_[0-9a-f]{8}_(?:w\d+|main)", line)


def test_xdist_workers_share_one_migrated_template_and_leave_nothing(project: Project) -> None:
    log = project.tmp_path / "phases.log"
    run = project.pytest("-n", "4", SCHEMAISO_PHASE_LOG=str(log))
    assert passed(run) > 80
    for alias in ("default", "reports"):
        line = summary(run, alias)
        # Migrated once, by one worker; four workers, each in a schema of its own.
        assert re.search(r"migrated by gw[0-3];", line), line
        assert len(set(worker_schemas(line))) == 4, line
        assert f"test database 'test_{project.name}" in line
    assert f"schemaiso: {SERIAL_TESTS} serial test(s) ran after all other tests, alone." in run.stdout
    events = read_phase_log(log)
    assert {e.schema for e in events} <= set(worker_schemas(summary(run)))
    assert len({e.pid for e in events}) > 1, "the tests ran in one process"
    assert len([e for e in events if e.kind == "S" and e.event == "end"]) == SERIAL_TESTS
    assert_serial_phase_came_last_and_alone(events)
    assert project.leftovers() == {}


# heavy: repetition. test_two_runs_at_once_on_one_server_both_pass_and_leave_nothing runs
# these tests in every environment, and test_reuse_db_is_warm_and_create_db_rebuilds --reuse-db.
@pytest.mark.heavy
def test_colliding_tests_pass_ten_runs_in_a_row(project: Project) -> None:
    """The same fixed keys and ids in every worker: any sharing fails a test. Every
    other run keeps its schemas (--reuse-db), so reset spares are proven too."""
    rounds = max(2, REPEAT_RUNS)
    for round_no in range(rounds):
        # Alternating, the last round with --reuse-db (it keeps the test database).
        reuse = ["--reuse-db"] if (rounds - round_no) % 2 else []
        run = project.pytest("-n", "4", *reuse, *COLLIDING, **FEW_APPS)
        assert passed(run) == 16, f"round {round_no}\n{run.explain()}"
        if not reuse:
            assert project.leftovers() == {}, f"round {round_no}"
    # The last round kept the test database (--reuse-db); a plain run drops it.
    assert project.leftovers() != {}
    passed(project.pytest("-n", "2", *COLLIDING, **FEW_APPS))
    assert project.leftovers() == {}


def test_reuse_db_is_warm_and_create_db_rebuilds(project: Project) -> None:
    first = project.pytest("-n", "2", "--reuse-db", "isolation", "serialproof", **FEW_APPS)
    assert passed(first) == 32
    assert re.search(r"migrated by gw[01];", summary(first)), summary(first)
    kept = project.leftovers()
    database = f"test_{project.name}"
    assert sorted(s for s in kept[database] if "spare" not in s) == ["schemaiso_template"]
    assert len([s for s in kept[database] if "spare" in s]) == 2, kept

    warm = project.pytest("-n", "2", "--reuse-db", "isolation", "serialproof", **FEW_APPS)
    assert passed(warm) == 32
    assert "migrate skipped (kept template up to date)" in summary(warm)
    assert project.leftovers() == kept or len(project.leftovers()[database]) == 3

    rebuilt = project.pytest("-n", "2", "--reuse-db", "--create-db", "isolation", **FEW_APPS)
    assert passed(rebuilt) > 0
    assert re.search(r"migrated by gw[01];", summary(rebuilt)), summary(rebuilt)
    assert database in project.leftovers()

    passed(project.pytest("-n", "2", "isolation", **FEW_APPS))
    assert project.leftovers() == {}


def test_no_migrations_with_reuse_db_is_warm_the_second_time(project: Project) -> None:
    env = FEW_APPS  # --no-migrations cannot create library's hstore column
    args = ["-n", "2", "--no-migrations", "--reuse-db", "isolation", "serialproof"]
    first = project.pytest(*args, **env)
    assert passed(first) == 32
    assert "migrated by gw" in summary(first)
    second = project.pytest(*args, **env)
    assert passed(second) == 32
    assert "migrate skipped" in summary(second)
    # With migrations again: another fingerprint, so the template is rebuilt.
    third = project.pytest("-n", "2", "--reuse-db", "isolation", **env)
    assert "migrated by gw" in summary(third), third.explain()
    passed(project.pytest("isolation", **env))
    assert project.leftovers() == {}


def test_one_process_without_xdist(project: Project) -> None:
    log = project.tmp_path / "phases.log"
    run = project.pytest("serialproof", "pytests", SCHEMAISO_PHASE_LOG=str(log))
    assert passed(run) > 20
    line = summary(run)
    assert "migrated by this process" in line
    assert worker_schemas(line) and worker_schemas(line)[0].endswith("_main")
    assert f"schemaiso: {SERIAL_TESTS} serial test(s) ran last." in run.stdout
    assert_serial_phase_came_last_and_alone(read_phase_log(log))
    assert project.leftovers() == {}


@pytest.mark.parametrize("switch", [[], ["-o", "addopts=", "--schemaiso"],
                                    ["-o", "addopts=", "-o", "schemaiso=true"]],
                         ids=["-p", "--schemaiso", "ini"])
def test_serial_marker_is_registered_with_help(switch: list[str]) -> None:
    project = Project(name="unused", tmp_path=Path("."))
    run = project.pytest(*switch, "--markers")
    assert run.returncode == 0, run.explain()
    assert re.search(r"^@pytest\.mark\.serial: run this test after every other test", run.stdout, re.M)


def test_installed_but_not_turned_on_the_plugin_registers_nothing() -> None:
    project = Project(name="unused", tmp_path=Path("."))
    run = project.pytest("-o", "addopts=", "--markers")
    assert run.returncode == 0, run.explain()
    assert "@pytest.mark.serial" not in run.stdout


def _tests_outside(tmp_path: Path, conftest: str, tests: str) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "conftest.py").write_text(textwrap.dedent(conftest))
    (folder / "test_outside.py").write_text(textwrap.dedent(tests))
    return folder


def test_an_override_of_django_db_setup_that_sets_up_nothing_gets_a_clear_error(
    project: Project,
) -> None:
    folder = _tests_outside(project.tmp_path, '''
        import pytest

        @pytest.fixture(scope="session")
        def django_db_setup():
            pass  # "use the existing database": no test database at all
    ''', '''
        def test_uses_the_database(db):
            from isolation.models import Slot
            assert Slot.objects.count() == 0
    ''')
    run = project.pytest(str(folder), PYTHONPATH=str(TESTPROJECT))
    assert run.returncode == 1, run.explain()
    assert "schemaiso: the project's own django_db_setup fixture (" in run.stdout
    assert re.search(r"outside/conftest\.py:\d+\) did not set up test databases", run.stdout)
    assert "def django_db_setup(django_db_setup, django_db_blocker)" in run.stdout
    assert project.leftovers() == {}


@pytest.mark.heavy  # fault injection
def test_a_worker_killed_mid_run_is_reported_and_nothing_is_left(project: Project) -> None:
    folder = _tests_outside(project.tmp_path, "", '''
        import os
        import signal

        def test_kills_its_worker(db):
            from isolation.models import Slot
            Slot.objects.create(key="doomed", value=1)
            os.kill(os.getpid(), signal.SIGKILL)
    ''')
    run = project.pytest("-n", "2", "isolation", str(folder), PYTHONPATH=str(TESTPROJECT))
    assert run.returncode == 1, run.explain()
    assert re.search(r"worker 'gw[01]' crashed while running", run.output), run.explain()
    assert re.search(r"^=.* 1 failed, \d+ passed", run.stdout, re.M), run.explain()
    assert project.leftovers() == {}


def test_two_runs_at_once_on_one_server_both_pass_and_leave_nothing(project: Project) -> None:
    runs = [project.start_pytest("-n", "2", *COLLIDING) for _ in range(2)]  # all apps: extensions
    finished = [started.finish() for started in runs]
    for run in finished:
        assert passed(run) == 16
    assert project.leftovers() == {}


def test_without_the_plugin_pytest_django_is_unchanged(project: Project) -> None:
    run = project.pytest("-o", "addopts=", "-n", "2", "isolation")
    assert passed(run) == 20
    assert "schemaiso:" not in run.output  # the header lists the installed plugin, inert
    assert project.leftovers() == {}


def test_keep_failed_schemas_keeps_the_failed_workers_schema(project: Project) -> None:
    folder = _tests_outside(project.tmp_path, "", '''
        def test_fails(db):
            assert False, "on purpose"
    ''')
    run = project.pytest("-n", "2", "--keep-failed-schemas", "isolation", str(folder),
                         PYTHONPATH=str(TESTPROJECT), **FEW_APPS)
    assert run.returncode == 1, run.explain()
    match = re.search(r'SET search_path TO "(schemaiso_[0-9a-f]{8}_w[12])"', run.stdout)
    assert "schemaiso: kept 1 schema(s) of alias 'default' where tests failed" in run.stdout
    assert match, run.explain()
    database = f"test_{project.name}"
    assert match.group(1) in project.leftovers()[database]
    # The next run on this host drops it (its run is over) and leaves nothing.
    passed(project.pytest("isolation", **FEW_APPS))
    assert project.leftovers() == {}


@pytest.mark.heavy  # fault injection
def test_schemas_of_a_killed_pytest_run_are_dropped_by_the_next_run(project: Project) -> None:
    sleeping = project.tmp_path / "sleeping"
    folder = _tests_outside(project.tmp_path, "", f'''
        import pathlib
        import time

        def test_sleeps(db):
            pathlib.Path({str(sleeping)!r}).touch()
            time.sleep(60)
    ''')
    started = project.start_pytest("-n", "2", "--reuse-db", "isolation", str(folder),
                                   PYTHONPATH=str(TESTPROJECT), **FEW_APPS)
    database = f"test_{project.name}"
    deadline = time.monotonic() + 120
    # Both workers have their schemas, and one of them is inside the sleeping test.
    while not (sleeping.exists()
               and len([s for s in project.leftovers().get(database, []) if "_w" in s]) == 2):
        assert started.proc.poll() is None, started.finish().explain()
        assert time.monotonic() < deadline, "no worker schemas, or no test sleeping, after 120 s"
        time.sleep(0.2)
    os.killpg(started.proc.pid, signal.SIGKILL)  # the controller and its workers
    started.proc.communicate()
    killed = [s for s in project.leftovers()[database] if "_w" in s]
    assert len(killed) == 2, killed

    # The next run on this host drops them: their run's process is gone.
    passed(project.pytest("-n", "2", "--reuse-db", "isolation", **FEW_APPS))
    assert not set(killed) & set(project.leftovers()[database])
    passed(project.pytest("-n", "2", "isolation", **FEW_APPS))
    assert project.leftovers() == {}
