"""Serial tests under pytest: last in every process, and alone across xdist workers.

Every process sorts its serial tests after the others. Under pytest-xdist, whose
default ``load`` scheduling hands tests out in collection order, a worker reaches
its serial tests only once every other test has been handed out; to make them
really alone, the workers of one run share a *gate*, an advisory lock on the
server: each worker holds it shared from the end of its collection until it
reaches its serial tests or ends, and runs serial tests only while it holds it
exclusively. A worker that holds the gate shared only ever waits for its next
test or its shutdown, which the scheduler always sends, so the gate cannot
deadlock; a worker that dies loses its session and so its lock.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from ..lease import poll_until, run_key
from ..serial_tags import django_tags

#: The first key of the gate's advisory lock (after lease.py's "si" keys).
SERIAL_GATE_LOCK = 0x7369_0005


def is_serial_item(item: Any, serial_tags: frozenset[str]) -> bool:
    """Whether a collected test carries a serial marker, or a serial Django ``@tag``
    (pytest-django turns tags into markers; older versions did not for methods)."""
    if any(mark.name in serial_tags for mark in item.iter_markers()):
        return True
    cls = getattr(item, "cls", None)
    if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
        return False
    return bool(django_tags(cls, getattr(item, "obj", None)) & serial_tags)


def serial_last(items: list[Any], serial_tags: frozenset[str]) -> list[Any]:
    """The serial items, moved (in their order) after all the others, in place."""
    serial = [item for item in items if is_serial_item(item, serial_tags)]
    if serial:
        chosen = set(map(id, serial))
        items[:] = [item for item in items if id(item) not in chosen] + serial
    return serial


class SerialGate:
    """The run's gate (see the module docstring), in a session of its own on the
    server (``open_cursor``: a cursor factory outside the test database)."""

    def __init__(
        self, open_cursor: Callable[[], AbstractContextManager[Any]], run_id: str,
        unblocked: Callable[[], AbstractContextManager[Any]],
    ) -> None:
        self._key = run_key(run_id)
        self._unblocked = unblocked
        self._stack = ExitStack()
        with unblocked():
            self._cursor: Any = self._stack.enter_context(open_cursor())
        self.exclusive = False
        self._shared = False

    def _scalar(self, sql: str) -> Any:
        with self._unblocked():
            self._cursor.execute(sql, [SERIAL_GATE_LOCK, self._key])
            return self._cursor.fetchone()[0]

    def share(self) -> None:
        """Hold the gate shared: no serial test of another worker starts meanwhile."""
        if self.exclusive:
            self._scalar("SELECT pg_advisory_unlock(%s, %s)")
            self.exclusive = False
        if not self._shared:
            self._scalar("SELECT pg_advisory_lock_shared(%s, %s)")
            self._shared = True

    def take_exclusive(self, waiting: Callable[[], None] | None = None) -> float:
        """Wait until every other worker is done with its other tests and serial
        tests, then hold the gate alone; returns the seconds waited."""
        if self.exclusive:
            return 0.0
        if self._shared:
            self._scalar("SELECT pg_advisory_unlock_shared(%s, %s)")
            self._shared = False
        waited = poll_until(
            lambda: bool(self._scalar("SELECT pg_try_advisory_lock(%s, %s)")),
            waiting or (lambda: None),
        )
        self.exclusive = True
        return waited

    def close(self) -> None:
        """End the session, which releases the gate."""
        self.exclusive = self._shared = False
        with self._unblocked():
            self._stack.close()

