"""The end of one alias's run: its schemas dropped, kept as spares, or kept failed.

The test database itself goes with Django's own ``destroy_test_db`` unless it
stays: with ``--keepdb``, while other runs use it, inside an existing database,
or when schemas where tests failed are kept for inspection. When it stays, only
this run's schemas go (or become spares for the next ``--keepdb`` run); the last
run out of an existing database also drops what runs share there.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from django.db import DatabaseError as DjangoDatabaseError

from .. import cleanup, markers, spares
from ..clone.dbapi import rollback
from ..errors import SchemaIsoError, first_line
from ..naming import like_escape, quote_ident
from .alias_run import AliasRun
from .extensions import installed_extensions
from .preflight import Preflight
from .provisioning import Provisioner
from .state import STATE_KEY, SchemaState, names_of

#: Django's own ``destroy_test_db(old_database_name, verbosity, keepdb)``.
StockDestroy = Callable[[Any, int, bool], None]


class Teardown:
    """Ends one alias's run in the process that owns its test database."""

    def __init__(self, run: AliasRun, preflight: Preflight, provisioner: Provisioner) -> None:
        self.run = run
        self.preflight = preflight
        self.provisioner = provisioner
        self.connection = run.connection
        self.verbosity, self.keepdb = run.verbosity, run.keepdb

    def destroy(
        self, old_database_name: str | None, verbosity: int, keepdb: bool,
        stock_destroy: StockDestroy,
    ) -> None:
        """Drop or keep this run's schemas, then let Django drop or keep the database.
        ``verbosity`` and ``keepdb`` are ``destroy_test_db``'s own."""
        state = self.run.state()
        self.verbosity, self.keepdb = verbosity, keepdb
        try:
            others = self._leave_test_database()
            failed = self._failed_schemas(state)
            keep_database = keepdb or others > 0 or self.run.existing_database or bool(failed)
            # A kept failed schema still uses the shared schema's extensions.
            last_out_of_existing = (
                self.run.existing_database and not keepdb and not others and not failed
            )
            if keep_database:
                self._drop_run_schemas(state, keeps_template=not last_out_of_existing, keep=failed)
            if last_out_of_existing:
                self._drop_shared_schemas(state)
            self._show_failed(state, failed)
            if others and not keepdb and self.verbosity >= 1:
                self._say_left_for_others(state, others)
            database = self.connection.settings_dict["NAME"]
            self.connection.close()
            self.connection.settings_dict[STATE_KEY] = None
            with (
                nullcontext() if keep_database
                else self.run.options.timed(f"  Dropping test database '{database}' ('{state['alias']}')")
            ):
                stock_destroy(old_database_name, verbosity, keep_database)
        except (DjangoDatabaseError, self.connection.Database.DatabaseError) as exc:
            raise self._server_failed(exc, state["alias"]) from exc
        finally:
            self.run.close_lease()

    def _server_failed(self, exc: BaseException, alias: str) -> SchemaIsoError:
        """The error for a server that failed (or went away) during teardown."""
        return SchemaIsoError(
            f"schemaiso: PostgreSQL at {self.preflight.server_display()} failed while tearing "
            f"down alias '{alias}' (test database '{self.connection.settings_dict['NAME']}'): "
            f"{first_line(exc)}\nThis run's schemas may be left there. Once the server "
            "answers again, the next run on this host drops them (their process is gone), "
            "or run `python manage.py schemaiso prune`."
        )

    def _say_left_for_others(self, state: SchemaState, others: int) -> None:
        self.run.log(
            f"schemaiso: alias '{state['alias']}': leaving test database "
            f"'{self.connection.settings_dict['NAME']}' in place: {others} other "
            "run(s) still use it; the last one drops it."
        )

    def _leave_test_database(self) -> int:
        """Give up this run's claim on the test database, under the setup lock (held
        until the lease closes, so nobody joins a database being dropped), and
        return how many other runs still use it."""
        lease = self.run.lease
        if lease is None:
            return 0
        lease.acquire_setup("keeping its schemas" if self.keepdb else "dropping it")
        lease.leave()
        return lease.other_runs()

    def _drop_run_schemas(
        self, state: SchemaState, *, keeps_template: bool, keep: list[str]
    ) -> None:
        """Drop every schema this run created in the kept database, in small batches,
        except those in ``keep``; or keep them as spares."""
        reuses = self.provisioner.reuses_spares
        action = ("Keeping this run's schemas as spares (dropping those a test changed)"
                  if reuses else "Dropping this run's schemas")
        label = f"  {action} of '{state['alias']}' ('{self.connection.settings_dict['NAME']}')"
        with self.run.options.timed(label):
            names = names_of(state)
            raw = self.run.raw_connection()
            schemas = [s for s in cleanup.run_schemas(raw, names) if s not in keep]
            if reuses:
                self._keep_as_spares(raw, state, schemas)
                return
            if self.verbosity >= 1 and schemas:
                kept_template = self.run.template_stamp and keeps_template
                self.run.log(
                    f"schemaiso: dropping {len(schemas)} schema(s) of run {names.run_id} "
                    f"for alias '{state['alias']}'"
                    + (f"; keeping '{names.template}'..." if kept_template else "...")
                )
            cleanup.drop_schemas(raw, schemas)

    def _keep_as_spares(self, raw: Any, state: SchemaState, schemas: list[str]) -> None:
        """Keep this run's schemas for the next ``--keepdb`` run (renamed to spares),
        except those a test changed with DDL, and drop spares beyond what this run
        used, or of an older template."""
        stamp = self.run.template_stamp
        assert stamp is not None
        prefix = state["prefix"]
        fit, changed = spares.split_by_structure(raw, schemas, state["template"])
        spares.keep(raw, fit, prefix=prefix, run_id=state["run_id"], stamp=stamp)
        current, stale = spares.by_template(raw, prefix, stamp)
        surplus = current[len(fit):]
        if self.verbosity >= 1 and schemas:
            self.run.log(
                f"schemaiso: keeping {len(fit)} schema(s) of alias '{state['alias']}' "
                f"for the next --keepdb run (reset, not cloned, when it starts)"
                + (f"; dropping {len(changed)} whose tables a test changed (DDL)"
                   if changed else "")
                + (f"; dropping {len(surplus) + len(stale)} unused" if surplus or stale else "")
                + "."
            )
        cleanup.drop_schemas(raw, changed + surplus + stale)

    def _failed_schemas(self, state: SchemaState) -> list[str]:
        """This run's schemas marked failed (``--keep-failed-schemas``), to keep."""
        if not state.get("keep_failed"):
            return []
        marked = markers.marked_schemas(self.run.raw_connection(), names_of(state).run_pattern)
        return sorted(
            name for name, payload in marked.items()
            if payload.get("run") == state["run_id"] and payload.get("failed")
        )

    def _show_failed(self, state: SchemaState, failed: list[str]) -> None:
        """Say where the kept schemas are and how to look inside (password left out)."""
        if not failed:
            return
        sd = self.connection.settings_dict
        conninfo = " ".join(
            f"{key}={value}" for key, value in (
                ("host", sd.get("HOST")), ("port", sd.get("PORT")),
                ("dbname", sd["NAME"]), ("user", sd.get("USER")),
            ) if value
        )
        self.run.log(
            f"schemaiso: kept {len(failed)} schema(s) of alias '{state['alias']}' where tests "
            f"failed, in test database '{sd['NAME']}' (until the next run on this host, or "
            "`manage.py schemaiso prune`). Inspect one with:"
        )
        for schema in failed:
            path = f"SET search_path TO {quote_ident(schema)}, {quote_ident(state['shared'])}"
            self.run.log(f"    psql {shlex.quote(conninfo)} -c {shlex.quote(path)} -c '\\dt'")

    def _drop_shared_schemas(self, state: SchemaState) -> None:
        """The last run out of an existing database without ``--keepdb`` drops what
        runs share there (the template, spares, the shared schema): the database
        stays, so nothing else would. The shared schema's extensions go one by one,
        RESTRICT: an object outside our schemas that uses one keeps it, and the schema."""
        raw = self.run.raw_connection()
        prefix, shared = state["prefix"], state["shared"]
        ours = [
            name for name, payload in markers.marked_schemas(raw, like_escape(prefix + "_") + "%").items()
            if payload.get("role") in ("template", "spare")
        ]
        if self.verbosity >= 1:
            self.run.log(
                f"schemaiso: alias '{state['alias']}': last run out of the existing database "
                f"'{self.connection.settings_dict['NAME']}': dropping "
                f"{', '.join([*ours, shared])}."
            )
        cleanup.drop_schemas(raw, ours)
        if markers.marked_schemas(raw, like_escape(shared)).get(shared, {}).get("role") != "shared":
            return  # never drop a schema our marker does not prove ours
        with raw.cursor() as cursor:
            statements = [f"DROP EXTENSION {quote_ident(name)} RESTRICT"
                          for name, schema, _ in installed_extensions(cursor) if schema == shared]
            statements.append(f"DROP SCHEMA {quote_ident(shared)} RESTRICT")
            try:
                cursor.execute("BEGIN; " + "; ".join(statements) + "; COMMIT")
            except self.connection.Database.Error as exc:
                rollback(cursor)
                self.run.log(
                    f"schemaiso: warning: kept the shared schema '{shared}' of alias "
                    f"'{state['alias']}': {first_line(exc)}"
                )
