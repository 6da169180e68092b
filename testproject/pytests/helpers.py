"""Shared by the pytest-style tests: the schema a connection works in, and the
phase log of serialproof/tests.py (SCHEMAISO_PHASE_LOG), written from functions."""

import os
import time

from django.db import connections


def current_schema(alias="default"):
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


def is_worker_schema(schema):
    """A schema of schemaiso's making that tests may run in (never the template)."""
    return schema.startswith("schemaiso_") and schema.rsplit("_", 1)[-1][:1] in ("w", "m")


def phase_log():
    return os.environ.get("SCHEMAISO_PHASE_LOG")


def log(test_id, kind, event):
    if phase_log():
        line = f"{kind} {event} {test_id} {os.getpid()} {time.time()} {current_schema()}\n"
        with open(phase_log(), "a") as f:
            f.write(line)


def read_log():
    with open(phase_log()) as f:
        return [line.split() for line in f if line.strip()]


def parallel_step(test_id):
    log(test_id, "P", "start")
    time.sleep(0.2)
    log(test_id, "P", "end")


def serial_step(test_id):
    """Log a serial step and, with a phase log, check that it is alone: no
    parallel test in flight, no other busy session, nothing logged meanwhile."""
    log(test_id, "S", "start")
    if phase_log():
        in_flight = set()
        for kind, event, other, pid, *_ in read_log():
            if kind == "P":
                (in_flight.add if event == "start" else in_flight.discard)((other, pid))
        assert in_flight == set(), f"parallel tests still running: {in_flight}"
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, query FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend'"
                " AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
                " AND query NOT LIKE 'SELECT set_config(''TimeZone''%'"
                " AND query NOT LIKE 'SET search_path TO %'"
            )
            busy = cursor.fetchall()
        assert busy == [], f"other busy sessions: {busy}"
        time.sleep(0.2)
        lines = read_log()
        mine = ["S", "start", test_id, str(os.getpid())]
        starts = [i for i, line in enumerate(lines) if line[:4] == mine]
        assert starts, "own start line missing"
        assert lines[starts[-1] + 1:] == [], "others logged meanwhile"
    log(test_id, "S", "end")
