"""The runner's pieces, in process and without a database: the dead-worker watch,
turning activation on and off.

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
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db.utils import ConnectionHandler
from django.test.runner import DiscoverRunner

# The module, not its names: WorkerProcess is a TestCase that pytest would collect here.
from schemaiso import activation, worker_watch
from schemaiso.backends.wrapper import SchemaIsolationWrapperMixin
from schemaiso.parallel import SchemaIsolatedParallelTestSuite
from schemaiso.pytest_plugin import SchemaIsoSession
from schemaiso.runner import Runner


def _sleep() -> None:
    time.sleep(60)


class SlottedResult(unittest.TestResult):
    """A result class whose instances cannot change class (no ``__dict__``)."""

    __slots__ = ("noted",)


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
