"""The runner's pieces, in process and without a database: the dead-worker watch.

The end-to-end proofs (a worker killed with SIGKILL, serial tests last and alone)
are in test_faults.py and test_serial_tags.py; these pin the pieces they rest on,
in milliseconds.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import unittest
from typing import Any
from unittest import mock

# The module, not its names: WorkerProcess is a TestCase that pytest would collect here.
from schemaiso import worker_watch
from schemaiso.parallel import SchemaIsolatedParallelTestSuite


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
