"""The test runner: schema isolation for ``manage.py test`` with one setting.

``TEST_RUNNER = "schemaiso.Runner"``. Projects with their own ``DiscoverRunner``
subclass add :class:`SchemaIsolationMixin` in front of it instead.
"""

from __future__ import annotations

import logging
import time
import unittest
from typing import Any

from django.db import connections
from django.test.runner import DiscoverRunner, ParallelTestSuite, partition_suite_by_case
from django.test.utils import iter_test_cases  # type: ignore[attr-defined]

from . import activation
from .backends.creation import cancel_clones, hand_over, isolated_creations, wait_for_clones
from .backends.state import get_state
from .conf import serial_tags_for_run
from .errors import SchemaIsoError
from .naming import SchemaNames
from .parallel import MainProcessPhase, PhasedSuite, SchemaIsolatedParallelTestSuite
from .run_options import RunOptions
from .serial_tags import is_serial


class SchemaIsolationMixin:
    """Run parallel workers in schemas of one test database; serial tests last.

    Mix into any ``DiscoverRunner`` subclass (``class MyRunner(SchemaIsolationMixin,
    DiscoverRunner)``). Every stock option keeps its meaning.
    """

    parallel_test_suite: type[ParallelTestSuite] = SchemaIsolatedParallelTestSuite

    parallel: int
    verbosity: int
    _setup_started = 0.0
    #: What this run told every alias's setup (``setup_databases``).
    run_options = RunOptions()
    failfast: bool
    debug_mode: bool
    buffer: bool
    test_suite: type[unittest.TestSuite]
    time_keeper: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse, as the class is defined, bases that would make the runner run tests
        without isolation and without a word."""
        super().__init_subclass__(**kwargs)
        mro = cls.__mro__
        if DiscoverRunner in mro and mro.index(DiscoverRunner) < mro.index(SchemaIsolationMixin):
            # DiscoverRunner's methods do not call super(): none of the mixin's would run.
            first = next(b for b in cls.__bases__ if issubclass(b, DiscoverRunner))
            raise SchemaIsoError(
                f"schemaiso: {cls.__qualname__} puts SchemaIsolationMixin after "
                f"{first.__qualname__} in its bases, so DiscoverRunner's methods replace "
                "the mixin's and tests would run without schema isolation. Put the mixin "
                f"first: class {cls.__name__}(SchemaIsolationMixin, {first.__name__})."
            )
        inherited = next(
            (vars(b)["parallel_test_suite"] for b in mro[mro.index(SchemaIsolationMixin) + 1:]
             if "parallel_test_suite" in vars(b)),
            ParallelTestSuite,
        )
        if inherited is not ParallelTestSuite and cls.parallel_test_suite is SchemaIsolatedParallelTestSuite:
            # The mixin's class attribute comes first and would drop the base's suite.
            raise SchemaIsoError(
                f"schemaiso: {cls.__qualname__} inherits parallel_test_suite = "
                f"{inherited.__qualname__}, which SchemaIsolationMixin would replace with "
                f"its own. Make {inherited.__qualname__} a subclass of "
                "schemaiso.parallel.SchemaIsolatedParallelTestSuite and set "
                f"parallel_test_suite = {inherited.__qualname__} on {cls.__name__}."
            )

    def __init__(
        self,
        *args: Any,
        keep_failed_schemas: bool = False,
        serial_tags: list[str] | None = None,
        no_snapshot: bool = False,
        **kwargs: Any,
    ) -> None:
        """``serial_tags`` (``--serial-tag``, repeatable) replaces
        ``SCHEMAISO['SERIAL_TAGS']`` for this run; None keeps the setting's.
        ``no_snapshot`` (``--no-snapshot``) neither restores nor writes template
        snapshots in this run."""
        super().__init__(*args, **kwargs)
        self.serial_tags = serial_tags_for_run(serial_tags)
        self.serial_tests: list[unittest.TestCase] = []
        self.keep_failed_schemas = keep_failed_schemas
        self.no_snapshot = no_snapshot
        # A runner inside a run that isolates already (one test running another)
        # must not undo that run's isolation at its own teardown.
        self._leaves_isolation_on = activation.installed()

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        super().add_arguments(parser)  # type: ignore[misc]
        parser.add_argument(
            "--keep-failed-schemas",
            action="store_true",
            help="Keep the schema of every worker (and of the main process) where a test "
            "failed, with the test database, and print how to connect to it with psql.",
        )
        parser.add_argument(
            "--serial-tag",
            action="append",
            dest="serial_tags",
            metavar="NAME",
            help="Tests with this tag run after the parallel phase, alone. Can be used "
            "multiple times; the names given replace SCHEMAISO['SERIAL_TAGS'] for this run.",
        )
        parser.add_argument(
            "--no-snapshot",
            action="store_true",
            help="Neither restore the template from a snapshot nor write one in this run "
            "(see SCHEMAISO['SNAPSHOT_DIR']).",
        )

    def build_suite(self, test_labels: Any = None, **kwargs: Any) -> PhasedSuite:
        """Split serial tests out of what Django found, then partition the rest.

        Django's ``build_suite`` (and a project's, between the mixin and Django's)
        finds, filters and orders the tests with ``parallel`` at 0, so that it returns
        them all, unpartitioned: the serial ones must not go to workers.
        """
        requested, self.parallel = self.parallel, 0
        try:
            suite = super().build_suite(test_labels, **kwargs)  # type: ignore[misc]
        finally:
            self.parallel = requested
        serial: list[unittest.TestCase] = []
        parallel: list[unittest.TestCase] = []
        for test in iter_test_cases(suite):
            (serial if is_serial(test, self.serial_tags) else parallel).append(test)
        self.serial_tests = serial

        if not issubclass(self.parallel_test_suite, SchemaIsolatedParallelTestSuite):
            raise SchemaIsoError(
                f"schemaiso: {type(self).__name__}.parallel_test_suite is "
                f"{self.parallel_test_suite.__qualname__}, which does not isolate workers. "
                "Make it a subclass of schemaiso.parallel.SchemaIsolatedParallelTestSuite."
            )
        parallel_suite: unittest.TestSuite | None = self._partition(parallel)
        main_tests: list[unittest.TestCase] = serial
        if parallel_suite is None:
            # No workers: the main process runs everything, serial tests last.
            main_tests = parallel + serial
            parallel_suite = self.test_suite()
            self.parallel = min(self.parallel, 1)
        if serial and self.verbosity >= 2:
            self.log(f"schemaiso: {len(serial)} serial test(s) run after the parallel phase.")  # type: ignore[attr-defined]
        main_phase = MainProcessPhase(main_tests)
        main_phase.before_run = self._enter_main_phase
        return PhasedSuite(parallel_suite, main_phase)

    def _partition(self, tests: list[unittest.TestCase]) -> ParallelTestSuite | None:
        """The workers' suite for ``tests``, or None when they need no workers.

        These lines repeat the end of Django's ``DiscoverRunner.build_suite`` (5.2
        runner.py:959-974, 6.1 :1006-1021): partition by class, no more processes
        than classes (``self.parallel`` follows: it is the number of worker schemas),
        ``parallel_test_suite`` built with the run's flags. No seam lets Django's own
        lines partition only the tests that are not serial: they run inline, at the
        end of the method that finds the tests, on every test it found, and take no
        list. Whatever reaches them first (``exclude_tags``, a ``test_suite`` that
        drops the serial tests) also hides those tests from a project's
        ``build_suite`` between the mixin and Django's, which must see every test
        (tests/test_custom_runner.py); splitting Django's partitioned suite
        afterwards would need this ``min`` again, as fewer classes remain. What
        Django exposes is used: ``partition_suite_by_case`` and the
        ``parallel_test_suite`` attribute. tests/test_runner_unit.py checks that
        these lines make what Django's make from the same tests.
        """
        if self.parallel <= 1 or not tests:
            return None
        subsuites = partition_suite_by_case(self.test_suite(tests))
        self.parallel = min(self.parallel, len(subsuites))
        if self.parallel <= 1:
            return None
        return self.parallel_test_suite(
            subsuites, self.parallel, self.failfast, self.debug_mode, self.buffer
        )

    def setup_databases(self, **kwargs: Any) -> Any:
        self._setup_started = time.perf_counter()
        # Listed now, filled once the clones are done: Django prints records in the
        # order they begin, so the whole setup comes right after its own total.
        self._record_setup_total(None)
        activation.install()
        self._warn_not_isolated(kwargs.get("aliases"))
        self.run_options = RunOptions.for_runner(
            parallel=self.parallel, serial_tests=len(self.serial_tests),
            keep_failed=self.keep_failed_schemas, time_keeper=self.time_keeper,
            snapshots=not self.no_snapshot,
        )
        hand_over(self.run_options)
        try:
            old_config = super().setup_databases(**kwargs)  # type: ignore[misc]
        except BaseException:
            cancel_clones()
            raise
        self._describe_setup()
        return old_config

    def run_checks(self, databases: Any) -> None:
        """Run the system checks while schemas clone, then wait for the clones.

        Workers must not start before every clone is done and no clone thread
        may be alive when they fork; Django tears down after a failure here.
        """
        super().run_checks(databases)  # type: ignore[misc]
        with self.time_keeper.timed("  Waiting for schema clones"):
            wait_for_clones()
        self._record_setup_total(time.perf_counter() - self._setup_started)

    _SETUP_TOTAL = "Total database setup, schema clones and system checks included,"

    def _record_setup_total(self, seconds: float | None) -> None:
        """``--timing``: Django's own total stops before the background clones are
        waited for; this one runs until the first test can start."""
        records = getattr(self.time_keeper, "records", None)
        if records is None:
            return
        entries = records[self._SETUP_TOTAL]
        if seconds is not None:
            entries.append(seconds)

    def _warn_not_isolated(self, aliases: Any) -> None:
        """One line naming the aliases schemaiso leaves alone: only PostgreSQL is isolated."""
        others = [
            f"'{alias}' ({connections[alias].vendor})"
            for alias in (aliases if aliases is not None else connections)
            if connections[alias].vendor != "postgresql"
        ]
        if others:
            self.log(  # type: ignore[attr-defined]
                f"schemaiso: warning: alias(es) {', '.join(others)} not isolated: schemaiso "
                "gives schemas of their own only to PostgreSQL databases; these are set up "
                "and cloned for workers as Django's own runner does.",
                level=logging.WARNING,
            )

    def teardown_databases(self, old_config: Any, **kwargs: Any) -> None:
        # Clone threads, then every alias's connections and pools (mirrors'
        # included) must be gone before the test database can be dropped.
        cancel_clones()
        activation.close_connections()
        super().teardown_databases(old_config, **kwargs)  # type: ignore[misc]
        if not self._leaves_isolation_on:
            activation.uninstall()  # what runs next in this process gets stock connections

    def _isolated_connections(self) -> list[Any]:
        return [c.connection for c in isolated_creations(initialized_only=False, set_up_only=True)]

    def _enter_main_phase(self) -> None:
        """Move the main process into its own schemas right before it runs tests."""
        isolated = self._isolated_connections()
        primaries = [c for c in isolated if not get_state(c.settings_dict)["mirror"]]  # type: ignore[index]
        for connection in primaries:
            connection.creation.use_main_schema()
        for connection in isolated:
            state = get_state(connection.settings_dict)
            if state is not None and state["mirror"]:
                # A mirror's state is a copy of its primary's, so it names the primary.
                connection.creation.follow(connections[state["alias"]].settings_dict)
        if self.verbosity >= 2 and primaries:
            schemas = ", ".join(
                f"{c.alias}: {get_state(c.settings_dict)['schema']}"  # type: ignore[index]
                for c in primaries
            )
            self.log(f"schemaiso: main process runs its tests in {schemas}")  # type: ignore[attr-defined]

    def _describe_setup(self) -> None:
        """One line per test database: where migrate went and which schemas workers use."""
        if self.verbosity < 1:
            return
        for connection in self._isolated_connections():
            state = get_state(connection.settings_dict)
            if state is None or state["mirror"]:
                continue
            names = SchemaNames(prefix=state["prefix"], run_id=state["run_id"])
            workers = (
                f"{self.parallel} worker schemas {names.worker(1)}..{names.worker(self.parallel)}"
                if self.parallel > 1
                else "no worker schemas"
            )
            main = f", main schema {names.main}" if self.run_options.main_schema_early else ""
            serial = f", {len(self.serial_tests)} serial test(s) after the parallel phase"
            self.log(  # type: ignore[attr-defined]
                f"schemaiso: alias '{connection.alias}': database "
                f"'{connection.settings_dict['NAME']}', template '{state['template']}', "
                f"{workers}{main}{serial}."
            )


class Runner(SchemaIsolationMixin, DiscoverRunner):
    """``TEST_RUNNER = "schemaiso.Runner"``: Django's runner with schema isolation."""
