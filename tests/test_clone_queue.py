"""The background clone queue's scheduling: concurrency, failures, cancel, no stray threads.

Jobs here are plain Python callables so that timing and failures can be
controlled exactly; the queue driving real clones is tested in test_creation
and end to end in test_scale.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.test import override_settings

from schemaiso.clone_queue import (
    CLONE_SWITCH_INTERVAL,
    MAX_DEFAULT_CONCURRENCY,
    MIN_LOCKS_PER_CLONER,
    CloneQueue,
    default_concurrency,
)
from schemaiso.conf import get_config
from schemaiso.errors import SchemaIsoError


class Recorder:
    """Counts connections and simultaneous jobs; fails the jobs it is told to.

    A job takes ``delay`` seconds, or with ``hold``, until that event is set.
    """

    def __init__(
        self, fail: str | None = None, delay: float = 0.05, hold: threading.Event | None = None
    ) -> None:
        self.fail = fail
        self.delay = delay
        self.hold = hold
        self.lock = threading.Lock()
        self.running_changed = threading.Condition(self.lock)
        self.running = 0
        self.most_at_once = 0
        self.done: list[str] = []
        self.connections_opened = 0
        self.connections_closed = 0
        self.cancelled = threading.Event()

    @contextmanager
    def connect(self) -> Iterator[Any]:
        with self.lock:
            self.connections_opened += 1
        try:
            yield self
        finally:
            with self.lock:
                self.connections_closed += 1

    def cancel(self) -> None:
        """Like a driver's cancel(): the statement running on the connection ends now."""
        self.cancelled.set()

    def job(self, raw: Any, schema: str, role: str) -> None:
        assert raw is self
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.running_changed.notify_all()
        try:
            if self.hold is not None:
                assert self.hold.wait(30), "the test never released the job"
            if self.cancelled.wait(self.delay):
                raise RuntimeError(f"canceling statement due to user request ({schema})")
            if schema == self.fail:
                raise RuntimeError(f"boom in {schema}")
            with self.lock:
                self.done.append(schema)
        finally:
            with self.lock:
                self.running -= 1

    def wait_until_running(self, jobs: int) -> None:
        """Return once ``jobs`` jobs are inside ``job`` at the same time."""
        with self.lock:
            assert self.running_changed.wait_for(lambda: self.running == jobs, timeout=30), (
                f"{self.running} job(s) running, expected {jobs}"
            )


def clone_threads() -> list[threading.Thread]:
    """Clone threads still running. A finished thread can linger in
    ``threading.enumerate()`` for a moment after ``join`` (seen on Python 3.12.1),
    but only a live one matters: no thread may be running when workers fork."""
    return [
        t for t in threading.enumerate() if t.name.startswith("schemaiso-clone-") and t.is_alive()
    ]


