"""The runner's pieces, in process and without a database: how ``build_suite`` splits
serial tests from the parallel phase, the dead-worker watch, turning activation on
and off.

The end-to-end proofs (a worker killed with SIGKILL, serial tests last and alone)
are in test_faults.py and test_serial_tags.py; these pin the pieces they rest on,
in milliseconds.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
import threading
import time
import unittest
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db.utils import ConnectionHandler
from django.test import override_settings, tag
from django.test.runner import DiscoverRunner, ParallelTestSuite

# The module, not its names: WorkerProcess is a TestCase that pytest would collect here.
from schemaiso import activation, worker_watch
from schemaiso.backends.wrapper import SchemaIsolationWrapperMixin
from schemaiso.errors import SchemaIsoError
from schemaiso.parallel import PhasedSuite, SchemaIsolatedParallelTestSuite
from schemaiso.pytest_plugin import SchemaIsoSession
from schemaiso.pytest_support.serial import is_serial_item
from schemaiso.runner import Runner
from schemaiso.serial_tags import is_serial

# -- build_suite: serial tests out of the parallel phase ----------------------------
# Sample tests for the runner to find (``__test__``: pytest leaves them alone).


class Sample(unittest.TestCase):
    __test__ = False

    def test_a(self) -> None:
        pass

    def test_b(self) -> None:
        pass


class First(Sample):
    pass


@tag("serial")
class SerialClass(Sample):
    pass


class MixedMethods(Sample):
    @tag("serial")
    def test_b(self) -> None:
        pass


class Second(Sample):
    pass


@tag("slow")
class SlowClass(Sample):
    pass


ALL = [First, SerialClass, MixedMethods, Second, SlowClass]


def _build(classes: Sequence[type], runner_class: type = Runner, **options: Any) -> Any:
    """``runner_class(**options)`` and its suite for ``classes``, found the way
    Django finds them (only the loading of the label is replaced)."""
    runner = runner_class(verbosity=0, enable_faulthandler=False, **options)
    loaded = unittest.TestSuite(
        unittest.defaultTestLoader.loadTestsFromTestCase(cls) for cls in classes
    )
    with mock.patch.object(runner, "load_tests_for_label", return_value=loaded):
        return runner, runner.build_suite(["samples"])


def _ids(tests: Any) -> list[str]:
    return [test.id().rsplit(".", 2)[-2] + "." + test.id().rsplit(".", 1)[-1] for test in tests]


def _workers(suite: PhasedSuite) -> list[list[str]] | None:
    """Each worker's share (one per class), or None when no worker runs."""
    phase = suite.parallel_phase
    if not isinstance(phase, SchemaIsolatedParallelTestSuite):
        assert phase.countTestCases() == 0
        return None
    return [_ids(subsuite) for subsuite in phase.subsuites]


def test_serial_by_class_tag_and_by_method_tag_run_last_in_the_main_process() -> None:
    runner, suite = _build(ALL, parallel=3)
    assert _workers(suite) == [
        ["First.test_a", "First.test_b"],
        ["MixedMethods.test_a"],
        ["Second.test_a", "Second.test_b"],
        ["SlowClass.test_a", "SlowClass.test_b"],
    ]
    assert suite.parallel_phase.processes == runner.parallel == 3
    serial = ["SerialClass.test_a", "SerialClass.test_b", "MixedMethods.test_b"]
    assert _ids(suite.main_phase) == serial
    assert _ids(runner.serial_tests) == serial


def test_without_workers_the_main_process_runs_everything_serial_last() -> None:
    in_order = ["First.test_a", "First.test_b", "MixedMethods.test_a", "Second.test_a",
                "Second.test_b", "SlowClass.test_a", "SlowClass.test_b",
                "SerialClass.test_a", "SerialClass.test_b", "MixedMethods.test_b"]
    for parallel in (0, 1):  # no --parallel, --parallel 1
        runner, suite = _build(ALL, parallel=parallel)
        assert _workers(suite) is None
        assert _ids(suite.main_phase) == in_order
        assert runner.parallel == parallel
        assert len(runner.serial_tests) == 3


def test_no_more_workers_than_classes_that_are_not_serial() -> None:
    runner, suite = _build(ALL, parallel=8)
    assert suite.parallel_phase.processes == runner.parallel == 4
    # One class left for workers: it runs in the main process, serial tests after it.
    runner, suite = _build([SerialClass, First], parallel=4)
    assert _workers(suite) is None
    assert runner.parallel == 1
    assert _ids(suite.main_phase) == ["First.test_a", "First.test_b",
                                      "SerialClass.test_a", "SerialClass.test_b"]
    # Every test serial.
    runner, suite = _build([SerialClass], parallel=4)
    assert _workers(suite) is None
    assert runner.parallel == 1
    assert _ids(suite.main_phase) == ["SerialClass.test_a", "SerialClass.test_b"]


