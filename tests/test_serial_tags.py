"""Serial tag names of a project's choosing: ``SCHEMAISO["SERIAL_TAGS"]`` and the
``--serial-tag`` option (``manage.py test`` and pytest) on testproject's ``isolatetag``
app, whose ``@tag("isolate")`` tests prove with serialproof's phase log that they ran
last and alone (and fail when "isolate" is not serial)."""

from __future__ import annotations

import re
import textwrap

import pytest

from .conftest import TESTPROJECT, Project, Run
from .test_e2e import (
    Event,
    assert_serial_phase_came_last_and_alone,
    ran,
    read_phase_log,
    setup_line,
)

pytestmark = pytest.mark.e2e

#: isolatetag: IsolatedClass.test_a/b/c and MixedClass.test_isolated_method, tagged "isolate".
ISOLATE_TESTS = 4
ORDINARY_TESTS = 5
#: serialproof: three tests tagged "serial" among twelve.
SERIALPROOF_SERIAL = 3
SERIALPROOF_TESTS = 12
#: isolatetag and serialproof need no extension: a quick migrate.
FEW_APPS = {"TESTPROJECT_WITHOUT_EXTENSIONS": "1"}


def assert_ok(run: Run) -> None:
    assert run.returncode == 0, run.explain()
    assert re.search(r"^OK$", run.stderr, re.M), run.explain()


def serial_tests(events: list[Event]) -> set[str]:
    return {e.test for e in events if e.kind == "S"}


def assert_serial_in_main_process(events: list[Event]) -> None:
    """The serial tests ran in one process that ran nothing in parallel: the main one."""
    serial_pids = {e.pid for e in events if e.kind == "S"}
    assert len(serial_pids) == 1, events
    assert serial_pids.isdisjoint(e.pid for e in events if e.kind == "P"), events


def isolate_ids() -> set[str]:
    cls = "isolatetag.tests.IsolatedClass"
    return {f"{cls}.test_a", f"{cls}.test_b", f"{cls}.test_c",
            "isolatetag.tests.MixedClass.test_isolated_method"}


def test_setting_names_the_serial_tags_and_bad_names_stop_the_run(project: Project) -> None:
    log = project.tmp_path / "phase.log"
    run = project.manage(
        "test", "isolatetag", "--parallel", "2", "--noinput",
        TESTPROJECT_SERIAL_TAGS="isolate", SCHEMAISO_PHASE_LOG=str(log), **FEW_APPS,
    )
    assert_ok(run)
    assert ran(run) == ISOLATE_TESTS + ORDINARY_TESTS
    assert "2 worker schemas" in setup_line(run)
    assert f"{ISOLATE_TESTS} serial test(s)" in setup_line(run)
    events = read_phase_log(log)
    assert serial_tests(events) == isolate_ids()
    assert_serial_in_main_process(events)
    assert_serial_phase_came_last_and_alone(events)
    assert project.leftovers() == {}

    # Bad names, from the option or the setting, stop the run before any database work.
    bad_option = project.manage("test", "isolatetag", "--noinput", "--serial-tag", "", **FEW_APPS)
    assert bad_option.returncode != 0, bad_option.explain()
    assert "schemaiso: --serial-tag takes a non-empty tag name, not ''" in bad_option.stderr, (
        bad_option.explain()
    )
    bad_setting = project.manage(
        "test", "isolatetag", "--noinput", TESTPROJECT_SERIAL_TAGS="isolate,", **FEW_APPS
    )
    assert bad_setting.returncode != 0, bad_setting.explain()
    message = "schemaiso: SCHEMAISO['SERIAL_TAGS'] must be a list of tag names"
    assert f"{message}, e.g. [\"serial\"]. Got ['isolate', '']." in bad_setting.stderr, (
        bad_setting.explain()
    )
    assert project.leftovers() == {}


