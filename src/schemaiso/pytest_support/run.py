"""One run under pytest: its processes, their test databases, and its end.

Without xdist the run is the one pytest process. With pytest-xdist it is the
controller and its workers: the controller names the run (``run_identity``) for
every worker, each worker sets up lazily, at its first database test, through
pytest-django's ``django_db_setup`` and so through the creation mixin: the first
worker creates the test database and migrates the template, the others wait for
it and clone their own schemas. No worker drops anything: each reports what it
used, and the controller ends the run once every worker has gone
(``finish_run``), so a worker that sets up late never finds the database gone.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections

from .. import activation
from ..backends.creation import SchemaIsolationCreationMixin, hand_over, isolated_creations
from ..backends.state import RunReport, get_state, new_state
from ..conf import get_config
from ..errors import SchemaIsoError
from ..run_identity import run_id
from ..run_options import RunOptions
from .membership import finish_run, leave_run


def prepare_members(
    worker_id: str | None, worker_count: int, keep_failed_schemas: bool, *,
    snapshots: bool = True,
) -> None:
    """Before ``setup_databases``: make every alias's creation a member of the run
    and give the worker one test database name for all workers.

    pytest-django appends ``_<worker id>`` to each test database name (one database
    per worker); schemaiso wants the one database, so that suffix comes off again.
    """
    activation.install()
    hand_over(RunOptions.for_pytest(
        worker_id=worker_id, worker_count=worker_count, keep_failed=keep_failed_schemas,
        snapshots=snapshots,
    ))
    if not worker_id:
        return
    for alias, database in settings.DATABASES.items():
        test = database.get("TEST") or {}
        name = test.get("NAME")
        if not name:
            continue
        shared_name = without_worker_suffix(name, worker_id)
        if shared_name != name:
            test["NAME"] = shared_name
        elif worker_id in name and connections[alias].vendor == "postgresql":
            warnings.warn(
                f"schemaiso: DATABASES['{alias}']['TEST']['NAME'] is '{name}', which names "
                f"xdist worker {worker_id}: each worker then has a test database of its own "
                "and migrates it itself. Leave the worker id out of the name (a "
                "django_db_modify_db_settings fixture adds it?): schemaiso gives each "
                "worker a schema of one test database.",
                stacklevel=1,
            )


def setup_happened() -> bool:
    """Whether any isolated alias started a test database setup in this process."""
    return any(c.setup_started for c in isolated_creations(initialized_only=True))


def leave_all() -> list[RunReport]:
    """At a member's session end: leave what pytest-django did not tear down
    (``--reuse-db``), and return every alias's report for the run's end."""
    reports: list[RunReport] = []
    for creation in isolated_creations(initialized_only=True):
        state = creation.state
        if state is not None and not state["mirror"]:
            leave_run(creation)
        if creation.run_report is not None:
            reports.append(creation.run_report)
            creation.run_report = None
    return reports


def crash_reports(known: list[RunReport]) -> list[RunReport]:
    """Reports for aliases no worker reported on, when a worker died before it
    could: enough to drop what this run may have left in their test databases."""
    config = get_config()
    reported = {report["state"]["alias"] for report in known}
    reports: list[RunReport] = []
    activation.install()
    for creation in isolated_creations(initialized_only=False):
        alias = creation.connection.alias
        test = creation.connection.settings_dict.get("TEST") or {}
        if alias in reported or test.get("MIRROR") or get_state(creation.connection.settings_dict):
            continue
        reports.append(RunReport(
            state=new_state(alias, run_id(), keep_failed=False),
            test_database_name=creation._get_test_db_name(),  # type: ignore[attr-defined]
            template_stamp=None, reuses_spares=False,
            existing_database=config.in_existing_database(alias),
            migrated=False, worker=None, ready=False,
        ))
    return reports


def finish(
    reports: list[RunReport], keepdb: bool, verbosity: int, say: Callable[[str], None]
) -> None:
    """End the run: once per test database, from the reports of its members.
    What the creations log goes to ``say`` (pytest shows no stderr at this point)."""
    activation.install()
    done: set[tuple[str, str]] = set()
    for report in reports:
        alias = report["state"]["alias"]
        key = (alias, report["test_database_name"])
        if key in done:
            continue
        done.add(key)
        finish_run(connections[alias].creation, report, keepdb, verbosity, say)


def describe(reports: list[RunReport]) -> list[str]:
    """One line per test database: who migrated its template, which schemas ran tests."""
    lines = []
    by_database: dict[tuple[str, str], list[RunReport]] = {}
    for report in reports:
        by_database.setdefault((report["state"]["alias"], report["test_database_name"]), []).append(report)
    for (alias, database), members in sorted(by_database.items()):
        ready = [r for r in members if r["ready"]]
        failed = len(members) - len(ready)
        if not ready:
            lines.append(f"schemaiso: alias '{alias}': test database '{database}': setup "
                         f"failed in {failed} process(es); see their errors.")
            continue
        migrated = sorted(_member_name(r) for r in ready if r["migrated"])
        how = ("migrated by " + ", ".join(migrated)) if migrated else (
            "migrate skipped (kept template up to date)")
        schemas = sorted({str(r["state"]["schema"]) for r in ready})
        lines.append(
            f"schemaiso: alias '{alias}': test database '{database}', template "
            f"'{ready[0]['state']['template']}' {how}; {len(schemas)} schema(s) ran tests: "
            f"{', '.join(schemas)}" + (f"; setup failed in {failed} process(es)." if failed else ".")
        )
    return lines


def _member_name(report: RunReport) -> str:
    worker = report["worker"]
    return f"gw{worker - 1}" if worker is not None else "this process"


def gate_cursor(worker_id: str | None) -> Any:
    """A cursor for the serial gate, where the run's leases live: the server's
    maintenance database, or the existing database (SCHEMAISO['EXISTING_DATABASE'])."""
    activation.install()
    creations = isolated_creations(initialized_only=False)
    if not creations:
        raise SchemaIsoError(
            "schemaiso: serial tests under pytest-xdist need a PostgreSQL alias in "
            "DATABASES (the workers take turns through an advisory lock there)."
        )
    creation = next((c for c in creations if c.connection.alias == "default"), creations[0])
    return creation.run_cursor(_test_name(creation, worker_id))


def _test_name(creation: SchemaIsolationCreationMixin, worker_id: str | None) -> str:
    return without_worker_suffix(creation._get_test_db_name(), worker_id)  # type: ignore[attr-defined]


def without_worker_suffix(name: str, worker_id: str | None) -> str:
    """``name`` without the ``_<worker id>`` pytest-django appends to it per worker."""
    suffix = "_" + (worker_id or "")
    return name[: -len(suffix)] if worker_id and name.endswith(suffix) else name