def interrupt_inside(thread: threading.Thread, function: Any) -> None:
    """Send SIGINT (Ctrl-C) once ``thread`` is inside a call of ``function``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident or 0)
        while frame is not None and frame.f_code is not function.__code__:
            frame = frame.f_back
        if frame is not None:
            os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.01)
    raise AssertionError(f"{thread.name} did not call {function.__qualname__} within 30 s")


def test_runs_every_job_at_most_concurrency_at_a_time_then_leaves_no_thread() -> None:
    rec = Recorder()
    clones = CloneQueue(rec.job, rec.connect, concurrency=3)
    names = [f"w{i}" for i in range(1, 10)]
    for name in names:
        clones.submit(name, "worker")
    clones.wait()
    assert sorted(rec.done) == sorted(names)
    assert rec.most_at_once == 3
    assert rec.connections_opened == rec.connections_closed == 3
    assert clone_threads() == []


def test_opens_no_more_connections_than_jobs() -> None:
    rec = Recorder()
    clones = CloneQueue(rec.job, rec.connect, concurrency=8)
    clones.submit("w1", "worker")
    clones.submit("w2", "worker")
    clones.wait()
    assert rec.connections_opened == 2


def test_first_failure_is_raised_by_wait_and_later_jobs_are_skipped() -> None:
    rec = Recorder(fail="w1")
    clones = CloneQueue(rec.job, rec.connect, concurrency=1)
    for name in ("w1", "w2", "w3"):
        clones.submit(name, "worker")
    with pytest.raises(RuntimeError, match="boom in w1"):
        clones.wait()
    assert rec.done == []
    assert rec.connections_opened == rec.connections_closed == 1
    assert clone_threads() == []


def test_a_failing_connection_is_reported() -> None:
    @contextmanager
    def refuse() -> Iterator[Any]:
        raise ConnectionError("server went away")
        yield  # pragma: no cover

    clones = CloneQueue(lambda raw, schema, role: None, refuse, concurrency=2)
    clones.submit("w1", "worker")
    with pytest.raises(ConnectionError, match="server went away"):
        clones.wait()
    assert clone_threads() == []


def test_cancel_interrupts_running_jobs_skips_queued_ones_and_swallows_errors() -> None:
    rec = Recorder(delay=30)
    clones = CloneQueue(rec.job, rec.connect, concurrency=1)
    for name in ("w1", "w2", "w3"):
        clones.submit(name, "worker")
    rec.wait_until_running(1)  # w1 is running, w2 and w3 are queued
    started = time.perf_counter()
    clones.cancel()
    assert time.perf_counter() - started < 5
    assert rec.cancelled.is_set()
    assert rec.done == []
    assert rec.connections_opened == rec.connections_closed == 1
    assert clone_threads() == []
    with pytest.raises(RuntimeError, match="after cancel"):
        clones.submit("w4", "worker")


def test_default_concurrency_follows_cores_and_the_lock_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_concurrency(64 * 100) == 4  # a default server: 6400 lock slots
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert default_concurrency(64 * 100) == 6400 // 4 // MIN_LOCKS_PER_CLONER
    assert default_concurrency(10**9) == MAX_DEFAULT_CONCURRENCY
    assert default_concurrency(10) == 1  # a tiny lock table: one clone at a time


@pytest.mark.parametrize("value", [0, -1, "4", 2.5, True])
def test_clone_concurrency_setting_must_be_a_positive_integer(value: object) -> None:
    with override_settings(SCHEMAISO={"CLONE_CONCURRENCY": value}):
        with pytest.raises(SchemaIsoError, match=r"SCHEMAISO\['CLONE_CONCURRENCY'\]"):
            get_config()


def test_clone_concurrency_setting_is_read() -> None:
    with override_settings(SCHEMAISO={"CLONE_CONCURRENCY": 3}):
        assert get_config().clone_concurrency == 3
    assert get_config().clone_concurrency is None


def test_a_wait_interrupted_by_ctrl_c_is_finished_by_cancel() -> None:
    rec = Recorder(delay=30)
    clones = CloneQueue(rec.job, rec.connect, concurrency=2)
    for name in ("w1", "w2", "w3"):
        clones.submit(name, "worker")
    rec.wait_until_running(2)  # w1 and w2 are running, w3 is queued
    # Ctrl-C lands while the main thread is joining the first clone thread.
    main = threading.main_thread()
    interrupt = threading.Thread(target=interrupt_inside, args=(main, CloneQueue.wait))
    interrupt.start()
    with pytest.raises(KeyboardInterrupt):
        clones.wait()
    interrupt.join()
    assert clone_threads(), "the clones are still running after the interrupt"
    clones.cancel()
    assert clone_threads() == []
    assert rec.connections_opened == rec.connections_closed == 2


def test_the_gil_changes_hands_quickly_while_clone_threads_live() -> None:
    """From the first clone thread of any queue to the last one joined, then put back."""
    before = sys.getswitchinterval()
    assert before > CLONE_SWITCH_INTERVAL
    release = threading.Event()
    short, long = Recorder(delay=0.1), Recorder(delay=0, hold=release)
    first = CloneQueue(short.job, short.connect, 1)
    second = CloneQueue(long.job, long.connect, 1)
    first.submit("a", "worker")
    second.submit("b", "worker")
    seen = [sys.getswitchinterval()]
    try:
        first.wait()
        seen.append(sys.getswitchinterval())  # the second queue's thread still lives
    finally:
        release.set()
    second.wait()
    assert long.done == ["b"]
    assert seen == [CLONE_SWITCH_INTERVAL, CLONE_SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before


def test_a_switch_interval_set_meanwhile_is_left_alone() -> None:
    before = sys.getswitchinterval()
    recorder = Recorder(delay=0.1)
    clones = CloneQueue(recorder.job, recorder.connect, 1)
    clones.submit("a", "worker")
    try:
        sys.setswitchinterval(0.002)  # the project's own choice, while the clone runs
        clones.wait()
        assert sys.getswitchinterval() == 0.002
    finally:
        sys.setswitchinterval(before)
