"""Which template a run migrates into, or reuses, and what ``migrate`` does there.

With ``--keepdb`` a kept template whose fingerprint matches is reused (``migrate``
skipped); one that differs is rebuilt, unless another run uses it: then this run
migrates a template of its own. ``CREATE EXTENSION`` during ``migrate`` is sent to
the shared schema (extensions.py), and extensions that still land in the template
are moved there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from .. import cleanup, fingerprint, spares
from ..errors import SchemaIsoError
from ..markers import (
    create_marked_schema,
    marker_of,
    parse_marker,
    run_marker,
    schema_comment,
    set_marker_sql,
)
from ..naming import quote_ident
from .alias_run import AliasRun
from .extensions import installed_extensions
from .state import SchemaState, names_of, set_state


@contextmanager
def migrations_skipped_when(
    skip: Callable[[str], bool],
    timed: Callable[[str], AbstractContextManager[Any]] = lambda alias: nullcontext(),
    before_migrate: Callable[[str], None] = lambda alias: None,
) -> Iterator[None]:
    """Make ``call_command("migrate" | "createcachetable", database=alias)`` no-ops
    while ``skip(alias)`` (a kept template whose fingerprint matches, or a restored
    snapshot), and run a ``migrate`` that does happen inside ``timed(alias)``
    (``--timing``). ``before_migrate(alias)`` runs first, when ``migrate`` is not
    skipped already: it may restore a snapshot, after which ``skip`` may hold.

    ``BaseDatabaseCreation.create_test_db`` calls both through
    ``django.core.management.call_command``, imported when it runs; everything else
    it does (logging, serializing on old versions) must stay as Django does it, so
    only those calls are skipped. ``createcachetable`` would find nothing to do: the
    database cache tables are part of the fingerprint, so a matching template
    already has them, and it must not write to a reused template anyway.
    """
    from django.core import management

    original = management.call_command

    def call_command(command_name: Any, *args: Any, **options: Any) -> Any:
        alias = options.get("database", DEFAULT_DB_ALIAS)
        if command_name == "migrate" and not skip(alias):
            before_migrate(alias)
        if command_name in _SKIPPED_WITH_THE_TEMPLATE and skip(alias):
            return None
        if command_name == "migrate":
            with timed(alias):
                return original(command_name, *args, **options)
        return original(command_name, *args, **options)

    management.call_command = call_command
    try:
        yield
    finally:
        management.call_command = original


_SKIPPED_WITH_THE_TEMPLATE = ("migrate", "createcachetable")


class TemplateChoice:
    """Which template one alias's run migrates into or reuses, and finishing it."""

    def __init__(self, run: AliasRun) -> None:
        self.run = run

    def choose(self, cursor: Any, test_database_name: str) -> None:
        """Decide which template this run migrates into, or reuses: the shared one,
        or, when another run uses the shared one and it does not fit this run, one
        of this run's own. Runs under the lease's setup lock, which it releases; a run
        that builds the shared template holds the build lock until ``migrate`` ends.
        A run's other processes use the template its first process made."""
        state = self.run.state()
        if self.run.member:
            sibling = self.sibling_template(cursor, state)
            if sibling is not None:
                self._follow_sibling(cursor, *sibling, test_database_name, state)
                return
        row = self._after_a_build_that_fits(cursor, state["template"])
        if row is not None and self._kept_template_decides(cursor, row, test_database_name, state):
            return
        self._build_shared_template(cursor, state)

    def _after_a_build_that_fits(self, cursor: Any, template: str) -> tuple[Any, ...] | None:
        """The shared template's comment row, once no other run is still migrating
        it for this run's fingerprint: reusing that beats migrating a copy."""
        row = schema_comment(cursor, template)
        lease = self.run.lease
        while (
            self.run.keepdb and self.run.other_runs and lease is not None
            and row is not None and self._will_fit(parse_marker(row[0]) or {})
            and lease.build_in_progress()
        ):
            lease.wait_for_build(template)
            lease.acquire_setup("choosing a template")
            self.run.other_runs = lease.other_runs()
            row = schema_comment(cursor, template)
        return row

    def _kept_template_decides(
        self, cursor: Any, row: tuple[Any, ...], test_database_name: str, state: SchemaState
    ) -> bool:
        """For an existing shared template: reuse it, or migrate one of this run's
        own while another run uses it (True: decided); or drop it for a rebuild."""
        template = state["template"]
        kept = parse_marker(row[0])
        if kept is None:
            raise SchemaIsoError(
                f"schemaiso: schema '{template}' in test database '{test_database_name}' "
                f"(alias '{state['alias']}') was not created by schemaiso, so it will "
                "not be used or touched. Drop it, or set SCHEMAISO['PREFIX'] to "
                "another name."
            )
        changes = fingerprint.differences(kept.get("fingerprint"), self.run.fingerprint)
        if self.run.keepdb and not changes:
            self._reuse_template(template, kept)
            return True
        if self.run.other_runs:
            # Still being migrated: compare with what its builder is building.
            planned = kept.get("fingerprint") or kept.get("building")
            changes = fingerprint.differences(planned, self.run.fingerprint) or changes
            why = (f"it differs from this run's: {'; '.join(changes)}" if self.run.keepdb
                   else "this run has no --keepdb, so it migrates afresh")
            self._use_run_template(cursor, template, why, state)
            return True
        self.run.log(
            f"schemaiso: alias '{state['alias']}': rebuilding template '{template}': "
            f"{'; '.join(changes) or 'this run has no --keepdb'}."
        )
        raw = cursor.db.connection
        cleanup.drop_schemas(raw, [template, *spares.stale_spares(raw, state["prefix"], None)])
        return False

    def _build_shared_template(self, cursor: Any, state: SchemaState) -> None:
        """Create the shared template for this run to migrate, marked as building."""
        create_marked_schema(cursor, state["template"], "template", state["run_id"],
                             building=self.run.fingerprint)
        self.run.template_stamp = state["run_id"]
        if self.run.lease is not None:
            # Others may set up while this run migrates; whoever would reuse the
            # template waits for the build lock instead.
            self.run.lease.hold_build()
            if self.run.member:
                self.run.lease.hold_run_build()
            self.run.lease.release_setup()

    def sibling_template(self, cursor: Any, state: SchemaState) -> tuple[str, dict[str, Any]] | None:
        """The template another process of this run made (xdist workers share one):
        the shared template, or the run's own when another run held the shared one."""
        for schema in (state["template"], names_of(state).run_template):
            payload = marker_of(cursor, schema)
            if payload is not None and payload.get("run") == state["run_id"]:
                return schema, payload
        return None

    def _follow_sibling(
        self, cursor: Any, template: str, kept: dict[str, Any], test_database_name: str,
        state: SchemaState,
    ) -> None:
        """Use the template this run's first process migrates: wait for its build,
        never migrate a second time, and fail if that build failed."""
        alias = state["alias"]
        while not kept.get("fingerprint"):
            if self.run.lease is None or not self.run.lease.run_build_in_progress():
                raise SchemaIsoError(
                    f"schemaiso: alias '{alias}': another process of this run (a pytest-xdist "
                    f"worker) created template '{template}' in test database "
                    f"'{test_database_name}', but its migrate did not finish: see that "
                    "worker's error. This process does not migrate it again."
                )
            self.run.lease.wait_for_run_build(template)
            self.run.lease.acquire_setup("choosing a template")
            kept = marker_of(cursor, template) or {}
        changes = fingerprint.differences(kept.get("fingerprint"), self.run.fingerprint)
        if changes:
            raise SchemaIsoError(
                f"schemaiso: alias '{alias}': the processes of this run disagree about what "
                f"migrate makes ({'; '.join(changes)}). Settings must not depend on the "
                "worker (e.g. PYTEST_XDIST_WORKER); one template serves them all."
            )
        if template != state["template"]:
            set_state(self.run.connection, template=template, schema=template)
        self._reuse_template(template, kept)
        if template != names_of(state).template:
            self.run.template_stamp = None  # a run's own template is never kept

    def _will_fit(self, kept: dict[str, Any]) -> bool:
        """Whether a template still being migrated is being built for this run's
        fingerprint (its builder names it in ``building`` until ``migrate`` ends)."""
        return not kept.get("fingerprint") and not fingerprint.differences(
            kept.get("building"), self.run.fingerprint
        )

    def _reuse_template(self, template: str, kept: dict[str, Any]) -> None:
        """Use a kept template whose fingerprint matches: ``migrate`` is skipped."""
        self.run.template_is_current = True
        self.run.template_stamp = str(kept.get("run"))
        if self.run.lease is not None:
            self.run.lease.release_setup()
        if self.run.verbosity >= 1:
            self.run.log(
                f"schemaiso: alias '{self.run.connection.alias}': template '{template}' is up "
                "to date; migrate skipped."
            )

    def _use_run_template(
        self, cursor: Any, shared_template: str, why: str, state: SchemaState
    ) -> None:
        """Migrate into a template of this run alone: the shared one is in use by
        another run, so it is neither rebuilt nor dropped. Never kept as spares."""
        template = names_of(state).run_template
        create_marked_schema(cursor, template, "run_template", state["run_id"])
        set_state(self.run.connection, template=template, schema=template)
        self.run.template_stamp = None
        if self.run.lease is not None:
            if self.run.member:
                self.run.lease.hold_run_build()  # this run's other processes wait for it
            self.run.lease.release_setup()
        self.run.log(
            f"schemaiso: alias '{state['alias']}': template '{shared_template}' is in use by "
            f"another run and {why}; migrating into this run's own template '{template}'."
        )

    def record_fingerprint(self) -> None:
        """Stamp the template with this run's fingerprint, once ``migrate`` has finished:
        a template whose ``migrate`` was interrupted has none and is rebuilt."""
        state = self.run.state()
        role = "template" if state["template"] == names_of(state).template else "run_template"
        payload = run_marker(role, state["run_id"], fingerprint=self.run.fingerprint)
        with self.run.connection.cursor() as cursor:
            cursor.execute(set_marker_sql(state["template"], payload))

    def move_template_extensions(self) -> None:
        """Move extensions that a migration installed into the template to the shared schema."""
        state = self.run.state()
        with self.run.connection.cursor() as cursor:
            for name, schema, relocatable in installed_extensions(cursor):
                if schema != state["template"]:
                    continue
                if not relocatable:
                    raise SchemaIsoError(
                        f"schemaiso: extension '{name}' was installed into the template "
                        f"schema '{state['template']}' (alias '{state['alias']}') and cannot "
                        f"be moved. Create it with CREATE EXTENSION {name} SCHEMA "
                        f"{state['shared']} in the migration that needs it."
                    )
                cursor.execute(
                    f"ALTER EXTENSION {quote_ident(name)} SET SCHEMA {quote_ident(state['shared'])}"
                )