def test_serial_tag_option_names_several_and_replaces_the_setting(project: Project) -> None:
    # Two names on the command line, no setting: both kinds run last and alone.
    log = project.tmp_path / "phase.log"
    both = project.manage(
        "test", "isolatetag", "serialproof", "--parallel", "2", "--noinput",
        "--serial-tag", "isolate", "--serial-tag", "serial",
        SCHEMAISO_PHASE_LOG=str(log), **FEW_APPS,
    )
    assert_ok(both)
    assert ran(both) == ISOLATE_TESTS + ORDINARY_TESTS + SERIALPROOF_TESTS
    assert f"{ISOLATE_TESTS + SERIALPROOF_SERIAL} serial test(s)" in setup_line(both)
    events = read_phase_log(log)
    serial = serial_tests(events)
    assert isolate_ids() <= serial
    assert len({t for t in serial if t.startswith("serialproof.")}) == SERIALPROOF_SERIAL
    assert_serial_in_main_process(events)
    assert_serial_phase_came_last_and_alone(events)

    # The option replaces the setting: "isolate" set, "serial" given, only "serial" is serial.
    # (No phase log: the "isolate" tests now run in workers, where their checks would fail.)
    replaced = project.manage(
        "test", "isolatetag", "serialproof", "--parallel", "2", "--noinput",
        "--serial-tag", "serial", TESTPROJECT_SERIAL_TAGS="isolate", **FEW_APPS,
    )
    assert_ok(replaced)
    assert ran(replaced) == ISOLATE_TESTS + ORDINARY_TESTS + SERIALPROOF_TESTS
    assert f", {SERIALPROOF_SERIAL} serial test(s)" in setup_line(replaced), replaced.explain()
    assert project.leftovers() == {}


def test_exclude_tag_and_tag_on_a_chosen_serial_tag(project: Project) -> None:
    # --exclude-tag isolate, "isolate" serial by the setting: not run, no serial phase.
    log = project.tmp_path / "excluded.log"
    excluded = project.manage(
        "test", "isolatetag", "--parallel", "2", "--noinput", "--exclude-tag", "isolate",
        TESTPROJECT_SERIAL_TAGS="isolate,serial", SCHEMAISO_PHASE_LOG=str(log), **FEW_APPS,
    )
    assert_ok(excluded)
    assert ran(excluded) == ORDINARY_TESTS
    assert "0 serial test(s)" in setup_line(excluded)
    events = read_phase_log(log)
    assert {e.kind for e in events} == {"P"}
    assert isolate_ids().isdisjoint(e.test for e in events)

    # --tag isolate, "isolate" serial by the option: only they run, in the serial phase.
    log = project.tmp_path / "tagged.log"
    tagged = project.manage(
        "test", "isolatetag", "--parallel", "2", "--noinput", "--tag", "isolate",
        "--serial-tag", "isolate", SCHEMAISO_PHASE_LOG=str(log), **FEW_APPS,
    )
    assert_ok(tagged)
    assert ran(tagged) == ISOLATE_TESTS
    line = setup_line(tagged)
    assert "no worker schemas" in line and f"{ISOLATE_TESTS} serial test(s)" in line, line
    events = read_phase_log(log)
    assert {e.kind for e in events} == {"S"}
    assert serial_tests(events) == isolate_ids()
    assert project.leftovers() == {}


def test_pytest_serial_tag_option(project: Project) -> None:
    """pytest -n 2 --serial-tag isolate: the "isolate" marker is registered (the run uses
    --strict-markers), and marked functions and @tag("isolate") classes run last, alone."""
    folder = project.tmp_path / "outside"
    folder.mkdir()
    (folder / "test_isolate_marker.py").write_text(textwrap.dedent('''
        import pytest
        from pytests.helpers import parallel_step, serial_step


        @pytest.mark.django_db
        @pytest.mark.parametrize("n", range(4))
        def test_ordinary(request, n):
            parallel_step(request.node.nodeid)


        @pytest.mark.isolate
        @pytest.mark.django_db(transaction=True)
        @pytest.mark.parametrize("n", range(2))
        def test_isolated(request, n):
            serial_step(request.node.nodeid)
    '''))
    log = project.tmp_path / "phase.log"
    run = project.pytest(
        "-n", "2", "--serial-tag", "isolate", "isolatetag", str(folder),
        PYTHONPATH=str(TESTPROJECT), SCHEMAISO_PHASE_LOG=str(log), **FEW_APPS,
    )
    assert run.returncode == 0, run.explain()
    total = ISOLATE_TESTS + ORDINARY_TESTS + 6
    assert re.search(rf"^=+ {total} passed", run.stdout, re.M), run.explain()
    serial = ISOLATE_TESTS + 2
    assert f"schemaiso: {serial} serial test(s) ran after all other tests, alone." in run.stdout
    events = read_phase_log(log)
    assert len(serial_tests(events)) == serial
    assert isolate_ids() <= serial_tests(events)
    assert_serial_phase_came_last_and_alone(events)
    assert project.leftovers() == {}

    bad = project.pytest("--serial-tag", "", "isolatetag", **FEW_APPS)
    assert bad.returncode != 0, bad.explain()
    assert "schemaiso: --serial-tag takes a non-empty tag name, not ''" in bad.output, bad.explain()
