"""Telling live runs from dead ones, for ``manage.py schemaiso list|prune`` and the
automatic prune at the start of every run.

A schema's marker names the host and pid of the run that made it. On the same host
a run is dead when that pid is gone, or now belongs to a process that started after
the schema was made (the pid was reused). A run on another host cannot be checked
from here: only an explicit age limit (``prune --older-than``) ever touches it.
Templates, spares and a shared schema schemaiso made are never orphans:
``--keepdb`` reuses them.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from . import cleanup, markers

#: Liveness of a run as this machine can tell it.
LIVE, DEAD, ELSEWHERE = "live", "dead", "other host"
#: The status of schemas kept across runs on purpose, whatever became of their run.
KEPT = "kept"
#: Roles of schemas that outlive their run: ``--keepdb`` reuses them.
KEPT_ROLES = ("template", "spare", "shared")


@dataclass(frozen=True)
class MarkedSchema:
    """One schema with our marker, as ``list`` shows it."""

    name: str
    role: str
    run_id: str
    host: str
    pid: int | None
    created: float | None
    fingerprint: str
    size_bytes: int
    status: str
    #: Kept by ``--keep-failed-schemas``: tests failed in it.
    failed: bool = False

    @property
    def age_seconds(self) -> float | None:
        return None if self.created is None else max(0.0, time.time() - self.created)

    def is_orphan(self, older_than: float | None = None) -> bool:
        """Whether prune may drop it: a dead run's, or any non-template schema older than
        ``older_than`` seconds when that is given (for runs on other hosts)."""
        if self.role in KEPT_ROLES:
            return False
        if self.status == DEAD:
            return True
        age = self.age_seconds
        return older_than is not None and self.status != LIVE and age is not None and (
            age >= older_than
        )


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as proc_stat:
            boot = next(int(line.split()[1]) for line in proc_stat if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def run_status(host: Any, pid: Any, created: Any) -> str:
    """LIVE, DEAD or ELSEWHERE for the run that wrote a marker."""
    if host != socket.gethostname() or not isinstance(pid, int):
        return ELSEWHERE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return DEAD
    except PermissionError:
        pass  # someone else's process, but it exists
    started = _process_start(pid)
    if started is not None and isinstance(created, (int, float)) and started > created + 1:
        return DEAD  # the pid was reused by a process that started after the run
    return LIVE


def _sizes(conn: Any, schemas: list[str]) -> dict[str, int]:
    """Each schema's tables' total size on disk, in bytes."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 "
            "FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid "
            "AND c.relkind IN ('r', 'm', 'p') WHERE n.nspname = ANY(%s) GROUP BY 1",
            [schemas],
        )
        return {name: int(size) for name, size in cursor.fetchall()}


def list_schemas(conn: Any, *, with_sizes: bool = True) -> list[MarkedSchema]:
    """Every schema with our marker in the database ``conn`` is connected to.

    Sizes cost a ``pg_total_relation_size`` per relation of every marked schema
    (0.2 s with a 300-table template and four spares): only ``list`` shows them,
    so ``prune``, which runs at every setup, leaves them out (reported as 0).
    """
    marked = markers.marked_schemas(conn)
    sizes = _sizes(conn, list(marked)) if marked and with_sizes else {}
    found = []
    for name, payload in marked.items():
        fingerprint = payload.get("fingerprint")
        digest = ""
        if isinstance(fingerprint, dict):
            digest = str(fingerprint.get("settings", ""))[:8]
        pid = payload.get("pid")
        found.append(
            MarkedSchema(
                name=name,
                role=str(payload.get("role", "?")),
                run_id=str(payload.get("run", "?")),
                host=str(payload.get("host", "?")),
                pid=pid if isinstance(pid, int) else None,
                created=payload.get("created") if isinstance(payload.get("created"), (int, float)) else None,
                fingerprint=digest,
                size_bytes=sizes.get(name, 0),
                failed=bool(payload.get("failed")),
                status=(
                    KEPT if payload.get("role") in KEPT_ROLES
                    else run_status(payload.get("host"), pid, payload.get("created"))
                ),
            )
        )
    return found


def prune(conn: Any, *, older_than: float | None = None, dry_run: bool = False) -> list[str]:
    """Drop the orphan schemas of the database ``conn`` is connected to; return their names.

    Only schemas whose marker proves they are ours, and never one of a live run on
    this host. ``dry_run`` only returns what would be dropped.
    """
    orphans = [s.name for s in list_schemas(conn, with_sizes=False) if s.is_orphan(older_than)]
    if dry_run or not orphans:
        return orphans
    return cleanup.drop_schemas(conn, orphans)
