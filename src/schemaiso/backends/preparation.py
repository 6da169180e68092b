"""Making the test database ready for a run's schemas.

Once the test database exists (created by Django, kept, or an existing one):
check that the role may create schemas there, make sure of the shared schema
(where extensions live, on every connection's ``search_path``), drop what runs
whose process is gone left behind, and create or choose the template.
"""

from __future__ import annotations

from typing import Any

from .. import markers, orphans
from ..errors import SchemaIsoError
from ..naming import quote_ident
from ..run_identity import run_id
from .alias_run import AliasRun
from .extensions import installed_extensions
from .preflight import Preflight
from .provisioning import Provisioner
from .template import TemplateChoice


class DatabasePreparation:
    """The steps between "the test database exists" and ``migrate``."""

    def __init__(self, run: AliasRun, preflight: Preflight, provisioner: Provisioner) -> None:
        self.run = run
        self.preflight = preflight
        self.provisioner = provisioner

    def prepare(self) -> None:
        """Check privileges and the shared schema, then create the template schema."""
        state = self.run.state()
        shared = state["shared"]
        with self.preflight.test_db_cursor() as cursor:
            self.preflight.check_may_create_schemas(cursor)
            if self.run.existing_database:
                self._own_shared_schema(cursor, shared)
            elif not markers.schema_exists(cursor, shared):
                cursor.execute("CREATE SCHEMA " + quote_ident(shared))
            self._check_shared_schema_is_empty(cursor, shared)
            raw = cursor.db.connection
            self._prune_dead_runs(raw)
            TemplateChoice(self.run).choose(cursor, self.run.test_database_name)
            self.run.server_version = int(cursor.db.pg_version)
            self.provisioner.claim_workers_early(raw)

    def _check_shared_schema_is_empty(self, cursor: Any, shared: str) -> None:
        """Every worker sees the shared schema: tables there would leak between them."""
        tables = self._user_relations(cursor, shared)
        if tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise SchemaIsoError(
                f"schemaiso: the shared schema '{shared}' of test database "
                f"'{self.run.test_database_name}' (alias '{self.run.alias}') already holds "
                f"{len(tables)} table(s) or view(s) ({shown}); every worker would see "
                "them. It is probably left from a run without schemaiso: run once "
                "without --keepdb so the test database is recreated, or drop those "
                "objects."
            )

    def _own_shared_schema(self, cursor: Any, shared: str) -> None:
        """Inside an existing database the shared schema must be one schemaiso made:
        ``public`` and every other schema there belong to the database's owners."""
        alias = self.run.alias
        row = markers.schema_comment(cursor, shared)
        if row is None:
            markers.create_marked_schema(cursor, shared, "shared", run_id())
        elif (markers.parse_marker(row[0]) or {}).get("role") != "shared":
            raise SchemaIsoError(
                f"schemaiso: schema '{shared}' in the existing database "
                f"'{self.run.test_database_name}' (alias '{alias}') was not created by "
                "schemaiso as its shared schema, so it is neither used nor touched. Set "
                "SCHEMAISO['SHARED_SCHEMA'] to a name that does not exist yet (schemaiso "
                "creates it), or leave the key out."
            )
        if self.run.verbosity < 1:
            return
        elsewhere = [(name, schema) for name, schema, _ in installed_extensions(cursor)
                     if schema not in ("pg_catalog", shared)]
        if elsewhere:
            shown = ", ".join(f"{name} (in {schema})" for name, schema in elsewhere)
            self.run.log(
                f"schemaiso: alias '{alias}': note: extension(s) {shown} were installed "
                f"outside schemaiso's schemas; those schemas are never on a worker's "
                "search_path, so their objects need schema-qualified names there "
                "(e.g. public.similarity()). A migration's CREATE EXTENSION of another "
                f"extension installs it into '{shared}'."
            )

    def _prune_dead_runs(self, raw: Any) -> None:
        """Drop schemas left by runs on this host whose process is gone (``kill -9``,
        a crash). Never fails the run: a schema that cannot be dropped now (a lock
        held elsewhere) is left for the next run or ``manage.py schemaiso prune``."""
        name = self.run.test_database_name
        try:
            dropped = orphans.prune(raw)
        except Exception as exc:  # noqa: BLE001  (cleanup of others' leftovers is best effort)
            self.run.log(
                f"schemaiso: warning: could not drop schemas of finished runs in test database "
                f"'{name}': {str(exc).strip()}. Run `manage.py schemaiso prune`."
            )
            return
        if dropped and self.run.verbosity >= 1:
            shown = ", ".join(dropped[:6]) + (", ..." if len(dropped) > 6 else "")
            self.run.log(
                f"schemaiso: dropped {len(dropped)} schema(s) left by runs whose process is "
                f"gone, in test database '{name}': {shown}"
            )

    @staticmethod
    def _user_relations(cursor: Any, schema: str) -> list[str]:
        """Tables, views and sequences in ``schema`` that no extension owns."""
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
              AND NOT EXISTS (
                SELECT 1 FROM pg_depend d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
              )
            ORDER BY c.relname
            """,
            [schema],
        )
        return [row[0] for row in cursor.fetchall()]
