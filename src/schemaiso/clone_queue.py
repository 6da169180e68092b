"""Clone schemas in background threads while the main process gets on with setup.

A clone pays DDL cost on the server, so the main process should not sit idle
while it runs: Django calls ``_clone_test_db`` once per worker, one after the
other, and the queue turns each call into a job that a few threads run
concurrently, each on its own connection. Meanwhile the main process migrates
the next test database, serializes data and runs the system checks. The runner
waits for every job before any worker starts (no thread may be alive at
``fork``) and reports the first failure there.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import Any

#: The default number of clones at once is twice the cores (a clone waits on
#: WAL flushes and file creation as well as CPU), at most this many.
MAX_DEFAULT_CONCURRENCY = 8
#: Each cloner gets a per-transaction lock budget; below this many locks a
#: clone splits into so many transactions that extra concurrency stops paying.
MIN_LOCKS_PER_CLONER = 256

#: How often the interpreter hands the GIL over while clone threads are alive, in
#: seconds (Python's default is 0.005). A clone thread mostly waits on the server,
#: and each reply needs the GIL back; with the main thread busy in Python meanwhile
#: (Django's system checks run during a warm run's spare claims) the thread waits up
#: to the whole interval per round trip, and a claim makes a dozen. On the 300-table
#: warm benchmark, a setup of 0.21 s became 0.12 s (medians of 8).
CLONE_SWITCH_INTERVAL = 0.0005


class _QuickGilHandoff:
    """Lowers ``sys.setswitchinterval`` while any clone thread is alive (across
    queues) and puts back the previous value after the last one, unless someone
    else has changed it in between."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads = 0
        self._saved: float | None = None

    def thread_started(self) -> None:
        with self._lock:
            self._threads += 1
            if self._threads == 1 and sys.getswitchinterval() > CLONE_SWITCH_INTERVAL:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(CLONE_SWITCH_INTERVAL)

    def thread_joined(self) -> None:
        with self._lock:
            self._threads -= 1
            if self._threads == 0 and self._saved is not None:
                if abs(sys.getswitchinterval() - CLONE_SWITCH_INTERVAL) < 1e-6:
                    sys.setswitchinterval(self._saved)
                self._saved = None


_gil_handoff = _QuickGilHandoff()

Job = Callable[[Any, str, str], None]
"""``job(raw_connection, schema, role)``: create ``schema`` and fill it."""

ConnectionFactory = Callable[[], AbstractContextManager[Any]]
"""Opens a raw DB-API connection in the calling thread and closes it on exit."""

_STOP = object()


@dataclass(frozen=True)
class PreparedSchema:
    """One schema the queue made: cloned, or a kept spare claimed and reset."""

    schema: str
    #: The spare's old name when one was reset, None for a clone.
    spare: str | None
    seconds: float


def describe_prepared(done: list[PreparedSchema]) -> str:
    """``Cloning 3 schema(s)``, ``Resetting 3 kept schema(s)``, or both, for ``--timing``."""
    reset = sum(item.spare is not None for item in done)
    cloned = len(done) - reset
    if not reset:
        return f"Cloning {cloned} schema(s)"
    if not cloned:
        return f"Resetting {reset} kept schema(s)"
    return f"Preparing {len(done)} schema(s) ({reset} kept and reset, {cloned} cloned)"


