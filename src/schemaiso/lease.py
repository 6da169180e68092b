"""Runs that share one test database, kept out of each other's way by advisory locks.

Two CI jobs or two developers often run the same suite against the same server at
once, so they ask for the same test database. Every run holds a *shared* "in use"
lock on that database's key for as long as it uses the database, and takes the
*exclusive* "setup" lock of the same key for each decision that could hurt another
run: creating or dropping the test database, and building or dropping the shared
template. Under the setup lock it counts the other holders of the "in use" lock,
on this host or any other. A run that migrates the shared template holds the
"build" lock until ``migrate`` has finished, but not the setup lock: a run that
would reuse that template waits for the build, any other run goes ahead.

The locks live in a session of their own on the server's maintenance database
(where Django's ``_nodb_cursor`` connects), never in the test database: that
session must not keep ``DROP DATABASE`` from working. A run that crashes or is
killed loses its session and so both locks; nothing is ever left locked. Inside
an existing database (``SCHEMAISO['EXISTING_DATABASE']``), which is never dropped,
the session is on that database itself.

One run may be several processes (pytest-xdist workers), each with a lease of its
own: every lease also holds a shared "run" lock on its run id's key, so that a
process never counts its own run's other processes as other runs.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

#: The first key of our advisory locks ("si" + 1/2), so they never meet an
#: application's own single-key advisory locks or each other.
SETUP_LOCK = 0x7369_0001
IN_USE_LOCK = 0x7369_0002
BUILD_LOCK = 0x7369_0003
#: Held shared on the run id's key by every lease of one run (see the module docstring).
RUN_LOCK = 0x7369_0004
#: Held on the run id's key by the process of a run that migrates the run's
#: template, until ``migrate`` ends: the run's other processes wait for it.
RUN_BUILD_LOCK = 0x7369_0006
#: How often a run waiting for the setup lock asks again (an interruptible wait,
#: with either driver, instead of a blocking pg_advisory_lock).
POLL_SECONDS = 0.2


def poll_until(attempt: Callable[[], bool], waiting: Callable[[], None]) -> float:
    """Call ``attempt`` every POLL_SECONDS until it succeeds, and ``waiting`` once
    before the first pause; returns the seconds waited. Polling keeps the wait
    interruptible (Ctrl-C) with either driver, unlike a blocking ``pg_advisory_lock``."""
    started = time.monotonic()
    told = False
    while not attempt():
        if not told:
            waiting()
            told = True
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def database_key(test_database_name: str) -> int:
    """The second lock key: a stable, non-negative 31-bit hash of the database name."""
    return int.from_bytes(hashlib.sha1(test_database_name.encode()).digest()[:4], "big") >> 1


def run_key(run_id: str) -> int:
    """The second key of a run's "run" lock (the same hash, of the run id)."""
    return database_key("run:" + run_id)


