"""Run membership: a pytest process leaves its run, and the run's end.

Under the pytest plugin every process (each pytest-xdist worker, or pytest's only
process) is a member of one run (``RunOptions.membership``). A member's teardown
only leaves: it reports what it used and keeps every schema, because another
member may still be setting up. The controller ends the run once every member
has gone (``finish_run``), from their reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backends.alias_run import AliasRun
from ..backends.preflight import Preflight
from ..backends.provisioning import Provisioner
from ..backends.state import STATE_KEY, RunReport, close_with_pool
from ..backends.teardown import Teardown


def leave_run(creation: Any, old_database_name: str | None = None) -> None:
    """A member's teardown: close this process's connections and lease and leave
    what ``finish_run`` needs in ``creation.run_report``; the schemas stay."""
    run = creation.alias_run
    state = run.state()
    creation.cancel_clones()
    membership = run.options.membership
    creation.run_report = RunReport(
        state=dict(state),  # type: ignore[typeddict-item]
        test_database_name=run.test_database_name,
        template_stamp=run.template_stamp,
        reuses_spares=creation.provisioner.reuses_spares,
        existing_database=run.existing_database,
        migrated=not run.template_is_current,
        ready=state["role"] in ("main", "worker"),
        worker=membership.worker_number if membership else None,
    )
    run.close_lease()
    close_with_pool(creation.connection)
    creation.connection.settings_dict[STATE_KEY] = None
    creation.stock_destroy_test_db(old_database_name or run.old_database_name, 0, True)


def finish_run(
    creation: Any, report: RunReport, keepdb: bool, verbosity: int,
    log: Callable[[str], None],
) -> None:
    """End a run whose members have all left (the pytest plugin's last step):
    drop its test database, or, when it stays (``keepdb``, other runs, failed
    schemas kept), this run's schemas, or keep them as spares. What it says goes
    to ``log``."""
    sd = creation.connection.settings_dict
    old_database_name = sd["NAME"]
    name = report["test_database_name"]
    run = AliasRun(
        creation, log, name, verbosity=verbosity, keepdb=keepdb,
        existing_database=report["existing_database"], template_stamp=report["template_stamp"],
    )
    preflight = Preflight(run)
    provisioner = Provisioner(run, preflight)
    provisioner.spares_planned = report["reuses_spares"]
    lease = run.lease = preflight.open_lease()
    try:
        lease.acquire_setup("keeping its schemas" if keepdb else "dropping it")
        if not (run.existing_database or creation._database_exists(lease.cursor, name)):
            run.close_lease()
            return  # another run dropped it already
    except BaseException:
        run.close_lease()
        raise
    sd["NAME"] = name
    sd[STATE_KEY] = {**report["state"], "schema": None, "role": "main", "mirror": False}
    Teardown(run, preflight, provisioner).destroy(
        old_database_name, verbosity, keepdb, creation.stock_destroy_test_db
    )