def default_concurrency(lock_slots: int) -> int:
    """Clones at once when the project does not say: from the local cores, capped by the lock table.

    ``lock_slots`` is the server's shared lock table size; cloners together use a
    quarter of it, and each needs at least ``MIN_LOCKS_PER_CLONER``.
    """
    cores = os.cpu_count() or 2
    by_locks = max(1, lock_slots // 4 // MIN_LOCKS_PER_CLONER)
    return max(1, min(MAX_DEFAULT_CONCURRENCY, 2 * cores, by_locks))


class CloneQueue:
    """Runs clone jobs on up to ``concurrency`` threads; ``wait`` joins them and raises.

    Threads start as jobs arrive, so a run with two workers opens two
    connections, not ``concurrency``. After the first failure the remaining
    jobs are skipped.
    """

    def __init__(self, job: Job, connect: ConnectionFactory, concurrency: int) -> None:
        self._job = job
        self._connect = connect
        self._concurrency = max(1, concurrency)
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Each thread with an event it sets as its very last step: Thread.is_alive()
        # cannot be trusted after a join() that Ctrl-C interrupted (CPython marks a
        # still running thread as stopped there; seen on 3.12.1), and teardown must
        # know for sure that no clone connection is left before DROP DATABASE.
        self._threads: list[tuple[threading.Thread, threading.Event]] = []
        self._lock = threading.Lock()
        self._busy: dict[int, Any] = {}  # thread ident -> raw connection in use
        self._errors: list[BaseException] = []
        self._cancelled = False
        self._stopping = False
        self.submitted: list[str] = []
        #: When the first clone started and the last one ended (``--timing``).
        self.first_started: float | None = None
        self.last_finished: float | None = None
        self.finished = 0

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def submit(self, schema: str, role: str) -> None:
        """Queue a clone into ``schema``; it starts as soon as a thread is free."""
        if self._cancelled or self._stopping:
            raise RuntimeError("schemaiso: clone queue used after cancel() or during wait()")
        self.submitted.append(schema)
        self._jobs.put((schema, role))
        if len(self._threads) < min(self._concurrency, len(self.submitted)):
            finished = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(finished,),
                name=f"schemaiso-clone-{len(self._threads) + 1}", daemon=True,
            )
            self._threads.append((thread, finished))
            _gil_handoff.thread_started()
            try:
                thread.start()
            except BaseException:
                self._threads.pop()
                _gil_handoff.thread_joined()
                raise

    def wait(self) -> None:
        """Block until every queued clone has finished; raise the first error, if any."""
        self._join()
        if self._errors:
            raise self._errors[0]

    def cancel(self) -> None:
        """Skip queued clones, interrupt running ones and join the threads; errors are dropped.

        For teardown after a failure or Ctrl-C: the test database can only be
        dropped once no clone connection is left.
        """
        self._cancelled = True
        with self._lock:
            busy = list(self._busy.values())
        for raw in busy:
            with suppress(Exception):
                raw.cancel()
        self._join()

    def _join(self) -> None:
        """Tell every thread to stop after the queued jobs, and join them.

        A thread leaves the list only once joined, so that a join interrupted
        by Ctrl-C is finished by the ``cancel`` in teardown.
        """
        if not self._stopping:
            self._stopping = True
            for _ in self._threads:
                self._jobs.put(_STOP)
        while self._threads:
            thread, finished = self._threads[0]
            if finished.wait(0.2):  # short waits keep Ctrl-C responsive
                thread.join()  # only the thread's own exit is left
                self._threads.pop(0)
                _gil_handoff.thread_joined()
        self._stopping = False

    def _next_job(self) -> Iterator[tuple[str, str]]:
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            if self._cancelled or self._errors:
                continue  # drain: a failure or cancel skips what is left
            yield item

    def _run(self, finished: threading.Event) -> None:
        try:
            self._work()
        finally:
            finished.set()

    def _work(self) -> None:
        jobs = self._next_job()
        try:
            first = next(jobs, None)
            if first is None:
                return
            with self._connect() as raw:
                ident = threading.get_ident()
                with self._lock:
                    self._busy[ident] = raw
                try:
                    for schema, role in _chain(first, jobs):
                        started = time.perf_counter()
                        with self._lock:
                            if self.first_started is None:
                                self.first_started = started
                        self._job(raw, schema, role)
                        with self._lock:
                            self.last_finished = time.perf_counter()
                            self.finished += 1
                finally:
                    with self._lock:
                        self._busy.pop(ident, None)
        except BaseException as exc:  # reported by wait(), in the main thread
            if not self._cancelled:
                self._errors.append(exc)
            for _ in jobs:  # keep consuming until this thread's stop marker
                pass


def _chain(first: tuple[str, str], rest: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    yield first
    yield from rest
