"""The DatabaseCreation mixin: Django's test database seams, on schemas.

It overrides Django's own seams (``create_test_db``, ``_create_test_db``,
``_clone_test_db``, ``get_test_db_clone_settings``, ``setup_worker_connection``,
``set_as_test_mirror``, ``destroy_test_db``) so that the stock ``setup_databases``
and parallel runner drive it: one test database, ``migrate`` into a template
schema, one schema cloned from it per worker, and the test database dropped
(schemas with it) at the end. Each seam is short and hands the work to a part
with one job: preflight.py (connections, privilege checks), preparation.py (the
shared schema, dead runs' leftovers), template.py (which template; skipping
``migrate``), provisioning.py (schemas for the main process and workers),
teardown.py (what goes and what stays). What they share is an :class:`AliasRun`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.db import DatabaseError as DjangoDatabaseError
from django.db import connections

from .. import fingerprint, markers
from ..errors import first_line
from ..run_identity import run_id
from ..run_options import RunOptions
from .alias_run import AliasRun
from .caller_warnings import warnings_at_caller
from .preflight import Preflight
from .preparation import DatabasePreparation
from .provisioning import Provisioner
from .snapshots import TemplateSnapshots
from .state import STATE_KEY, RunReport, SchemaState, get_state, names_of, new_state, use_schema
from .teardown import Teardown
from .template import TemplateChoice, migrations_skipped_when

_INHERITED_POOLS: list[Any] = []


class SchemaIsolationCreationMixin:
    """Creation on top of any PostgreSQL-family ``DatabaseCreation``."""

    connection: Any
    log: Any

    #: What the runner or the pytest plugin told this alias (:func:`hand_over`);
    #: the default is what Django's own runner gets.
    run_options: RunOptions = RunOptions()
    #: What a run member's teardown left for the end of its run (None before it).
    run_report: RunReport | None = None
    _run: AliasRun | None = None
    _provisioner: Provisioner | None = None
    _snapshots: TemplateSnapshots | None = None
    #: True once our ``_create_test_db`` ran in this ``create_test_db`` call.
    _set_up_here = False

    @property
    def state(self) -> SchemaState | None:
        return get_state(self.connection.settings_dict)

    @property
    def alias_run(self) -> AliasRun:
        """This alias's run in this process; in a process that set nothing up (a
        spawned worker), one on the test database its settings name."""
        if self._run is None:
            self._run = AliasRun(self, self.log,
                                 self.connection.settings_dict["NAME"])
        return self._run

    @property
    def setup_started(self) -> bool:
        """Whether our setup of a test database for this alias began in this process."""
        return self._run is not None and self._run.old_database_name is not None

    @property
    def snapshots(self) -> TemplateSnapshots:
        """Snapshots of this run's new template (restore, write)."""
        if self._snapshots is None or self._snapshots.run is not self.alias_run:
            self._snapshots = TemplateSnapshots(self.alias_run, self.provisioner)
        return self._snapshots

    @property
    def provisioner(self) -> Provisioner:
        if self._provisioner is None or self._provisioner.run is not self.alias_run:
            self._provisioner = Provisioner(self.alias_run, Preflight(self.alias_run))
        return self._provisioner

    # -- creating the test database and the template --------------------------

    @warnings_at_caller
    def create_test_db(self, *args: Any, **kwargs: Any) -> str:
        """Django's ``create_test_db``, with ``migrate`` going into the template (or
        skipped for a current one); after it, the template is finished and this
        process moves to its own schema. Only when our ``_create_test_db`` ran:
        a caller that replaces it (Django's own creation tests mock it) gets
        exactly what the stock method does."""
        self._set_up_here = False
        try:
            with migrations_skipped_when(self._skips_migrate, self._time_migrate,
                                         self._before_migrate):
                test_database_name: str = super().create_test_db(*args, **kwargs)  # type: ignore[misc]
            if self._set_up_here:
                self._finish_template()
        except (DjangoDatabaseError, self.connection.Database.DatabaseError) as exc:
            self._close_lease()
            preflight = Preflight(self.alias_run)
            if not self._set_up_here or preflight.server_answers():
                raise
            raise preflight.lost_server(exc) from exc
        except BaseException:
            self._close_lease()
            raise
        if self._set_up_here:
            self._enter_own_schema()
        return test_database_name

    def _set_up_for(self, alias: str) -> bool:
        """Whether ``alias`` is this creation's, and our ``_create_test_db`` set it up."""
        return self._set_up_here and alias == self.connection.alias

    def _skips_migrate(self, alias: str) -> bool:
        return self._set_up_for(alias) and (
            self.alias_run.template_is_current or self.snapshots.skips_migrate
        )

    def _before_migrate(self, alias: str) -> None:
        """A snapshot may stand in for this ``migrate`` into a new template."""
        if self._set_up_for(alias):
            self.snapshots.before_migrate()

    def _time_migrate(self, alias: str) -> AbstractContextManager[Any]:
        """``--timing``: the ``migrate`` into this alias's template."""
        if not self._set_up_for(alias):
            return nullcontext()
        template = self.alias_run.state()["template"]
        return self.run_options.timed(f"    Migrating template '{template}' of '{alias}'")

    def _create_test_db(self, verbosity: int, autoclobber: bool, keepdb: bool = False) -> str:
        run = self._begin_setup(verbosity, keepdb)
        preflight = Preflight(run)
        if run.existing_database:
            preflight.check_existing_database()
        lease = run.lease = preflight.open_lease()
        if not run.existing_database:
            preflight.check_may_create_database(lease.cursor)
        lease.acquire_setup("choosing a template" if run.existing_database else "creating it")
        run.other_runs = lease.other_runs()
        if run.other_runs and verbosity >= 1:
            self.log(
                f"schemaiso: alias '{run.alias}': test database '{run.test_database_name}' "
                f"is in use by {run.other_runs} other run(s); sharing it (this run adds "
                "and drops only its own schemas)."
            )
        if not run.existing_database:
            # Django drops an existing test database unless told to keep it; a kept
            # one that exists it only looks up, on a connection of its own: ours will do.
            keep = keepdb or bool(run.other_runs) or self._run_made_it(preflight)
            if not (keep and self._database_exists(lease.cursor, run.test_database_name)):  # type: ignore[attr-defined]
                super()._create_test_db(verbosity, autoclobber, keep)  # type: ignore[misc]
        lease.join()
        DatabasePreparation(run, preflight, self.provisioner).prepare()
        return run.test_database_name

    def _begin_setup(self, verbosity: int, keepdb: bool) -> AliasRun:
        """This run of the alias: its facts, and its state (role "template")."""
        self._set_up_here = True
        self.run_report = None
        alias, sd = self.connection.alias, self.connection.settings_dict
        self._run = AliasRun.start(
            self, self.log, self._get_test_db_name(),  # type: ignore[attr-defined]
            old_database_name=sd["NAME"], verbosity=verbosity, keepdb=keepdb,
            fingerprint=fingerprint.compute(alias, sd),
        )
        sd[STATE_KEY] = new_state(alias, run_id(), keep_failed=self.run_options.keep_failed)
        return self._run

    def _run_made_it(self, preflight: Preflight) -> bool:
        """Whether another process of this run already made the test database and
        its template (pytest-xdist workers): then it is this run's, not a leftover."""
        run = preflight.run
        if not (run.member and not run.keepdb and not run.other_runs
                and not run.existing_database):
            return False
        if not self._database_exists(run.lease.cursor, run.test_database_name):  # type: ignore[attr-defined, union-attr]
            return False
        with preflight.test_db_cursor() as cursor:
            return TemplateChoice(run).sibling_template(cursor, run.state()) is not None

    def _finish_template(self) -> None:
        """After ``migrate``: extensions out of a new template, its fingerprint, and
        a snapshot of it."""
        run = self.alias_run
        if not run.template_is_current:
            choice = TemplateChoice(run)
            choice.move_template_extensions()
            if run.template_stamp is not None or run.member:
                choice.record_fingerprint()
            self.snapshots.after_migrate()

    def _enter_own_schema(self) -> None:
        """Release the setup locks, then move to the main schema now, or queue it."""
        lease = self.alias_run.lease
        if lease is not None:
            lease.release_build()
            lease.release_setup()
        if not self.run_options.background_clones:
            self.use_main_schema()
        elif self.run_options.main_schema_early:
            self.provisioner.submit(names_of(self.alias_run.state()).main, "main")

    def _close_lease(self) -> None:
        if self._run is not None:
            self._run.close_lease()

    def run_cursor(self, test_database_name: str) -> Any:
        """A cursor where the leases of runs on ``test_database_name`` live (for
        locks that a run's processes share, like the pytest plugin's serial gate)."""
        run = AliasRun.start(self, self.log, test_database_name)
        return Preflight(run).server_cursor()

    # -- schemas for the main process and workers -------------------------------

    def use_main_schema(self) -> None:
        """Move this process off the template into its own schema (cloned once): the
        main schema, or a run member's worker schema."""
        state = self.alias_run.state()
        membership = self.run_options.membership
        number = membership.worker_number if membership else None
        names = names_of(state)
        schema, role = (names.main, "main") if number is None else (names.worker(number), "worker")
        if (state["role"] == role and state["schema"] == schema) or state["mirror"]:
            return
        provisioner = self.provisioner
        provisioner.wait_for_clones()
        if not provisioner.schema_exists(schema):
            with self.run_options.timed(f"  Cloning schema '{schema}' of '{self.connection.alias}'"):
                provisioner.create_schema(schema, role)
        use_schema(self.connection, schema, role)

    def follow(self, primary_settings_dict: dict[str, Any]) -> None:
        """Make this mirror alias use the same schema as its primary."""
        primary = get_state(primary_settings_dict)
        if primary is not None:
            self.connection.settings_dict[STATE_KEY] = {**primary, "mirror": True}
            self.connection.close()

    def _clone_test_db(self, suffix: str, verbosity: int, keepdb: bool = False) -> None:
        state = self.alias_run.state()
        schema = names_of(state).worker(int(suffix))
        provisioner = self.provisioner
        if not self.run_options.background_clones:
            if verbosity >= 2:
                self.log(f"schemaiso: cloning schema '{state['template']}' into '{schema}'")
            provisioner.create_schema(schema, "worker")
            return
        if verbosity >= 2:
            how = (
                f"resetting a kept spare of template '{state['template']}' into '{schema}', "
                "or cloning it" if self.alias_run.template_is_current and provisioner.reuses_spares
                else f"cloning schema '{state['template']}' into '{schema}'"
            )
            self.log(
                f"schemaiso: alias '{state['alias']}': {how} (in the background, "
                f"{provisioner.concurrency} at a time)"
            )
        provisioner.submit(schema, "worker")  # at most once: a warm run queued it early

    def get_test_db_clone_settings(self, suffix: str) -> dict[str, Any]:
        state = self.state
        if state is None:
            return super().get_test_db_clone_settings(suffix)  # type: ignore[misc, no-any-return]
        worker = names_of(state).worker(int(suffix))
        # Same database: a worker differs from the others only by its schema.
        return {**self.connection.settings_dict, STATE_KEY: {**state, "schema": worker, "role": "worker"}}

    def setup_worker_connection(self, _worker_id: int) -> None:
        self._forget_inherited_pool()
        super().setup_worker_connection(_worker_id)  # type: ignore[misc]
        state = self.state
        if state is None or state["mirror"] or state["schema"] is None:
            return
        # Django numbers workers with a counter that keeps growing when the pool
        # replaces a worker (tickets #27734, #32769): clone the schema it asks for.
        if not self.provisioner.schema_exists(state["schema"]):
            self.provisioner.create_schema(state["schema"], "worker")

    def _forget_inherited_pool(self) -> None:
        """Drop a pool a forked worker inherited, without closing the parent's sockets.

        Its threads did not survive the fork, so the first ``getconn()`` would wait
        forever. Closing it would end the parent's sessions, so it is only set aside
        (kept referenced, never garbage collected in this process).
        """
        pools = getattr(self.connection, "_connection_pools", None)
        if pools and self.connection.alias in pools:
            _INHERITED_POOLS.append(pools.pop(self.connection.alias))

    def set_as_test_mirror(self, primary_settings_dict: dict[str, Any]) -> None:
        super().set_as_test_mirror(primary_settings_dict)  # type: ignore[misc]
        self.follow(primary_settings_dict)

    def wait_for_clones(self) -> None:
        """Block until this alias's background clones are done; raise the first failure."""
        if self._provisioner is not None:
            self._provisioner.wait_for_clones()

    def cancel_clones(self) -> None:
        """Stop this alias's background clones (teardown after a failure or Ctrl-C)."""
        if self._provisioner is not None:
            self._provisioner.cancel_clones()

    # -- teardown -----------------------------------------------------------------

    def destroy_test_db(
        self,
        old_database_name: str | None = None,
        verbosity: int = 1,
        keepdb: bool = False,
        suffix: str | None = None,
    ) -> None:
        state = self.state
        if state is None or state["mirror"]:
            return self.stock_destroy_test_db(old_database_name, verbosity, keepdb, suffix)
        if self.run_options.membership is not None and suffix is None:
            from ..pytest_support.membership import leave_run

            leave_run(self, old_database_name)
            return None
        self.cancel_clones()
        if suffix is not None:
            # A worker's schema lives in the test database: it goes when the database
            # goes, or with this run's other schemas below when the database stays.
            self.connection.close()
            return None
        run = self.alias_run
        Teardown(run, Preflight(run), self.provisioner).destroy(
            old_database_name, verbosity, keepdb, self.stock_destroy_test_db
        )
        return None

    def stock_destroy_test_db(
        self, old_database_name: str | None, verbosity: int, keepdb: bool,
        suffix: str | None = None,
    ) -> None:
        """Django's own ``destroy_test_db`` (of the project's creation class)."""
        super().destroy_test_db(old_database_name, verbosity, keepdb, suffix)  # type: ignore[misc]

    def mark_failed(self) -> None:
        """Mark this process's schema as one where tests failed, for teardown to keep
        (``--keep-failed-schemas``). Never fails the run: the mark is a convenience."""
        state = self.state
        if state is None or state["mirror"] or not state.get("keep_failed") or not state["schema"]:
            return
        try:
            with self.connection.cursor() as cursor:
                markers.mark_failed(cursor, state["schema"])
        except (DjangoDatabaseError, self.connection.Database.Error) as exc:
            self.log(f"schemaiso: warning: could not mark schema '{state['schema']}' as "
                     f"failed: {first_line(exc)}")


def isolated_creations(
    initialized_only: bool = True, set_up_only: bool = False
) -> list[SchemaIsolationCreationMixin]:
    """The creation of every schemaiso alias: of the connections this thread has
    opened, or (``initialized_only=False``) of every alias in DATABASES; with
    ``set_up_only``, of those whose test schemas exist (mirrors included)."""
    return [
        c.creation
        for c in connections.all(initialized_only=initialized_only)
        if isinstance(c.creation, SchemaIsolationCreationMixin)
        and (not set_up_only or c.creation.state is not None)
    ]


def hand_over(options: RunOptions) -> None:
    """Give every schemaiso alias this run's options, once, before setup."""
    for creation in isolated_creations(initialized_only=False):
        creation.run_options = options


def wait_for_clones() -> None:
    """Wait for every alias's background clones; the first failure is raised."""
    for creation in isolated_creations():
        creation.wait_for_clones()


def mark_failed_schemas() -> None:
    """Mark the schemas this process's tests used as failed (``--keep-failed-schemas``)."""
    for creation in isolated_creations():
        creation.mark_failed()


def cancel_clones() -> None:
    """Stop every alias's background clones and close their connections."""
    for creation in isolated_creations():
        creation.cancel_clones()
