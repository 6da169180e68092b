"""schemaiso for pytest-django: one test database, a schema per pytest-xdist worker.

Turn it on with ``-p schemaiso.pytest_plugin`` (e.g. in ``addopts``), with the ini
switch ``schemaiso = true``, or with ``--schemaiso``; installed but not turned on,
it changes nothing. It overrides none of pytest-django's fixtures: pytest-django's
``django_db_setup`` still calls Django's ``setup_databases``, which reaches
schemaiso's creation mixin as ``manage.py test`` does, so a project's own
``django_db_setup`` that builds on the original keeps working. See
``docs/pytest.md``.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from contextlib import nullcontext
from typing import Any

import pytest

from .errors import SchemaIsoError

PLUGIN_NAME = "schemaiso.pytest_plugin"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("schemaiso", "schemaiso (schema per worker on PostgreSQL)")
    group.addoption(
        "--schemaiso", action="store_true", dest="schemaiso",
        help="Run pytest-django's test databases as one database with a schema per "
        "xdist worker (the same as the ini switch 'schemaiso = true').",
    )
    group.addoption(
        "--keep-failed-schemas", action="store_true", dest="schemaiso_keep_failed",
        help="schemaiso: keep the schema of every worker where a test failed, with the "
        "test database, and print how to connect to it with psql.",
    )
    group.addoption(
        "--serial-tag", action="append", dest="schemaiso_serial_tags", metavar="NAME",
        help="schemaiso: tests with this marker (or Django @tag) run last and alone. Can be "
        "used multiple times; the names given replace SCHEMAISO['SERIAL_TAGS'] for this run "
        "and are registered markers.",
    )
    group.addoption(
        "--no-snapshot", action="store_true", dest="schemaiso_no_snapshot",
        help="schemaiso: neither restore the template from a snapshot nor write one in "
        "this run (see SCHEMAISO['SNAPSHOT_DIR']).",
    )
    parser.addini("schemaiso", type="bool", default=False,
                  help="Turn on schemaiso's plugin (one test database, a schema per worker).")


def _enabled(config: pytest.Config) -> bool:
    asked = PLUGIN_NAME in (getattr(config.option, "plugins", None) or [])
    return bool(asked or config.getoption("schemaiso") or config.getini("schemaiso"))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if not _enabled(config):
        return
    if not config.pluginmanager.hasplugin("django"):
        raise pytest.UsageError(
            "schemaiso's pytest plugin works through pytest-django, which is not "
            "active: install pytest-django (and do not pass -p no:django)."
        )
    from .conf import SERIAL_TAGS_OPTION, SERIAL_TAGS_SETTING, serial_tags_for_run

    # Read here, not at addoption time: Django's settings are configured by now.
    option = config.getoption("schemaiso_serial_tags")
    try:
        serial_tags = serial_tags_for_run(option)
    except SchemaIsoError as exc:
        if option is None:
            raise
        raise pytest.UsageError(str(exc)) from None
    source = SERIAL_TAGS_SETTING if option is None else SERIAL_TAGS_OPTION
    if "serial" in serial_tags:
        config.addinivalue_line(
            "markers",
            "serial: run this test after every other test has finished, alone "
            "(across pytest-xdist workers too); schemaiso's SCHEMAISO['SERIAL_TAGS'].",
        )
    else:  # still registered, so that tests marked with it collect under --strict-markers
        config.addinivalue_line(
            "markers", f"serial: schemaiso's default serial tag, not one in this run ({source})."
        )
    for tag in sorted(serial_tags - {"serial"}):
        config.addinivalue_line("markers", f"{tag}: a serial tag ({source}).")
    config.pluginmanager.register(SchemaIsoSession(config, serial_tags), "schemaiso-session")


class SchemaIsoSession:
    """The plugin's hooks for one pytest process, once the plugin is turned on."""

    def __init__(self, config: pytest.Config, serial_tags: frozenset[str]) -> None:
        from . import activation, run_identity

        self.config = config
        self.serial_tags = serial_tags
        workerinput = getattr(config, "workerinput", None)
        self.worker_id: str | None = workerinput["workerid"] if workerinput else None
        self.worker_count = int(workerinput.get("workercount", 1)) if workerinput else 1
        #: The xdist controller: it runs no tests and ends the run for its workers.
        self.controller = workerinput is None and getattr(config.option, "dist", "no") != "no"
        if workerinput is not None:
            given = workerinput.get("schemaiso") or {}
            run = given.get("run_id") or _run_id_from(workerinput.get("testrunuid", ""))
            run_identity.adopt(run, int(given.get("pid") or os.getppid()))
        self.reports: list[Any] = []
        self.crashed = False
        #: The serial gate, in an xdist worker whose collection has serial tests.
        self.gate: Any = None
        self.serial_ids: set[str] = set()
        self.failed_ids: set[str] = set()
        #: What ending the run said, for the terminal summary.
        self.said: list[str] = []
        self.serial_count = 0
        #: A pytest run inside one that isolates already (pytester) leaves it on.
        self.leaves_isolation_on = activation.installed()

    # -- the database blocker ------------------------------------------------

    def _unblocked(self) -> Any:
        """pytest-django blocks database access outside tests; our own work is not a test."""
        try:
            from pytest_django.plugin import blocking_manager_key
        except ImportError:  # pragma: no cover  (pytest-django < 4.9)
            return nullcontext()
        blocker = self.config.stash.get(blocking_manager_key, None)
        return blocker.unblock() if blocker is not None else nullcontext()

    # -- xdist controller ------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        from .run_identity import run_id

        node.workerinput["schemaiso"] = {"run_id": run_id(), "pid": os.getpid()}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.reports.extend(output.get("schemaiso_reports", []))
        self.serial_count = max(self.serial_count, int(output.get("schemaiso_serial", 0)))
        if error is not None or "schemaiso_reports" not in output:
            self.crashed = True

    def pytest_report_header(self, config: pytest.Config) -> str | None:
        if self.controller or self.worker_id is None:
            from .run_identity import run_id

            where = "a schema per xdist worker" if self.controller else "one schema"
            return f"schemaiso: one test database per alias, {where} (run {run_id()})"
        return None

    # -- collection: serial tests last, and the gate -------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from .pytest_support.serial import SerialGate, serial_last
        from .run_identity import run_id

        serial = serial_last(items, self.serial_tags)
        self.serial_count = len(serial)
        self.serial_ids = {item.nodeid for item in serial}
        if serial and self.worker_id is not None and self.worker_count > 1:
            # Before this worker reports its collection, so before any test is
            # scheduled anywhere: every worker holds the gate by then.
            self.gate = SerialGate(self._gate_cursor, run_id(), self._unblocked)
            self.gate.share()

    def _gate_cursor(self) -> Any:
        from .pytest_support.run import gate_cursor

        return gate_cursor(self.worker_id)

    def _is_serial(self, item: pytest.Item | None) -> bool:
        return item is not None and item.nodeid in self.serial_ids

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Generator[None, Any, Any]:
        if self.gate is not None:
            if self._is_serial(item):
                self.gate.take_exclusive()
            else:
                self.gate.share()
        return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        if self.gate is not None and self._is_serial(nextitem) and not self._is_serial(item):
            # The next test waits for the gate: nothing of this worker but its
            # session (the test database) may stay set up meanwhile, not even a
            # class shared with it (a Django TestCase's open transaction).
            item.session._setupstate.teardown_exact(item.session)  # type: ignore[arg-type]

    # -- database setup ------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
        if fixturedef.argname != "django_db_setup":
            return (yield)
        from .pytest_support.run import prepare_members, setup_happened

        prepare_members(self.worker_id, self.worker_count,
                        bool(self.config.getoption("schemaiso_keep_failed")),
                        snapshots=not self.config.getoption("schemaiso_no_snapshot"))
        result = yield
        if "django_db_setup" not in fixturedef.argnames and not setup_happened() \
                and not _is_pytest_djangos(fixturedef):
            raise SchemaIsoError(
                f"schemaiso: the project's own django_db_setup fixture ({_where(fixturedef)}) "
                "did not set up test databases, so schemaiso has no schema to give the "
                "tests. Build on pytest-django's: `def django_db_setup(django_db_setup, "
                "django_db_blocker): ...` (then load data inside "
                "django_db_blocker.unblock()); for a database that must not be created, "
                "use SCHEMAISO['EXISTING_DATABASE']; or leave schemaiso's plugin out."
            )
        return result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """``--keep-failed-schemas``: mark this worker's schema once a test failed,
        after its teardown (inside the test, the mark would roll back with it)."""
        if not self.config.getoption("schemaiso_keep_failed") or self.controller:
            return
        if report.failed:
            self.failed_ids.add(report.nodeid)
        if report.when == "teardown" and report.nodeid in self.failed_ids:
            from .backends.creation import mark_failed_schemas

            with self._unblocked():
                mark_failed_schemas()

    # -- the end of the run --------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from .pytest_support import run

        try:
            if not self.controller:
                with self._unblocked():
                    reports = run.leave_all()
                if self.worker_id is not None:
                    self.config.workeroutput["schemaiso_reports"] = reports  # type: ignore[attr-defined]
                    self.config.workeroutput["schemaiso_serial"] = self.serial_count  # type: ignore[attr-defined]
                    return
                self.reports.extend(reports)
            if self.crashed:
                self.reports.extend(run.crash_reports(self.reports))
            keepdb = bool(self.config.getoption("reuse_db", False))
            with self._unblocked():
                run.finish(self.reports, keepdb, int(self.config.option.verbose or 0),
                           self.said.append)
        finally:
            if self.gate is not None:
                self.gate.close()
                self.gate = None

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """The run is over: what runs next in this process gets stock connections."""
        from . import activation

        if not self.leaves_isolation_on:
            activation.uninstall()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from .pytest_support.run import describe

        if self.worker_id is not None:
            return
        lines = describe(self.reports) + self.said
        if self.serial_count:
            where = "after all other tests, alone" if self.controller else "last"
            lines.append(f"schemaiso: {self.serial_count} serial test(s) ran {where}.")
        for line in lines:
            terminalreporter.write_line(line)


def _run_id_from(testrunuid: str) -> str:
    import hashlib

    return hashlib.sha1(testrunuid.encode()).hexdigest()[:8]


def _is_pytest_djangos(fixturedef: Any) -> bool:
    return str(getattr(fixturedef.func, "__module__", "")).startswith("pytest_django")


def _where(fixturedef: Any) -> str:
    code = getattr(fixturedef.func, "__code__", None)
    if code is None:
        return str(fixturedef.baseid or "conftest")
    path = os.path.relpath(code.co_filename)
    return f"{code.co_filename if path.startswith('..') else path}:{code.co_firstlineno}"

