"""``manage.py test`` on testproject in a subprocess: output, exit code, server afterwards."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import POOL_MODES, TESTPROJECT, Project, Run

LABELS = ["library", "shop", "isolation", "serialproof"]
SERIAL_TESTS = 3  # serialproof: SerialClass.test_a, SerialClass.test_b, MixedClass.test_serial_method


@dataclass(frozen=True)
class Event:
    """One line of serialproof's phase log."""

    kind: str  # "P" parallel, "S" serial
    event: str  # "start" or "end"
    test: str
    pid: int
    time: float
    schema: str


def read_phase_log(path: Path) -> list[Event]:
    events = []
    for line in path.read_text().splitlines():
        kind, event, test, pid, when, schema = line.split()
        events.append(Event(kind, event, test, int(pid), float(when), schema))
    return events


def ran(run: Run) -> int:
    found = re.findall(r"^Ran (\d+) tests? in", run.stderr, re.M)
    assert len(found) == 1, f"expected one summary line\n{run.explain()}"
    return int(found[0])


def setup_line(run: Run, alias: str = "default") -> str:
    match = re.search(rf"^schemaiso: alias '{alias}': .*$", run.output, re.M)
    assert match, run.explain()
    return match.group(0)


def assert_serial_phase_came_last_and_alone(events: list[Event]) -> None:
    parallel = [e for e in events if e.kind == "P"]
    serial = [e for e in events if e.kind == "S"]
    assert parallel and serial
    last_parallel_end = max(e.time for e in parallel if e.event == "end")
    assert min(e.time for e in serial) > last_parallel_end
    # Serial tests never overlap one another: starts and ends alternate.
    ordered = sorted(serial, key=lambda e: e.time)
    assert [e.event for e in ordered] == ["start", "end"] * (len(ordered) // 2)


@pytest.mark.parametrize("pool", POOL_MODES, ids=lambda pool: "pool" if pool else "no-pool")
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_parallel_run_gives_each_worker_its_own_schema_and_leaves_nothing(
    project: Project, start_method: str, pool: bool
) -> None:
    log = project.tmp_path / "phase.log"
    run = project.manage(
        "test",
        *LABELS,
        "--parallel",
        "4",
        "--noinput",
        SCHEMAISO_START_METHOD=start_method,
        TESTPROJECT_POOL="1" if pool else "0",
        SCHEMAISO_PHASE_LOG=str(log),
    )
    assert run.returncode == 0, run.explain()
    assert re.search(r"^OK( \(skipped=\d+\))?$", run.stderr, re.M), run.explain()
    assert ran(run) > 40
    line = setup_line(run)
    assert f"database 'test_{project.name}'" in line
    assert "template 'schemaiso_template'" in line
    assert "4 worker schemas" in line and f"{SERIAL_TESTS} serial test(s)" in line
    run_id = re.search(r"schemaiso_([0-9a-f]{8})_w1", line).group(1)  # type: ignore[union-attr]

    events = read_phase_log(log)
    schema_of_pid: dict[int, set[str]] = {}
    for e in events:
        schema_of_pid.setdefault(e.pid, set()).add(e.schema)
    parallel_pids = {e.pid for e in events if e.kind == "P"}
    serial_pids = {e.pid for e in events if e.kind == "S"}
    # Each process stayed in one schema, and no two processes shared one.
    assert all(len(s) == 1 for s in schema_of_pid.values()), schema_of_pid
    schemas = {pid: next(iter(s)) for pid, s in schema_of_pid.items()}
    assert len(set(schemas.values())) == len(schemas)
    for pid in parallel_pids:
        assert re.fullmatch(rf"schemaiso_{run_id}_w\d", schemas[pid]), schemas
    assert serial_pids and all(schemas[pid] == f"schemaiso_{run_id}_main" for pid in serial_pids)
    assert len(parallel_pids) >= 2
    assert_serial_phase_came_last_and_alone(events)
    assert project.leftovers() == {}


def test_without_parallel_everything_runs_in_the_main_schema_serial_last(project: Project) -> None:
    log = project.tmp_path / "phase.log"
    run = project.manage("test", "serialproof", "--noinput", SCHEMAISO_PHASE_LOG=str(log))
    assert run.returncode == 0, run.explain()
    assert "no worker schemas" in setup_line(run)
    events = read_phase_log(log)
    assert {e.schema for e in events} == {
        re.search(r"main schema (\S+?),", setup_line(run)).group(1)  # type: ignore[union-attr]
    }
    assert_serial_phase_came_last_and_alone(events)
    assert project.leftovers() == {}


def test_failures_and_errors_join_one_report_and_exit_code(project: Project) -> None:
    run = project.manage(
        "test", "demo_failures", "serialproof", "--parallel", "2", "--noinput",
        TESTPROJECT_RUN_FAILING="1",
    )
    assert run.returncode == 1, run.explain()
    assert len(re.findall(r"^FAILED \(failures=1, errors=1\)$", run.stderr, re.M)) == 1
    assert ran(run) > SERIAL_TESTS
    assert project.leftovers() == {}


def test_failfast_stops_before_the_serial_phase(project: Project) -> None:
    log = project.tmp_path / "phase.log"
    run = project.manage(
        "test", "demo_failures", "serialproof", "--parallel", "2", "--noinput", "--failfast",
        TESTPROJECT_RUN_FAILING="1", SCHEMAISO_PHASE_LOG=str(log),
    )
    assert run.returncode == 1, run.explain()
    events = read_phase_log(log) if log.exists() else []
    assert [e for e in events if e.kind == "S"] == []
    assert project.leftovers() == {}


def test_exclude_tag_serial_runs_no_serial_phase(project: Project) -> None:
    log = project.tmp_path / "phase.log"
    run = project.manage(
        "test", "serialproof", "--parallel", "2", "--noinput", "--exclude-tag", "serial",
        SCHEMAISO_PHASE_LOG=str(log),
    )
    assert run.returncode == 0, run.explain()
    assert "0 serial test(s)" in setup_line(run)
    assert {e.kind for e in read_phase_log(log)} == {"P"}


def test_tag_serial_runs_only_serial_tests(project: Project) -> None:
    log = project.tmp_path / "phase.log"
    run = project.manage(
        "test", "serialproof", "--parallel", "2", "--noinput", "--tag", "serial",
        SCHEMAISO_PHASE_LOG=str(log),
    )
    assert run.returncode == 0, run.explain()
    assert ran(run) == SERIAL_TESTS
    assert {e.kind for e in read_phase_log(log)} == {"S"}


def test_stock_options_keep_working(project: Project) -> None:
    # Django offers --durations on Python 3.12 and later only.
    durations = ["--durations", "3"] if sys.version_info >= (3, 12) else []
    run = project.manage(
        "test", "library", "serialproof", "--parallel", "2", "--noinput",
        "-k", "test_", "--shuffle", "42", "--reverse", "--timing", "--buffer",
        "--debug-sql", *durations,
    )
    assert run.returncode == 0, run.explain()
    assert "Used shuffle seed: 42" in run.output
    assert "Total database setup" in run.output and "Total database teardown" in run.output
    # schemaiso's own steps, each on its own line: migrate, the clones, the drop.
    assert re.search(r"^    Migrating template '\w+' of 'default' took [\d.]+s$", run.output, re.M)
    assert re.search(
        r"^  Cloning 3 schema\(s\) of 'default' \(\d+ at a time, in the background\) took",
        run.output, re.M,
    ), run.explain()
    assert re.search(r"^  Dropping test database '\w+' \('default'\) took", run.output, re.M)
    # Django's total stops before the background clones are waited for; ours does not.
    assert re.search(
        r"^Total database setup took [\d.]+s\n"
        r"Total database setup, schema clones and system checks included, took [\d.]+s$",
        run.output, re.M,
    ), run.explain()
    if durations:
        assert "Slowest test durations" in run.output
    assert project.leftovers() == {}

    # What --reverse, --buffer and --debug-sql do: testproject's stockoptions, whose
    # tests print, run SQL and fail, with and without them.
    plain, optioned = (
        project.manage(
            "test", "stockoptions", "--parallel", "2", "--noinput", "-v", "2", *options,
            TESTPROJECT_RUN_FAILING="1", TESTPROJECT_WITHOUT_EXTENSIONS="1",
        )
        for options in ([], ["--reverse", "--buffer", "--debug-sql"])
    )
    for run in (plain, optioned):
        assert run.returncode == 1, run.explain()
        assert ran(run) == 9 and "\nFAILED (failures=2)\n" in run.stderr, run.explain()
    # --reverse: each class's tests in reverse order, in a worker and in the main process.
    for case, count in (("Ordered", 4), ("SerialPrinting", 3)):
        order = stockoptions_order(plain, case)
        assert len(order) == count and order == sorted(order), plain.explain()
        assert stockoptions_order(optioned, case) == order[::-1], optioned.explain()
    # --buffer: what a passing test prints is dropped, what a failing test prints is shown.
    for passing in ("printed by a passing test", "printed by a passing serial test"):
        assert passing in plain.stdout, plain.explain()
        assert passing not in optioned.output, optioned.explain()
    assert "\nstockoptions: printed by a failing test\n" in plain.stdout, plain.explain()
    assert "\nStdout:\nstockoptions: printed by a failing test\n" in optioned.stdout, (
        optioned.explain()
    )
    # --debug-sql: the failing test's SQL, in its report. Only for a test in the main
    # process (serial), as with Django's own runner: a worker logs its SQL where it runs.
    sql = "SELECT 'stockoptions-failing-sql'"
    report = optioned.stderr[optioned.stderr.find("FAIL: test_3_prints_and_fails"):]
    assert report.startswith("FAIL: ") and sql in report.split("\nRan ")[0], optioned.explain()
    assert "Stdout:\nstockoptions: printed by a failing serial test" in report, optioned.explain()
    assert "stockoptions-failing-sql" not in plain.output, plain.explain()
    assert project.leftovers() == {}


def stockoptions_order(run: Run, case: str) -> list[str]:
    """The tests of testproject's ``stockoptions.tests.<case>`` in the order -v 2 lists them."""
    return re.findall(rf"^(\w+) \(stockoptions\.tests\.{case}\.\1\) \.\.\. ", run.stderr, re.M)


def test_pdb_with_one_process(project: Project) -> None:
    run = project.manage("test", "library", "--pdb", "--noinput")
    assert run.returncode == 0, run.explain()
    assert "no worker schemas" in setup_line(run)

    # A failing test opens the debugger on its failure, which reads commands from
    # stdin: one that shows it ran, then continue.
    args = ["test", "stockoptions.tests.Printing", "--pdb", "--noinput"]
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=TESTPROJECT,
        env=project.env(TESTPROJECT_RUN_FAILING="1", TESTPROJECT_WITHOUT_EXTENSIONS="1"),
        input="p 'the debugger ' + 'ran this'\nc\n", capture_output=True, text=True,
        timeout=300,  # a debugger waiting for input that never comes fails the test
    )
    failing = Run(args, proc.returncode, proc.stdout, proc.stderr)
    assert failing.returncode == 1, failing.explain()
    assert "\nOpening PDB: AssertionError('on purpose')\n" in failing.stdout, failing.explain()
    assert "(Pdb) 'the debugger ran this'\n" in failing.stdout, failing.explain()
    assert ran(failing) == 2 and "\nFAILED (failures=1)\n" in failing.stderr, failing.explain()
    assert "no worker schemas" in setup_line(failing)
    assert project.leftovers() == {}


