"""Noticing a parallel worker that died, instead of waiting for it forever.

When a worker of Django's ``multiprocessing.Pool`` is killed (``kill -9``, the OOM
killer, a segfault in a C extension), the pool starts a replacement but the tests
the dead worker was running never report back, and Django's result loop waits for
them forever. That loop asks ``result.shouldStop`` every 0.1 s and stops the pool
when it is true: the parallel suite hands the loop the result behind a thin
wrapper whose ``shouldStop`` also looks at the pool's processes, in the main thread. A dead worker becomes an error in the report
that names it, and the run stops and tears down as after ``--failfast``.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
import unittest
from typing import Any

#: How often the pool's processes are looked at (``shouldStop`` is read every 0.1 s).
CHECK_SECONDS = 0.5


class WorkerDied(Exception):
    """A parallel worker process ended while tests were running in it."""


class WorkerProcess(unittest.TestCase):
    """Stands for a dead worker in the report, as unittest's _ErrorHolder does for
    a failing ``setUpClass``: results need a test to attach an error to."""

    def __init__(self, description: str) -> None:
        super().__init__()
        self.description = description

    def runTest(self) -> None:  # pragma: no cover - never run  # noqa: N802
        raise NotImplementedError

    def id(self) -> str:
        return self.description

    def __str__(self) -> str:
        return self.description

    def shortDescription(self) -> None:  # noqa: N802
        return None


def _describe_exit(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


class WorkerWatch:
    """Tracks the processes the pool starts after ``__init__`` and finds dead ones."""

    def __init__(self) -> None:
        self._before = {p.pid for p in multiprocessing.active_children()}
        self._seen: dict[int | None, multiprocessing.process.BaseProcess] = {}
        self._next_check = 0.0
        self.dead: list[str] = []

    def check(self) -> list[str]:
        """Descriptions of workers found dead since the last check (at most every
        ``CHECK_SECONDS``); ``active_children`` also reaps them."""
        now = time.monotonic()
        if now < self._next_check:
            return []
        self._next_check = now + CHECK_SECONDS
        alive = {p.pid: p for p in multiprocessing.active_children() if p.pid not in self._before}
        found = []
        for pid, process in list(self._seen.items()):
            if pid in alive:
                continue
            del self._seen[pid]
            exitcode = process.exitcode
            if exitcode:  # None: not reaped yet (seen again next time); 0: a clean exit
                found.append(
                    f"parallel worker {process.name} (pid {pid}), {_describe_exit(exitcode)}"
                )
            elif exitcode is None:
                self._seen[pid] = process
        self._seen.update(alive)
        self.dead.extend(found)
        return found


class WatchedResult:
    """The run's result as Django's parallel loop sees it: the same object, except
    that reading ``shouldStop`` also looks at the pool's workers, and a dead one is
    added to the result as an error and stops the run.

    Django's loop (``ParallelTestSuite.run``) only reads ``shouldStop``, gets the
    result's ``add*`` methods by name and sets ``buffer``: everything but
    ``shouldStop`` goes to the result itself, whatever its class. Neither
    ``get_resultclass()`` nor ``get_test_runner_kwargs()`` can do this: a runner
    may return None there so that its ``test_runner`` picks its own result class
    (unittest-xml-reporting's Django runner does), or set the class itself, and
    a subclass made here would replace or miss it.
    """

    _result: Any
    _watch: WorkerWatch

    def __init__(self, result: Any, watch: WorkerWatch) -> None:
        object.__setattr__(self, "_result", result)
        object.__setattr__(self, "_watch", watch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._result, name, value)

    @property
    def shouldStop(self) -> bool:  # noqa: N802
        result = self._result
        if result.shouldStop:
            return True
        for description in self._watch.check():
            error = WorkerDied(
                f"schemaiso: {description}, while running tests. The tests it had "
                "not reported are lost; the run stops here, and this run's schemas "
                "are dropped at teardown. A worker killed by SIGKILL is often the "
                "kernel's out-of-memory killer: see `dmesg`."
            )
            # No traceback: where the watch noticed it says nothing about the worker.
            result.addError(WorkerProcess(description), (WorkerDied, error, None))
            result.shouldStop = True
        return bool(result.shouldStop)


def watch_workers(result: Any) -> WatchedResult:
    """``result`` for Django's parallel loop, watching the workers of the pool it is
    about to start (call it right before: processes alive now are not the pool's)."""
    return WatchedResult(result, WorkerWatch())
