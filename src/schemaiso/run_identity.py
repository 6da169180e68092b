"""This run's identity: its run id and the pid of its main process.

Every schema schemaiso creates names both in its marker (markers.py), so cleanup
can tell a live run's schemas from a dead one's.
"""

from __future__ import annotations

import os

from .naming import new_run_id

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
