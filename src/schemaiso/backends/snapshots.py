"""Snapshots for one alias's new template: restore one instead of ``migrate``,
write one after it.

``migrate`` into a new template is where a cold run spends its setup. Just before
it runs (``before_migrate``), the snapshot directory is asked for this run's
fingerprint: an exact snapshot is restored and ``migrate`` skipped; one that only
lacks migrations added since is restored and ``migrate`` applies the rest.
After the template is finished (``after_migrate``), a template that ``migrate``
built or extended is written as a new snapshot. Any problem with a snapshot is a
warning and the run migrates as it would have: a snapshot only ever saves time.
"""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path
from typing import Any

from .. import cleanup, clone, fingerprint
from ..clone.plan_json import plan_from_json, plan_to_json
from ..conf import get_config
from ..errors import CloneError, SchemaIsoError, first_line
from ..markers import schema_comment, set_marker_sql
from ..naming import quote_ident
from ..snapshot import capture, fileformat, manifest, restore, store
from .alias_run import AliasRun
from .provisioning import Provisioner


class TemplateSnapshots:
    """Restoring and writing snapshots of one alias's template, in one run."""

    def __init__(self, run: AliasRun, provisioner: Provisioner) -> None:
        self.run = run
        self.provisioner = provisioner
        config = get_config()
        self.keep = config.snapshot_keep
        self.directory: Path | None = store.snapshot_dir(
            config.snapshot_dir_setting, turned_off=not run.options.snapshots)
        #: The snapshot restored into the template, and how it fit.
        self.restored: store.Choice | None = None
        self._restore_seconds = 0.0
        self._migrations_before = 0
        self._why_none = ""
        self._outside_before: set[capture.Outside] = set()
        self._facts: manifest.RunFacts | None = None

    @property
    def skips_migrate(self) -> bool:
        """An exact snapshot was restored: the template is what ``migrate`` makes."""
        return self.restored is not None and self.restored.kind == "exact"

    def facts(self) -> manifest.RunFacts:
        if self._facts is None:
            connection = self.run.connection
            self._facts = manifest.RunFacts(
                alias=self.run.alias, fingerprint=self.run.fingerprint,
                migrations=fingerprint.migration_files(connection.settings_dict),
                postgresql=int(connection.pg_version) // 10000,
            )
        return self._facts

    # -- before migrate ------------------------------------------------------------

    def before_migrate(self) -> None:
        """Restore the best-fitting snapshot into the new, empty template, if any."""
        if self.directory is None:
            return
        raw = self.run.raw_connection()
        state = self.run.state()
        self._outside_before = capture.outside_objects(raw, state["shared"])
        choice = store.choose(self.directory, self.facts())
        for path, problem in choice.unreadable:
            self._warn(path, problem)
        if choice.path is None:
            self._why_none = choice.why_none
            return
        try:
            contents = fileformat.read(choice.path)
        except fileformat.SnapshotFileError as exc:
            self._warn(choice.path, str(exc))
            self._why_none = f"snapshot {choice.path.name} is unreadable"
            return
        started = time.monotonic()
        label = f"    Restoring template '{state['template']}' of '{self.run.alias}' from a snapshot"
        with self.run.options.timed(label):
            failure = self._restore(raw, contents, exact=choice.kind == "exact")
        if failure is not None:
            self._warn(choice.path, f"it could not be restored ({failure})")
            self._why_none = f"snapshot {manifest.short_id(contents.manifest)} failed to restore"
            return
        self._restore_seconds = time.monotonic() - started
        self.restored = choice
        store.touch(choice.path)
        if self.skips_migrate:
            self._say(f"restored template '{state['template']}' from snapshot "
                      f"{self._described(contents.manifest)}; migrate skipped")

    def _restore(self, raw: Any, contents: fileformat.SnapshotContents, *, exact: bool) -> str | None:
        """Restore; on failure empty the template again and say why (None: done)."""
        state = self.run.state()
        template = state["template"]
        try:
            plan = plan_from_json(contents.plan)
            if plan.shared != state["shared"]:
                return (f"it was made with shared schema '{plan.shared}', this run uses "
                        f"'{state['shared']}'")
            restore.ensure_extensions(raw, contents.manifest["extensions"], state["shared"])
            budget = clone.server_lock_budget(raw, self.run.options.concurrent_setups)
            if contents.shared_objects is not None:
                restore.restore_shared_objects(
                    raw, plan_from_json(contents.shared_objects),
                    list(contents.manifest["shared_objects"]), state["shared"], lock_budget=budget)
            restore.restore(raw, contents, plan, template, lock_budget=budget)
            restore.check_structure(raw, template, contents.manifest.get("signature"))
        except Exception as exc:  # noqa: BLE001 - any failure means: migrate instead
            self._empty_template(raw, template)
            return first_line(exc)
        _register_extension_types(self.run.connection)
        if exact and plan.template == template:
            self.provisioner.adopt_plan(plan, str(contents.manifest.get("signature") or ""))
        self._migrations_before = _applied_migrations(raw, template)
        return None

    def _empty_template(self, raw: Any, template: str) -> None:
        """Drop what a failed restore left and recreate the template, marker kept."""
        with closing(raw.cursor()) as cursor:
            comment = schema_comment(cursor, template)
        if comment is None or not cleanup.drop_schema(raw, template):
            raise SchemaIsoError(
                f"schemaiso: alias '{self.run.alias}': template '{template}' vanished or lost "
                "its marker while a snapshot was restored into it; run again."
            )
        with closing(raw.cursor()) as cursor:
            cursor.execute(f"CREATE SCHEMA {quote_ident(template)}; "
                           + set_marker_sql(template, str(comment[0])))

    # -- after migrate ---------------------------------------------------------------

    def after_migrate(self) -> None:
        """Write the template ``migrate`` built (or extended) as a snapshot."""
        if self.directory is None or self.skips_migrate:
            return
        state = self.run.state()
        raw = self.run.raw_connection()
        started = time.monotonic()
        plan = self.provisioner.plan(raw)
        outside, extensions, shared_plan, refused = self._beyond_the_template(raw, plan)
        if refused is not None:
            self._say_after(f"no snapshot written: {refused}")
            return
        rows = capture.rows(raw, plan)
        facts = self.facts()
        written = manifest.build(
            facts, template=state["template"], shared=state["shared"],
            tables=plan.table_count, extensions=extensions,
            signature=self.provisioner.template_signature
            or clone.structure_signature(raw, state["template"]),
            row_bytes=sum(len(data) for _step, data in rows),
            shared_objects=sorted(capture.describe(item) for item in outside),
        )
        path = self.directory / facts.key
        try:
            size = fileformat.write(path, written, plan_to_json(plan), rows,
                                    None if shared_plan is None else plan_to_json(shared_plan))
            store.prune(self.directory, self.keep)
        except OSError as exc:
            self._say_after(f"no snapshot written: {path}: {exc.strerror or exc}", warn=True)
            return
        self._say_after(
            f"wrote snapshot {manifest.short_id(written)} ({plan.table_count} tables, "
            f"{store.size_text(size)}, {time.monotonic() - started:.1f} s) to {self.directory}"
        )

    def _beyond_the_template(
        self, raw: Any, plan: clone.ClonePlan
    ) -> tuple[set[capture.Outside], list[list[str]], clone.ClonePlan | None, str | None]:
        """What ``migrate`` made outside the template, the extensions, the plan of the
        shared schema's part, and why the snapshot cannot be written (None: it can)."""
        shared = self.run.state()["shared"]
        outside = capture.made_by_migrate(capture.outside_objects(raw, shared),
                                          self._outside_before, shared)
        extensions = capture.extensions(raw)
        refused = capture.refusal(plan, outside, extensions)
        if refused is not None:
            return outside, extensions, None, refused
        try:
            return outside, extensions, capture.shared_objects_plan(raw, outside, shared), None
        except CloneError as exc:
            why = f"what migrate put into the shared schema cannot be captured: {first_line(exc)}"
            return outside, extensions, None, why

    def _say_after(self, what: str, *, warn: bool = False) -> None:
        """One line for the whole story: what came before ``migrate``, then ``what``."""
        template = self.run.state()["template"]
        if self.restored is not None:
            contents_id = self._described(self.restored.manifest or {})
            applied = _applied_migrations(self.run.raw_connection(), template) - self._migrations_before
            before = (f"restored template '{template}' from snapshot {contents_id}, then "
                      f"applied {applied} new migration(s)")
        else:
            before = f"migrated template '{template}' ({self._why_none or 'no snapshot'})"
        self._say(f"{before}; {what}", warn=warn)

    def _described(self, written: dict[str, Any]) -> str:
        return (f"{manifest.short_id(written)} ({written.get('tables', '?')} tables, "
                f"{self._restore_seconds:.1f} s)")

    def _say(self, text: str, *, warn: bool = False) -> None:
        if warn or self.run.verbosity >= 1:
            self.run.log(f"schemaiso: alias '{self.run.alias}': {text}")

    def _warn(self, path: Path, problem: str) -> None:
        self.run.log(
            f"schemaiso: warning: alias '{self.run.alias}': snapshot file {path} is not used: "
            f"{problem}. The run migrates instead. Delete the file, or run "
            "`python manage.py schemaiso snapshots --prune`."
        )


def _register_extension_types(connection: Any) -> None:
    """What Django's ``CreateExtension`` operation does after creating an extension,
    for the extensions a restore created instead of ``migrate``: forget the cached
    "no such type" of hstore and citext (workers inherit that cache), and register
    the type handlers and PostGIS adapters on this connection."""
    from django.apps import apps

    if not apps.is_installed("django.contrib.postgres"):
        return
    from django.contrib.postgres.signals import (
        get_citext_oids,
        get_hstore_oids,
        register_type_handlers,
    )

    get_hstore_oids.cache_clear()  # type: ignore[attr-defined]
    get_citext_oids.cache_clear()  # type: ignore[attr-defined]
    register_type_handlers(connection)
    if hasattr(connection, "register_geometry_adapters"):
        connection.register_geometry_adapters(connection.connection, True)


def _applied_migrations(raw: Any, template: str) -> int:
    """Rows of the template's ``django_migrations`` (0 without the table)."""
    with closing(raw.cursor()) as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL",
                       [f"{quote_ident(template)}.django_migrations"])
        if not cursor.fetchall()[0][0]:
            return 0
        cursor.execute(f"SELECT count(*) FROM {quote_ident(template)}.django_migrations")
        return int(cursor.fetchall()[0][0])