def test_custom_serial_tags_from_the_option_or_the_setting_replace_serial() -> None:
    expected_workers = [["First.test_a", "First.test_b"],
                        ["SerialClass.test_a", "SerialClass.test_b"],
                        ["MixedMethods.test_a", "MixedMethods.test_b"],
                        ["Second.test_a", "Second.test_b"]]
    runner, suite = _build(ALL, parallel=8, serial_tags=["slow"])
    assert _workers(suite) == expected_workers
    assert _ids(suite.main_phase) == ["SlowClass.test_a", "SlowClass.test_b"]
    with override_settings(SCHEMAISO={"SERIAL_TAGS": ["slow"]}):
        runner, suite = _build(ALL, parallel=8)
    assert _workers(suite) == expected_workers
    assert _ids(suite.main_phase) == ["SlowClass.test_a", "SlowClass.test_b"]
    runner, suite = _build(ALL, parallel=8, serial_tags=["slow", "serial"])
    assert _ids(suite.main_phase) == ["SerialClass.test_a", "SerialClass.test_b",
                                      "MixedMethods.test_b", "SlowClass.test_a",
                                      "SlowClass.test_b"]


def test_each_phase_keeps_the_order_django_chose() -> None:
    for options in ({"reverse": True}, {"shuffle": 1234}, {"exclude_tags": ["slow"]},
                    {"tags": ["serial", "slow"]}):
        _, django_suite = _build(ALL, DiscoverRunner, **options)
        runner, suite = _build(ALL, parallel=3, **options)
        serial = _ids(runner.serial_tests)
        in_order = _ids(django_suite)
        others = [test for test in in_order if test not in serial]
        assert serial == [test for test in in_order if test in serial]
        workers = _workers(suite)
        if workers is None:  # {"tags": ...} leaves one class that is not serial
            assert _ids(suite.main_phase) == others + serial
        else:
            assert [test for share in workers for test in share] == others
            assert _ids(suite.main_phase) == serial


def test_the_partition_is_djangos_own_for_tests_that_are_not_serial() -> None:
    """The lines build_suite repeats from Django's make what Django's make (a Django
    release that changes them fails here)."""

    class Stock(DiscoverRunner):
        parallel_test_suite = SchemaIsolatedParallelTestSuite

    plain = [First, Second, SlowClass]
    for parallel in (0, 1, 2, 3, 8):
        for classes in (plain, plain[:1]):
            options: dict[str, Any] = {"parallel": parallel, "failfast": True, "buffer": True}
            django_runner, django_suite = _build(classes, Stock, **options)
            runner, suite = _build(classes, **options)
            assert runner.parallel == django_runner.parallel
            if isinstance(django_suite, ParallelTestSuite):
                phase = suite.parallel_phase
                assert _workers(suite) == [_ids(s) for s in django_suite.subsuites]
                assert [type(s) for s in phase.subsuites] == [type(s) for s in django_suite.subsuites]
                assert (phase.processes, phase.failfast, phase.debug_mode, phase.buffer) == (
                    django_suite.processes, django_suite.failfast, django_suite.debug_mode,
                    django_suite.buffer)
            else:
                assert _workers(suite) is None
                assert _ids(suite.main_phase) == _ids(django_suite)


def test_a_parallel_suite_that_does_not_isolate_workers_stops_the_run() -> None:
    runner = Runner(verbosity=0, enable_faulthandler=False, parallel=2)
    runner.parallel_test_suite = ParallelTestSuite
    with (
        mock.patch.object(runner, "load_tests_for_label", return_value=unittest.TestSuite()),
        pytest.raises(SchemaIsoError, match="^schemaiso: Runner.parallel_test_suite is "
                      "ParallelTestSuite, which does not isolate workers"),
    ):
        runner.build_suite(["samples"])


def test_one_rule_says_which_tests_are_serial_under_manage_py_test_and_pytest() -> None:
    tags = frozenset({"serial"})
    for cls, method, expected in [
        (First, "test_a", False), (SerialClass, "test_a", True),
        (MixedMethods, "test_b", True), (MixedMethods, "test_a", False),
    ]:
        test = cls(method)
        item = SimpleNamespace(cls=cls, obj=getattr(test, method), iter_markers=lambda: iter(()))
        assert is_serial(test, tags) is is_serial_item(item, tags) is expected, (cls, method)
    # Under pytest a marker counts too, on any test.
    marked = SimpleNamespace(cls=None, obj=None, iter_markers=lambda: iter([SimpleNamespace(name="serial")]))
    assert is_serial_item(marked, tags)


# -- the dead-worker watch ----------------------------------------------------------


def _sleep() -> None:
    time.sleep(60)


class SlottedResult(unittest.TestResult):
    """A result class whose instances cannot change class (no ``__dict__``)."""

    __slots__ = ("noted",)
    noted: str


