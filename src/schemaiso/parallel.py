"""The phases of a run: the parallel phase in workers, then the main process's tests.

``PhasedSuite`` is what the runner hands to ``run_suite``: one unittest suite, so
one result, one report, one summary line and one exit code, with ``--failfast``
stopping before the serial phase like anywhere else.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable
from typing import Any

import django
from django.test.runner import ParallelTestSuite, _run_subsuite  # type: ignore[attr-defined]

from . import activation
from .backends.creation import mark_failed_schemas, wait_for_clones
from .worker_watch import watch_workers

#: RemoteTestResult events that make a run fail (a failed subtest's carries its error last).
_FAILING_EVENTS = {"addError", "addFailure", "addUnexpectedSuccess"}


def _run_subsuite_marking_failures(args: Any) -> Any:
    """Django's ``_run_subsuite``, then, in the worker, mark its schemas when a test
    failed there, so that ``--keep-failed-schemas`` keeps them. Module level, as
    Django's own, so that spawned workers can unpickle it."""
    subsuite_index, events = _run_subsuite(args)
    if any(
        event[0] in _FAILING_EVENTS or (event[0] == "addSubTest" and event[-1] is not None)
        for event in events
    ):
        mark_failed_schemas()
    return subsuite_index, events


def _problems(result: Any) -> int:
    return sum(
        len(getattr(result, name, ()))
        for name in ("errors", "failures", "unexpectedSuccesses")
    )


class SchemaIsolatedParallelTestSuite(ParallelTestSuite):
    """Django's parallel suite, with workers that come up isolated.

    Fork workers inherit the isolated connections; spawn and forkserver workers
    import everything afresh, so ``process_setup`` installs isolation there before
    Django's ``_init_worker`` points each connection at the worker's schema.
    """

    run_subsuite = _run_subsuite_marking_failures

    def process_setup(*args: Any) -> None:  # noqa: N805
        # Django passes this function (not a bound method) to the pool initializer
        # and calls it with process_setup_args, before it calls django.setup().
        django.setup()
        activation.install()

    def run(self, result: Any, debug: bool = False) -> Any:
        # The runner waits after its system checks; a runner that skips those
        # still needs every schema in place, and no clone thread alive at fork.
        wait_for_clones()
        activation.close_connections()
        super().run(watch_workers(result))
        return result


class MainProcessPhase(unittest.TestSuite):
    """Tests the main process runs itself: serial tests, or all tests without workers.

    ``before_run`` moves the main process's connections off the template into a
    schema of their own right before the first test, once the workers are gone.
    """

    before_run: Callable[[], None] | None = None
    #: The result's ``buffer`` as the run started; see ``PhasedSuite.run``.
    result_buffer: bool | None = None

    def run(self, result: Any, debug: bool = False) -> Any:
        if self.countTestCases() and self.before_run is not None and not result.shouldStop:
            if self.result_buffer is not None:
                result.buffer = self.result_buffer
            self.before_run()
        problems = _problems(result)
        outcome = super().run(result, debug)
        if _problems(result) > problems:
            mark_failed_schemas()
        return outcome


class PhasedSuite(unittest.TestSuite):
    """The parallel phase followed by the main process's phase."""

    def __init__(self, parallel: unittest.TestSuite, main: MainProcessPhase) -> None:
        super().__init__([parallel, main])
        self.parallel_phase = parallel
        self.main_phase = main

    def run(self, result: Any, debug: bool = False) -> Any:
        # DiscoverRunner.run_tests sets these on the suite it built; the parallel
        # suite inside needs them to start spawned workers.
        for attr in ("serialized_aliases", "used_aliases"):
            if hasattr(self, attr):
                setattr(self.parallel_phase, attr, getattr(self, attr))
        # Django 6's parallel suite turns buffering off in the main process for
        # its own reasons; the serial phase runs here and needs it back.
        self.main_phase.result_buffer = getattr(result, "buffer", False)
        return super().run(result, debug)
