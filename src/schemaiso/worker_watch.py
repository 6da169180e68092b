"""Noticing a parallel worker that died, instead of waiting for it forever.

When a worker of Django's ``multiprocessing.Pool`` is killed (``kill -9``, the OOM
killer, a segfault in a C extension), the pool starts a replacement but the tests
the dead worker was running never report back, and Django's result loop waits for
them forever. That loop asks ``result.shouldStop`` every 0.1 s and stops the pool
when it is true: the watch hooks that question, in the main thread, and answers it
by looking at the pool's processes. A dead worker becomes an error in the report
that names it, and the run stops and tears down as after ``--failfast``.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
import unittest
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def stop_on_dead_worker(result: Any) -> Iterator[WorkerWatch | None]:
    """While the block runs, reading ``result.shouldStop`` also checks the pool's
    workers; a dead one is added to ``result`` as an error and stops the run.

    The result's class is swapped for a subclass with a ``shouldStop`` property
    and restored afterwards; a result class that does not allow that (slots) runs
    unwatched, exactly as Django would run it.
    """
    watch = WorkerWatch()
    original = type(result)

    def get_stop(self: Any) -> bool:
        if self.__dict__.get("shouldStop"):
            return True
        for description in watch.check():
            error = WorkerDied(
                f"schemaiso: {description}, while running tests. The tests it had "
                "not reported are lost; the run stops here, and this run's schemas "
                "are dropped at teardown. A worker killed by SIGKILL is often the "
                "kernel's out-of-memory killer: see `dmesg`."
            )
            # No traceback: where the watch noticed it says nothing about the worker.
            self.addError(WorkerProcess(description), (WorkerDied, error, None))
            self.__dict__["shouldStop"] = True
        return bool(self.__dict__.get("shouldStop"))

    def set_stop(self: Any, value: bool) -> None:
        self.__dict__["shouldStop"] = value

    watched = type(original.__name__, (original,), {"shouldStop": property(get_stop, set_stop)})
    try:
        result.__class__ = watched
    except TypeError:
        yield None
        return
    try:
        yield watch
    finally:
        result.__class__ = original