def test_a_dead_worker_becomes_an_error_naming_it_and_stops_the_run() -> None:
    result = unittest.TestResult()
    watched = worker_watch.watch_workers(result)
    worker = multiprocessing.get_context("fork").Process(target=_sleep, name="PoolWorker-7")
    worker.start()
    try:
        assert not watched.shouldStop
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not watched.shouldStop:
            assert time.monotonic() < deadline, "the watch did not notice the dead worker"
            time.sleep(0.05)
    finally:
        worker.kill()
        worker.join()
    assert result.shouldStop
    [(test, message)] = result.errors
    assert isinstance(test, worker_watch.WorkerProcess)
    assert str(test) == f"parallel worker PoolWorker-7 (pid {worker.pid}), killed by SIGKILL"
    assert "schemaiso: parallel worker PoolWorker-7" in message
    assert "WorkerDied" in message
    # The result keeps its class: nothing is swapped.
    assert type(result) is unittest.TestResult


def test_the_watched_result_is_the_result_for_everything_but_should_stop() -> None:
    result = SlottedResult()
    watched = worker_watch.watch_workers(result)
    watched.buffer = True  # Django 6's parallel loop turns buffering off this way
    assert result.buffer is True
    watched.noted = "through"
    assert result.noted == "through"
    assert watched.addSuccess.__self__ is result
    assert not watched.shouldStop
    result.stop()  # --failfast, or Ctrl-C through unittest's handler
    assert watched.shouldStop


def test_the_parallel_suite_hands_djangos_loop_the_watched_result_and_returns_the_result() -> None:
    result = unittest.TestResult()
    seen: list[Any] = []

    def django_run(self: Any, given: Any) -> Any:
        seen.append(given)
        return given

    suite = SchemaIsolatedParallelTestSuite([], 2)
    with (
        mock.patch("django.test.runner.ParallelTestSuite.run", django_run),
        mock.patch("schemaiso.parallel.wait_for_clones"),
        mock.patch("schemaiso.parallel.activation.close_connections"),
    ):
        assert suite.run(result) is result
    [given] = seen
    assert isinstance(given, worker_watch.WatchedResult) and given._result is result


# -- activation on and off ------------------------------------------------------------


@pytest.fixture
def handler() -> Iterator[ConnectionHandler]:
    """A connection handler of activation's own: the suite's connections stay as they are."""
    own = ConnectionHandler({"default": copy.deepcopy(settings.DATABASES["default"])})
    with mock.patch.object(activation, "connections", own):
        yield own
        activation.uninstall()


def _in_new_thread(make: Callable[[], Any]) -> Any:
    made: list[Any] = []
    thread = threading.Thread(target=lambda: made.append(make()))
    thread.start()
    thread.join()
    return made[0]


def _parts(connection: Any) -> tuple[type, Any, type]:
    return type(connection), connection.creation, type(connection.ops)


def test_uninstall_undoes_install_and_install_works_again(handler: ConnectionHandler) -> None:
    connection = handler["default"]
    stock = _parts(connection)
    for _ in range(2):
        activation.install()
        assert activation.installed()
        assert isinstance(connection, SchemaIsolationWrapperMixin)
        assert isinstance(_in_new_thread(lambda: handler["default"]), SchemaIsolationWrapperMixin)
        with mock.patch.object(activation, "close_with_pool") as close:
            activation.uninstall()
        close.assert_called_once_with(connection)  # its session has the search_path
        assert not activation.installed()
        assert "create_connection" not in vars(handler)  # the class's method again
        assert _parts(connection) == stock
        assert type(_in_new_thread(lambda: handler["default"])) is stock[0]
        activation.uninstall()  # again: nothing more to undo
        assert _parts(connection) == stock


def test_uninstall_restores_connections_made_while_installed_and_the_handlers_own_method(
    handler: ConnectionHandler,
) -> None:
    def projects_own(alias: str) -> Any:
        return ConnectionHandler.create_connection(handler, alias)

    handler.create_connection = projects_own  # type: ignore[method-assign]
    activation.install()
    made = handler["default"]  # first used after install: made isolated
    assert isinstance(made, SchemaIsolationWrapperMixin)
    activation.uninstall()
    assert vars(handler)["create_connection"] is projects_own
    assert not isinstance(made, SchemaIsolationWrapperMixin)
    assert not isinstance(made.creation, activation.SchemaIsolationCreationMixin)


def test_a_run_turns_isolation_off_at_its_end_unless_it_found_it_on(handler: ConnectionHandler) -> None:
    with mock.patch.object(DiscoverRunner, "teardown_databases"):
        runner = Runner(verbosity=0)
        activation.install()
        nested = Runner(verbosity=0)  # a test that runs tests, inside the run
        nested.teardown_databases(None)
        assert activation.installed()
        runner.teardown_databases(None)
        assert not activation.installed()

    config: Any = SimpleNamespace(option=SimpleNamespace(dist="no"))
    session = SchemaIsoSession(config, frozenset({"serial"}))
    activation.install()
    inner = SchemaIsoSession(config, frozenset({"serial"}))  # pytester, in process
    inner.pytest_unconfigure(config)
    assert activation.installed()
    session.pytest_unconfigure(config)
    assert not activation.installed()
