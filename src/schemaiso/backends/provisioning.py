"""Giving the main process and every worker a schema like the template.

A schema is cloned from the template's clone plan (read once per process, or
from the plan cache while a ``--keepdb`` template stays the same), or, with
``--keepdb``, a spare kept by an earlier run is claimed and reset. Under
schemaiso's runner the clones run in background threads (clone_queue.py) while
the main process finishes its setup.
"""

from __future__ import annotations

import time
from typing import Any

from .. import clone, markers, plan_cache, spares
from ..clone_queue import CloneQueue, PreparedSchema, default_concurrency, describe_prepared
from ..conf import get_config
from ..errors import SchemaIsoError
from .alias_run import AliasRun
from .preflight import Preflight


class Provisioner:
    """One alias's schemas for the main process and the workers, in this process."""

    def __init__(self, run: AliasRun, preflight: Preflight) -> None:
        self.run = run
        self.preflight = preflight
        self.clone_plan: clone.ClonePlan | None = None
        #: The template's structure, to tell a spare still like it (``--keepdb``).
        self.template_signature = ""
        #: At the end of a pytest run: whether its members could keep their
        #: schemas as spares (their reports say; the plan was theirs).
        self.spares_planned: bool | None = None
        self._clones: CloneQueue | None = None
        #: The background queue's schemas done since ``wait_for_clones`` last reported.
        self._prepared: list[PreparedSchema] = []

    def plan(self, raw: Any = None) -> clone.ClonePlan:
        """The template's clone script, read once after ``migrate``; with ``--keepdb``,
        from the plan cache while the kept template is the same one.

        ``raw`` is a connection to the test database (default: the alias's own,
        once Django has switched it there)."""
        state = self.run.state()
        if self.clone_plan is None or self.clone_plan.template != state["template"]:
            key = self._plan_key() if self.run.keepdb else None
            cached = plan_cache.load(key) if key else None
            if cached is not None:
                plan, self.template_signature = cached
            else:
                raw = raw or self.run.raw_connection()
                plan = clone.read_template(raw, state["template"], state["shared"])
                if self.run.keepdb:
                    self.template_signature = clone.structure_signature(raw, state["template"])
                if key:
                    plan_cache.store(key, plan, self.template_signature)
            for warning in plan.warnings:
                self.run.log(f"schemaiso: warning: {warning}")
            self.clone_plan = plan
        return self.clone_plan

    def adopt_plan(self, plan: clone.ClonePlan, signature: str) -> None:
        """Use ``plan`` (a restored snapshot's, for a template of its name) instead of
        reading the template's catalog again: the restore checked the structure."""
        self.clone_plan, self.template_signature = plan, signature

    def _plan_key(self) -> dict[str, str] | None:
        """The plan cache key of the shared template (a run's own template is never
        kept, so it has no stamp and is not cached)."""
        state = self.run.state()
        if not self.run.template_stamp or state["template"] != self.run.names().template:
            return None
        sd = self.run.connection.settings_dict
        return plan_cache.plan_key(
            server=f"{sd.get('HOST') or ''}:{sd.get('PORT') or ''}:{self.run.server_version}",
            database=self.run.test_database_name or sd["NAME"], template=state["template"],
            shared=state["shared"], stamp=self.run.template_stamp,
        )

    @property
    def reuses_spares(self) -> bool:
        """With ``--keepdb``, schemas are kept as spares and reset for the next run,
        where the plan allows a faithful reset."""
        if not (self.run.keepdb and self.run.template_stamp):
            return False
        if self.spares_planned is not None:
            return self.spares_planned
        plan = self.clone_plan
        return plan is not None and plan.reset is not None and not plan.reset.declined

    def schema_exists(self, schema: str) -> bool:
        with self.run.connection.cursor() as cursor:
            return markers.schema_exists(cursor, schema)

    def create_schema(self, schema: str, role: str) -> None:
        """Create ``schema`` with our marker and fill it from the template, right now."""
        self.plan()
        raw = self.run.raw_connection()
        setups = self.run.options.concurrent_setups
        budget = clone.server_lock_budget(raw, setups) if setups > 1 else None
        self.fill_schema(raw, schema, role, lock_budget=budget)

    def fill_schema(
        self, raw: Any, schema: str, role: str, lock_budget: int | None = None
    ) -> str | None:
        """Create and clone one schema on ``raw``, or claim and reset a spare for
        it; the spare's old name, or None when cloned. Runs in clone threads too.

        The plan must already be read: threads share it and never touch the
        alias's own connection.
        """
        state = self.run.state()
        plan = self.clone_plan
        assert plan is not None, "read the clone plan in the main thread first"
        if self.reuses_spares and self.run.template_stamp:
            claimed = spares.claim(
                raw, plan, prefix=state["prefix"], stamp=self.run.template_stamp,
                template_signature=self.template_signature, target=schema,
                target_marker=markers.run_marker(role, state["run_id"]),
                lock_budget=lock_budget or clone.server_lock_budget(raw),
            )
            if claimed is not None:
                return claimed
        with raw.cursor() as cursor:
            markers.create_marked_schema(cursor, schema, role, state["run_id"])
        clone.clone_schema(raw, plan, schema, lock_budget=lock_budget)
        return None

    def clone_queue(self, raw: Any = None) -> CloneQueue:
        """The background cloner of this alias, sized to the server's lock table.

        ``raw`` as for ``plan``."""
        if self._clones is None:
            self._prepared = []
            self.plan(raw)
            raw = raw or self.run.raw_connection()
            alone = clone.server_lock_budget(raw)  # a quarter of the lock table
            concurrency = get_config().clone_concurrency or default_concurrency(alone * 4)
            budget = clone.server_lock_budget(raw, concurrency)
            self._clones = CloneQueue(
                lambda raw, schema, role: self._clone_job(raw, schema, role, budget),
                self.preflight.raw_test_db_connection, concurrency,
            )
        return self._clones

    def _clone_job(self, raw: Any, schema: str, role: str, budget: int) -> None:
        """One background clone; a failure names the schema, alias and template."""
        try:
            started = time.perf_counter()
            spare = self.fill_schema(raw, schema, role, lock_budget=budget)
            self._prepared.append(PreparedSchema(schema, spare, time.perf_counter() - started))
        except SchemaIsoError:
            raise
        except Exception as exc:
            raise SchemaIsoError(
                f"schemaiso: could not create schema '{schema}' for alias "
                f"'{self.run.alias}' from template '{self.run.state()['template']}'"
                f": {str(exc).strip()}"
            ) from exc

    def submit(self, schema: str, role: str, raw: Any = None) -> None:
        """Queue ``schema`` for a background clone, once."""
        clones = self.clone_queue(raw)
        if schema not in clones.submitted:
            clones.submit(schema, role)

    def claim_workers_early(self, raw: Any) -> None:
        """On a warm run, queue the workers' schemas now, while Django finishes its
        setup (``createcachetable``, the alias's own connection): claiming spares is
        most of a warm setup. Django's ``_clone_test_db`` calls then find them queued."""
        options = self.run.options
        if not (self.run.template_is_current and options.background_clones
                and options.expected_workers > 1):
            return
        names = self.run.names()
        for worker in range(1, options.expected_workers + 1):
            self.submit(names.worker(worker), "worker", raw)

    def wait_for_clones(self) -> None:
        """Block until this alias's background clones are done; raise the first
        failure. Then say what was done: clones, or kept spares reset."""
        if self._clones is None:
            return
        clones = self._clones
        clones.wait()
        done, self._prepared = self._prepared, []
        if not done or clones.first_started is None:
            return
        self.run.options.record_time(
            f"  {describe_prepared(done)} of '{self.run.alias}' "
            f"({clones.concurrency} at a time, in the background)",
            (clones.last_finished or clones.first_started) - clones.first_started,
        )
        if self.run.verbosity >= 2:
            template = self.run.state()["template"]
            for item in done:
                how = (f"reset kept spare '{item.spare}'" if item.spare
                       else f"cloned from template '{template}'")
                self.run.log(
                    f"schemaiso: schema '{item.schema}' of alias '{self.run.alias}': "
                    f"{how} in {item.seconds:.2f}s"
                )

    def cancel_clones(self) -> None:
        """Stop this alias's background clones (teardown after a failure or Ctrl-C)."""
        if self._clones is not None:
            clones, self._clones = self._clones, None
            self._prepared = []
            clones.cancel()

    @property
    def concurrency(self) -> int:
        """How many clones run at once; sizing it starts the queue, which the
        caller (``_clone_test_db``) submits to next anyway."""
        return self.clone_queue().concurrency
