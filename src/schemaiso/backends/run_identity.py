"""This run's identity (run id, main pid) and the marked schemas it creates.

Every schema schemaiso creates names the run and its main process in a marker,
so cleanup can tell a live run's schemas from a dead one's.
"""

from __future__ import annotations

import os
from typing import Any

from ..naming import marker, new_run_id, quote_ident, quote_literal

_RUN_ID: str | None = None
_RUN_PID: int | None = None


def run_id() -> str:
    """This process's run id, shared by every alias so one run's schemas group together."""
    global _RUN_ID, _RUN_PID
    if _RUN_ID is None:
        _RUN_ID = new_run_id()
        _RUN_PID = os.getpid()
    return _RUN_ID


def adopt(run: str, pid: int) -> None:
    """Make this process one of run ``run`` whose main process is ``pid``: a
    pytest-xdist worker, whose controller names the run for every worker."""
    global _RUN_ID, _RUN_PID
    _RUN_ID, _RUN_PID = run, pid


def run_pid() -> int:
    """The pid of the run's main process, which every marker names, also in workers:
    a worker exits before the run ends, and the next run's prune must not take its
    schema for an orphan while the run lives. A forked worker inherits the main
    process's value; a spawned one is the main process's child."""
    return _RUN_PID if _RUN_PID is not None else os.getppid()


def first_line(exc: BaseException) -> str:
    """A driver error's first line: the rest repeats it or guesses at causes."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def create_marked_schema(cursor: Any, schema: str, role: str, run: str, **extra: Any) -> None:
    """Create ``schema`` with the marker that proves it ours, in one round trip."""
    cursor.execute(
        "CREATE SCHEMA {0}; COMMENT ON SCHEMA {0} IS {1}".format(
            quote_ident(schema), quote_literal(marker(role, run, pid=run_pid(), **extra))
        )
    )