class RunLease:
    """This run's claim on one test database: its "in use" lock and the setup lock.

    ``open_cursor`` is a context manager factory for a cursor on the maintenance
    database (``creation._nodb_cursor``); the lease keeps it open until ``close``.
    """

    def __init__(
        self,
        open_cursor: Callable[[], AbstractContextManager[Any]],
        test_database_name: str,
        log: Callable[[str], None],
        run_id: str = "",
    ) -> None:
        self.test_database_name = test_database_name
        self.key = database_key(test_database_name)
        self.run_key = run_key(run_id)
        self._log = log
        self._stack = ExitStack()
        self._cursor: Any = self._stack.enter_context(open_cursor())
        self.holds_setup = False
        self.in_use = False
        self.holds_build = False
        self.holds_run_build = False

    @property
    def cursor(self) -> Any:
        """The lease's cursor on the maintenance database, for setup's other queries."""
        return self._cursor

    def _scalar(self, sql: str, params: list[Any]) -> Any:
        self._cursor.execute(sql, params)
        return self._cursor.fetchone()[0]

    def _try_lock(self, lock: int, key: int | None = None) -> bool:
        return bool(self._scalar("SELECT pg_try_advisory_lock(%s, %s)",
                                 [lock, self.key if key is None else key]))

    def _unlock(self, lock: int, key: int | None = None) -> None:
        self._scalar("SELECT pg_advisory_unlock(%s, %s)", [lock, self.key if key is None else key])

    def _wait_for(self, lock: int, message: str, key: int | None = None) -> None:
        """Take ``lock``, polling, and say ``message`` once if it has to wait."""
        poll_until(lambda: self._try_lock(lock, key), lambda: self._log(message))

    def _taken_elsewhere(self, lock: int, key: int | None = None) -> bool:
        """Whether another session holds ``lock`` now (asked by taking and releasing it)."""
        if not self._try_lock(lock, key):
            return True
        self._unlock(lock, key)
        return False

    def _wait_until_free(self, lock: int, message: str, key: int | None = None) -> None:
        """Wait, without the setup lock, until nobody holds ``lock``."""
        self.release_setup()
        self._wait_for(lock, message, key)
        self._unlock(lock, key)

    def acquire_setup(self, why: str) -> None:
        """Take the exclusive setup lock, saying once what we wait for when another
        run holds it (it is creating or dropping the database, or choosing a template)."""
        if not self.holds_setup:
            self._wait_for(
                SETUP_LOCK,
                f"schemaiso: waiting for another run (or process of this run) to finish "
                f"setting up or tearing down "
                f"test database '{self.test_database_name}' before {why}...",
            )
            self.holds_setup = True

    def release_setup(self) -> None:
        if self.holds_setup:
            self._unlock(SETUP_LOCK)
            self.holds_setup = False

    def hold_build(self) -> None:
        """Mark the shared template as being migrated by this run (setup lock held)."""
        if not self.holds_build:
            self.holds_build = self._try_lock(BUILD_LOCK)

    def hold_run_build(self) -> None:
        """Mark this run's template as being migrated by this process (setup lock held)."""
        if not self.holds_run_build:
            self.holds_run_build = self._try_lock(RUN_BUILD_LOCK, self.run_key)

    def release_build(self) -> None:
        if self.holds_build:
            self._unlock(BUILD_LOCK)
            self.holds_build = False
        if self.holds_run_build:
            self._unlock(RUN_BUILD_LOCK, self.run_key)
            self.holds_run_build = False

    def run_build_in_progress(self) -> bool:
        """Whether another process of this run is migrating the run's template."""
        return not self.holds_run_build and self._taken_elsewhere(RUN_BUILD_LOCK, self.run_key)

    def wait_for_run_build(self, template: str) -> None:
        """Wait, without the setup lock, until this run's ``template`` is migrated."""
        self._wait_until_free(
            RUN_BUILD_LOCK,
            f"schemaiso: waiting for another process of this run to finish migrating "
            f"template '{template}' in test database '{self.test_database_name}'...",
            self.run_key,
        )

    def build_in_progress(self) -> bool:
        """Whether a live run is migrating the shared template right now."""
        return not self.holds_build and self._taken_elsewhere(BUILD_LOCK)

    def wait_for_build(self, template: str) -> None:
        """Wait, without the setup lock, until the run migrating ``template`` is done."""
        self._wait_until_free(
            BUILD_LOCK,
            f"schemaiso: waiting for another run to finish migrating template '{template}' "
            f"in test database '{self.test_database_name}', to reuse it...",
        )

    def join(self) -> None:
        """Mark the test database as used by this run until ``leave``."""
        if not self.in_use:
            self._scalar(
                "SELECT pg_advisory_lock_shared(%s, %s), pg_advisory_lock_shared(%s, %s)",
                [RUN_LOCK, self.run_key, IN_USE_LOCK, self.key],
            )
            self.in_use = True

    def leave(self) -> None:
        if self.in_use:
            self._scalar(
                "SELECT pg_advisory_unlock_shared(%s, %s), pg_advisory_unlock_shared(%s, %s)",
                [IN_USE_LOCK, self.key, RUN_LOCK, self.run_key],
            )
            self.in_use = False

    def other_runs(self) -> int:
        """How many sessions of other runs, from any host, hold the "in use" lock now
        (this run's other processes, which also hold its "run" lock, do not count)."""
        return int(
            self._scalar(
                "WITH here AS (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "SELECT count(*) FROM pg_locks u WHERE u.locktype = 'advisory' AND u.granted "
                "AND u.database = (SELECT oid FROM here) "
                "AND u.classid = %s::int8::oid AND u.objid = %s::int8::oid AND u.objsubid = 2 "
                "AND u.pid <> pg_backend_pid() AND NOT EXISTS ("
                " SELECT 1 FROM pg_locks r WHERE r.locktype = 'advisory' AND r.granted"
                " AND r.pid = u.pid AND r.database = u.database"
                " AND r.classid = %s::int8::oid AND r.objid = %s::int8::oid AND r.objsubid = 2)",
                [IN_USE_LOCK, self.key, RUN_LOCK, self.run_key],
            )
        )

    def close(self) -> None:
        """End the session, which releases whatever it still holds."""
        self.holds_setup = self.in_use = self.holds_build = self.holds_run_build = False
        self._stack.close()