def test_keepdb_keeps_the_template_and_spares_and_the_next_run_passes(project: Project) -> None:
    def kept() -> dict[str, list[str]]:
        """Per test database: the template, and how many spares (this run's schemas,
        kept for the next --keepdb run)."""
        return {
            db: [n for n in names if not n.startswith("schemaiso_spare_")]
            + [f"{sum(n.startswith('schemaiso_spare_') for n in names)} spares"]
            for db, names in project.leftovers().items()
        }

    first = project.manage("test", *LABELS, "--parallel", "2", "--noinput", "--keepdb")
    assert first.returncode == 0, first.explain()
    # Two workers, and the main process's schema for the serial tests.
    assert kept() == {db: ["schemaiso_template", "3 spares"] for db in project.test_databases}
    second = project.manage(
        "test", *LABELS, "--parallel", "3", "--noinput", "--keepdb", "--timing", "-v", "2"
    )
    assert second.returncode == 0, second.explain()
    assert kept() == {db: ["schemaiso_template", "4 spares"] for db in project.test_databases}
    # What --timing and -v 2 say is what happened: 3 spares reset, 1 schema cloned
    # (three workers and the main schema), and kept again at the end.
    for alias in ("default", "reports"):
        assert re.search(
            rf"^  Preparing 4 schema\(s\) \(3 kept and reset, 1 cloned\) of '{alias}' "
            r"\(\d+ at a time, in the background\) took", second.output, re.M,
        ), second.explain()
        assert re.search(
            rf"^  Keeping this run's schemas as spares \(dropping those a test changed\) of '{alias}'",
            second.output, re.M,
        )
    assert "Dropping this run's schemas" not in second.output
    for alias in ("default", "reports"):
        prepared = rf"^schemaiso: schema '\w+' of alias '{alias}': "
        assert len(re.findall(prepared + r"reset kept spare 'schemaiso_spare_\w+' in",
                              second.output, re.M)) == 3, second.explain()
        assert len(re.findall(prepared + r"cloned from template 'schemaiso_template' in",
                              second.output, re.M)) == 1, second.explain()
    assert "resetting a kept spare of template 'schemaiso_template' into" in second.output


def test_a_project_without_postgresql_is_told_that_schemaiso_leaves_it_alone(
    project: Project,
) -> None:
    run = project.manage(
        "test", "serialproof", "--parallel", "2", "--noinput",
        TESTPROJECT_ENGINE="django.db.backends.sqlite3", TESTPROJECT_WITHOUT_EXTENSIONS="1",
    )
    assert run.returncode == 0, run.explain()
    warnings = [line for line in run.output.splitlines() if "not isolated" in line]
    assert warnings == [
        "schemaiso: warning: alias(es) 'default' (sqlite) not isolated: schemaiso gives schemas "
        "of their own only to PostgreSQL databases; these are set up and cloned for workers "
        "as Django's own runner does."
    ], run.explain()


@pytest.mark.parametrize("runner", ["schemaiso.Runner", "django.test.runner.DiscoverRunner"])
def test_explicit_engine(project: Project, runner: str) -> None:
    run = project.manage(
        "test", "library", "shop", "isolation", "--parallel", "2", "--noinput",
        TESTPROJECT_ENGINE="schemaiso.backends.postgresql", TESTPROJECT_RUNNER=runner,
    )
    assert run.returncode == 0, run.explain()
    assert project.leftovers() == {}
