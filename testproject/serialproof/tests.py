"""Proof that @tag("serial") tests run after the parallel phase, alone.

When SCHEMAISO_PHASE_LOG names a file, every test appends
"<P|S> <start|end> <test id> <pid> <time> <schema>" lines to it (P: parallel, S:
serial). Serial tests then assert that no parallel test is in flight, that no
other session is busy in this database, and that nothing else logged while
they ran. Without the variable nothing is logged or asserted about ordering.
The stock DiscoverRunner with --parallel and the variable set fails here, by
design: it has no serial phase.
"""

import os
import time

from django.db import connection
from django.test import TestCase, tag
from testproject.testing import TransactionTestCase


def phase_log():
    return os.environ.get("SCHEMAISO_PHASE_LOG")


def current_schema():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


def log(test, kind, event):
    if phase_log():
        schema = current_schema()
        line = f"{kind} {event} {test.id()} {os.getpid()} {time.time()} {schema}\n"
        with open(phase_log(), "a") as f:
            f.write(line)  # one append-mode write per line


def read_log():
    with open(phase_log()) as f:
        return [line.split() for line in f if line.strip()]


class PhaseLogMixin:
    def run_parallel_step(self):
        log(self, "P", "start")
        time.sleep(0.2)
        log(self, "P", "end")

    def run_serial_step(self):
        log(self, "S", "start")
        if phase_log():
            self.assertNoParallelTestInFlight()
            self.assertNoOtherBusySession()
            time.sleep(0.2)
            self.assertNothingLoggedSinceStart()
        log(self, "S", "end")

    def assertNoParallelTestInFlight(self):
        in_flight = set()
        for kind, event, test_id, pid, *_ in read_log():
            if kind == "P":
                (in_flight.add if event == "start" else in_flight.discard)(
                    (test_id, pid)
                )
        self.assertEqual(in_flight, set(), "parallel tests still running")

    def assertNoOtherBusySession(self):
        # With OPTIONS["pool"], this process's own pool opens its spare
        # connections in the background; configuring them (time zone,
        # search_path) is connection setup, not another test at work.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, query FROM pg_stat_activity"
                " WHERE datname = current_database()"
                " AND backend_type = 'client backend'"
                " AND pid <> pg_backend_pid()"
                " AND state IN ('active', 'idle in transaction')"
                " AND query NOT LIKE 'SELECT set_config(''TimeZone''%'"
                " AND query NOT LIKE 'SET search_path TO %'"
            )
            self.assertEqual(cursor.fetchall(), [], "other busy sessions")

    def assertNothingLoggedSinceStart(self):
        lines = read_log()
        mine = ["S", "start", self.id(), str(os.getpid())]
        starts = [i for i, line in enumerate(lines) if line[:4] == mine]
        self.assertTrue(starts, "own start line missing")
        self.assertEqual(lines[starts[-1] + 1 :], [], "others logged meanwhile")


class ParallelOne(PhaseLogMixin, TestCase):
    def test_a(self):
        self.run_parallel_step()

    def test_b(self):
        self.run_parallel_step()


class ParallelTwo(PhaseLogMixin, TestCase):
    def test_a(self):
        self.run_parallel_step()

    def test_b(self):
        self.run_parallel_step()


class ParallelThree(PhaseLogMixin, TransactionTestCase):
    def test_a(self):
        self.run_parallel_step()

    def test_b(self):
        self.run_parallel_step()


class ParallelFour(PhaseLogMixin, TransactionTestCase):
    def test_a(self):
        self.run_parallel_step()

    def test_b(self):
        self.run_parallel_step()


@tag("serial")
class SerialClass(PhaseLogMixin, TransactionTestCase):
    """Tagged at class level: both tests run in the serial phase."""

    def test_a(self):
        self.run_serial_step()

    def test_b(self):
        self.run_serial_step()


class MixedClass(PhaseLogMixin, TestCase):
    """Only one method is tagged serial; the other runs in parallel."""

    @tag("serial")
    def test_serial_method(self):
        self.run_serial_step()

    def test_parallel_method(self):
        self.run_parallel_step()
