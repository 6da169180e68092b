"""The DatabaseCreation mixin: test database setup and teardown on schemas.

It overrides Django's own seams (``create_test_db``, ``_clone_test_db``,
``get_test_db_clone_settings``, ``setup_worker_connection``, ``destroy_test_db``,
``set_as_test_mirror``) so that the stock ``setup_databases`` and parallel runner
drive it: one test database, ``migrate`` into a template schema, one schema cloned
from it per worker, and the test database dropped (schemas with it) at the end.
Which template a run migrates into or reuses is decided in template.py; the
run's identity and schema markers are in run_identity.py.
"""

from __future__ import annotations

import shlex
import time
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from django.db import DatabaseError as DjangoDatabaseError
from django.db import OperationalError as DjangoOperationalError
from django.db import connections
from django.db.backends.base.base import NO_DB_ALIAS

from .. import cleanup, clone, fingerprint, markers, orphans, plan_cache, spares
from ..clone.dbapi import rollback
from ..clone_queue import CloneQueue, PreparedSchema, default_concurrency, describe_prepared
from ..conf import get_config
from ..errors import SchemaIsoError, first_line
from ..lease import RunLease
from ..markers import create_marked_schema, parse_marker
from ..naming import SchemaNames, like_escape, quote_ident
from ..run_identity import run_id
from .caller_warnings import warnings_at_caller
from .state import STATE_KEY, RunReport, SchemaState, close_with_pool, get_state
from .template import TemplateChoiceMixin, migrations_skipped_when

_INHERITED_POOLS: list[Any] = []


class SchemaIsolationCreationMixin(TemplateChoiceMixin):
    """Creation on top of any PostgreSQL-family ``DatabaseCreation``."""

    #: The runner sets this when the main process runs no tests before teardown
    #: (everything parallel, nothing serial): then the main schema is never cloned.
    defer_main_schema = False
    #: Set by schemaiso's runner, which waits for background clones before any
    #: worker starts. Other runners (an explicit ENGINE with Django's own runner)
    #: get each clone done before ``_clone_test_db`` returns.
    clone_in_background = False
    #: The runner sets this when the main process will run tests after the
    #: parallel phase: its schema is then cloned in the background with the workers'.
    clone_main_early = False
    #: The runner sets this to ``--parallel`` when workers will run: a warm run then
    #: starts claiming their schemas as soon as it has chosen its template, before
    #: Django asks for them one by one (``_claim_workers_early``).
    expected_workers = 0
    #: Set by the pytest plugin: this process is one of the processes of a run
    #: (pytest-xdist workers, or pytest's only process) that another step ends
    #: (``finish_run``, from the plugin's session end). Such processes share one
    #: template, and a member's teardown only leaves, reporting in ``run_report``.
    run_member = False
    #: The worker schema number a member works in (xdist worker gwN: N + 1), or
    #: None for the main schema.
    own_worker_number: int | None = None
    #: How many processes of the run may clone at once: each takes that share of
    #: the server's lock budget.
    concurrent_setups = 1
    #: What a member's teardown left for ``finish_run`` (None before it).
    run_report: RunReport | None = None
    #: ``finish_run``: whether the run's members could keep their schemas as spares.
    _spares_planned: bool | None = None

    _clone_plan: clone.ClonePlan | None = None
    _clones: CloneQueue | None = None
    #: The background queue's schemas done since ``wait_for_clones`` last reported
    #: (set with the queue: a shared class-level list would collect every alias's).
    _prepared: list[PreparedSchema]
    #: Django's TimeKeeper when the runner has ``--timing`` (the runner sets it).
    time_keeper: Any = None
    _template_signature = ""
    #: Set by the runner from ``--keep-failed-schemas``.
    keep_failed_schemas = False
    #: Inside an existing database (SCHEMAISO['EXISTING_DATABASE']): it is never
    #: created or dropped, and the shared schema is one of schemaiso's own.
    _existing_database = False
    _test_database_name = ""
    #: True once our ``_create_test_db`` ran in this ``create_test_db`` call.
    _set_up_here = False

    # -- creating the test database and the template --------------------------

    @warnings_at_caller
    def create_test_db(self, *args: Any, **kwargs: Any) -> str:
        """Django's ``create_test_db``, with ``migrate`` going into the template (or
        skipped for a current one); after it, the template is finished and this
        process moves to its own schema. Only when our ``_create_test_db`` ran:
        a caller that replaces it (Django's own creation tests mock it) gets
        exactly what the stock method does."""
        self._set_up_here = False
        self._template_is_current = False
        try:
            with migrations_skipped_when(
                lambda alias: self._set_up_for(alias) and self._template_is_current,
                lambda alias: self._timed(
                    f"    Migrating template '{self._require_state()['template']}' of '{alias}'"
                ) if self._set_up_for(alias) else nullcontext(),
            ):
                test_database_name: str = super().create_test_db(*args, **kwargs)  # type: ignore[misc]
            if self._set_up_here:
                self._finish_template()
        except (DjangoDatabaseError, self.connection.Database.DatabaseError) as exc:
            self._close_lease()
            if not self._set_up_here or self._server_answers():
                raise
            raise SchemaIsoError(
                f"schemaiso: lost PostgreSQL at {self._server_display()} while setting up "
                f"alias '{self.connection.alias}': {first_line(exc)}\nCheck that the "
                "server is running and reachable, then run the tests again; what this "
                "run created is dropped by the next run on this host."
            ) from exc
        except BaseException:
            self._close_lease()
            raise
        if self._set_up_here:
            self._enter_own_schema()
        return test_database_name

    def _set_up_for(self, alias: str) -> bool:
        """Whether ``alias`` is this creation's, and our ``_create_test_db`` set it up."""
        return self._set_up_here and alias == self.connection.alias

    def _begin_setup(self) -> None:
        """This run's state for the alias: fingerprint, schema names, role "template"."""
        config = get_config()
        self._set_up_here = True
        self._old_database_name = self.connection.settings_dict["NAME"]
        self.run_report = None
        self._fingerprint = fingerprint.compute(self.connection.alias, self.connection.settings_dict)
        self._template_stamp = None
        self._other_runs = 0
        self._existing_database = config.in_existing_database(self.connection.alias)
        names = SchemaNames(prefix=config.prefix, run_id=run_id())
        self.connection.settings_dict[STATE_KEY] = SchemaState(
            alias=self.connection.alias,
            prefix=config.prefix,
            run_id=names.run_id,
            shared=config.shared_schema_for(self.connection.alias),
            template=names.template,
            schema=names.template,
            role="template",
            mirror=False,
            keep_failed=self.keep_failed_schemas,
        )

    def _finish_template(self) -> None:
        """After ``migrate``: extensions out of a new template, and its fingerprint."""
        if not self._template_is_current:
            self._move_template_extensions()
            if self._template_stamp is not None or self.run_member:
                self._record_fingerprint()

    def _enter_own_schema(self) -> None:
        """Release the setup locks, then move to the main schema now, or queue it."""
        if self._lease is not None:
            self._lease.release_build()
            self._lease.release_setup()
        if not self.defer_main_schema:
            self.use_main_schema()
        elif self.clone_main_early and self.clone_in_background:
            self._clone_queue().submit(self._names(self._require_state()).main, "main")

    def _create_test_db(self, verbosity: int, autoclobber: bool, keepdb: bool = False) -> str:
        self._begin_setup()
        test_database_name: str = self._get_test_db_name()  # type: ignore[attr-defined]
        self._test_database_name = test_database_name
        self._verbosity = verbosity
        self._keepdb = keepdb
        if self._existing_database:
            self._check_existing_database(test_database_name)
        lease = self._lease = self._open_lease(test_database_name)
        if not self._existing_database:
            self._preflight(lease.cursor, test_database_name, keepdb)
        lease.acquire_setup("choosing a template" if self._existing_database else "creating it")
        self._other_runs = lease.other_runs()
        same_run = (
            self.run_member and not keepdb and not self._other_runs
            and not self._existing_database
            and self._run_has_template(lease.cursor, test_database_name)
        )
        if self._other_runs and verbosity >= 1:
            self.log(
                f"schemaiso: alias '{self.connection.alias}': test database "
                f"'{test_database_name}' is in use by {self._other_runs} other run(s); "
                "sharing it (this run adds and drops only its own schemas)."
            )
        if not self._existing_database:
            # Django drops an existing test database unless told to keep it; a kept
            # one that exists it only looks up, on a connection of its own: ours will do.
            keep = keepdb or bool(self._other_runs) or same_run
            if not (keep and self._database_exists(lease.cursor, test_database_name)):  # type: ignore[attr-defined]
                super()._create_test_db(verbosity, autoclobber, keep)  # type: ignore[misc]
        lease.join()
        self._prepare_test_database(test_database_name)
        return test_database_name

    def _run_has_template(self, cursor: Any, test_database_name: str) -> bool:
        """Whether another process of this run already made the test database and
        its template (pytest-xdist workers): then it is this run's, not a leftover."""
        if not self._database_exists(cursor, test_database_name):  # type: ignore[attr-defined]
            return False
        with self._test_db_cursor(test_database_name) as test_cursor:
            return self._sibling_template(test_cursor, self._require_state()) is not None

    def _close_lease(self) -> None:
        if self._lease is not None:
            lease, self._lease = self._lease, None
            lease.close()

    def _server_cursor(self) -> AbstractContextManager[Any]:
        """A cursor for work outside the test database's schemas (the lease, checks).

        Normally on the maintenance database, as Django's ``_nodb_cursor``: a
        session there never keeps the test database from being dropped. Inside an
        existing database, which is never dropped and may be the only one the role
        can connect to, on that database itself.
        """
        if self._existing_database:
            return self._test_db_cursor(self._test_database_name)
        return self._nodb_cursor()  # type: ignore[attr-defined, no-any-return]

    def run_cursor(self, test_database_name: str) -> AbstractContextManager[Any]:
        """A cursor where the leases of runs on ``test_database_name`` live (for
        locks that a run's processes share, like the pytest plugin's serial gate)."""
        self._existing_database = get_config().in_existing_database(self.connection.alias)
        self._test_database_name = test_database_name
        return self._server_cursor()

    def _server_answers(self) -> bool:
        """Whether a new connection to the server works (after a database error)."""
        try:
            with warnings.catch_warnings():  # Django's "no 'postgres' database" fallback
                warnings.simplefilter("ignore", RuntimeWarning)
                with self._server_cursor() as cursor:
                    cursor.execute("SELECT 1")
        except Exception:  # noqa: BLE001  (any failure means: it does not)
            return False
        return True

    def _server_display(self) -> str:
        sd = self.connection.settings_dict
        host = sd.get("HOST") or "local socket"
        port = sd.get("PORT") or "5432"
        return f"{host}:{port}"

    def _open_lease(self, test_database_name: str) -> RunLease:
        """The run's lease, on the one maintenance-database session setup needs; a
        failure to connect says which alias, host and user, before Django's generic errors."""
        alias = self.connection.alias
        try:
            return RunLease(self._server_cursor, test_database_name, self.log, run_id())
        except (DjangoOperationalError, self.connection.Database.OperationalError) as exc:
            raise SchemaIsoError(
                f"schemaiso: cannot connect to PostgreSQL for alias '{alias}' at "
                f"{self._server_display()} as user "
                f"'{self.connection.settings_dict.get('USER') or '(default)'}': "
                f"{str(exc).strip()}\nCheck DATABASES['{alias}'] (HOST, PORT, USER, "
                "PASSWORD) and that the server is running."
            ) from exc

    def _preflight(self, cursor: Any, test_database_name: str, keepdb: bool) -> None:
        """Fail early, with the alias and grant named, before Django's generic errors."""
        cursor.execute(
            "SELECT current_user, rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        user, can_create_db = cursor.fetchone()
        exists = self._database_exists(cursor, test_database_name)  # type: ignore[attr-defined]
        if not can_create_db and not (keepdb and exists):
            raise SchemaIsoError(
                f"schemaiso: role '{user}' may not create the test database "
                f"'{test_database_name}' for alias '{self.connection.alias}' (it lacks the CREATEDB "
                f"privilege). As a superuser run: ALTER ROLE {quote_ident(user)} CREATEDB;\n"
                "Where that is not possible (managed PostgreSQL), have the test database "
                "created once, grant this role CREATE on it, and set "
                "SCHEMAISO = {'EXISTING_DATABASE': True}: schemaiso then works in schemas "
                "of that database and never creates or drops it (docs/settings.md)."
            )

    def _check_existing_database(self, test_database_name: str) -> None:
        """Inside an existing database: it must exist and take our connection."""
        alias = self.connection.alias
        try:
            with self._test_db_cursor(test_database_name) as cursor:
                cursor.execute("SELECT 1")
        except (DjangoOperationalError, self.connection.Database.OperationalError) as exc:
            if f'"{test_database_name}" does not exist' in str(exc):
                raise SchemaIsoError(
                    f"schemaiso: SCHEMAISO['EXISTING_DATABASE'] is on for alias '{alias}', "
                    f"so the tests run inside the existing database '{test_database_name}', "
                    "but it does not exist. Set DATABASES"
                    f"['{alias}']['TEST']['NAME'] to the database you were given, or have "
                    f"it created: CREATE DATABASE {quote_ident(test_database_name)};"
                ) from exc
            raise SchemaIsoError(
                f"schemaiso: cannot connect to the existing database '{test_database_name}' "
                f"of alias '{alias}' at {self._server_display()} as user "
                f"'{self.connection.settings_dict.get('USER') or '(default)'}': "
                f"{str(exc).strip()}\nCheck DATABASES['{alias}'] (HOST, PORT, USER, "
                "PASSWORD, TEST NAME) and that the role may CONNECT to it."
            ) from exc
        if self._verbosity >= 1:
            self.log(
                f"schemaiso: alias '{alias}': working inside the existing database "
                f"'{test_database_name}' (SCHEMAISO['EXISTING_DATABASE']): only schemas "
                "schemaiso creates there are used or dropped; the database stays."
            )

    def _detached_wrapper(self, test_database_name: str) -> Any:
        """A new, unpooled wrapper for the test database with no schema state.

        It uses Django's "no database" alias, as ``_nodb_cursor`` does, so that
        ``connection_created`` receivers (contrib.postgres's type handlers) leave it
        alone instead of querying the alias's own, not yet usable, connection.
        Django ties a wrapper to the thread that creates it: create it where it is used.
        """
        sd = self.connection.settings_dict
        options = {k: v for k, v in sd["OPTIONS"].items() if k != "pool"}
        return self.connection.__class__(
            {**sd, "NAME": test_database_name, "OPTIONS": options, STATE_KEY: None},
            alias=NO_DB_ALIAS,
        )

    @contextmanager
    def _test_db_cursor(self, test_database_name: str) -> Iterator[Any]:
        """A cursor on a short-lived, unpooled connection to the test database."""
        conn = self._detached_wrapper(test_database_name)
        try:
            with conn.cursor() as cursor:
                yield cursor
        finally:
            conn.close()

    @contextmanager
    def _raw_test_db_connection(self, test_database_name: str) -> Iterator[Any]:
        """A raw driver connection (autocommit) to the test database, for one clone thread."""
        conn = self._detached_wrapper(test_database_name)
        try:
            conn.ensure_connection()
            yield conn.connection
        finally:
            conn.close()

    def _prepare_test_database(self, test_database_name: str) -> None:
        """Check privileges and the shared schema, then create the template schema."""
        state = self._require_state()
        alias, shared, template = state["alias"], state["shared"], state["template"]
        with self._test_db_cursor(test_database_name) as cursor:
            cursor.execute(
                "SELECT current_user, has_database_privilege(current_database(), 'CREATE')"
            )
            user, can_create = cursor.fetchone()
            if not can_create:
                raise SchemaIsoError(
                    f"schemaiso: role '{user}' may not create schemas in test database "
                    f"'{test_database_name}' (alias '{alias}'). As the database owner run: "
                    f"GRANT CREATE ON DATABASE {quote_ident(test_database_name)} TO "
                    f"{quote_ident(user)};"
                )
            if self._existing_database:
                self._own_shared_schema(cursor, shared, test_database_name)
            else:
                cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [shared])
                if cursor.fetchone() is None:
                    cursor.execute("CREATE SCHEMA " + quote_ident(shared))
            tables = self._user_relations(cursor, shared)
            if tables:
                shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
                raise SchemaIsoError(
                    f"schemaiso: the shared schema '{shared}' of test database "
                    f"'{test_database_name}' (alias '{alias}') already holds "
                    f"{len(tables)} table(s) or view(s) ({shown}); every worker would see "
                    "them. It is probably left from a run without schemaiso: run once "
                    "without --keepdb so the test database is recreated, or drop those "
                    "objects."
                )
            self._prune_dead_runs(cursor.db.connection, test_database_name)
            self._create_template_schema(cursor, template, test_database_name, state)
            self._server_version = int(cursor.db.pg_version)
            self._claim_workers_early(cursor.db.connection, test_database_name)

    def _claim_workers_early(self, raw: Any, test_database_name: str) -> None:
        """On a warm run, queue the workers' schemas now, while Django finishes its
        setup (``createcachetable``, the alias's own connection): claiming spares is
        most of a warm setup. Django's ``_clone_test_db`` calls then find them queued."""
        if not (self._template_is_current and self.clone_in_background
                and self.expected_workers > 1):
            return
        state = self._require_state()
        clones = self._clone_queue(raw, test_database_name)
        for worker in range(1, self.expected_workers + 1):
            clones.submit(self._names(state).worker(worker), "worker")

    def _own_shared_schema(self, cursor: Any, shared: str, test_database_name: str) -> None:
        """Inside an existing database the shared schema must be one schemaiso made:
        ``public`` and every other schema there belong to the database's owners."""
        alias = self.connection.alias
        row = markers.schema_comment(cursor, shared)
        if row is None:
            create_marked_schema(cursor, shared, "shared", run_id())
        elif (parse_marker(row[0]) or {}).get("role") != "shared":
            raise SchemaIsoError(
                f"schemaiso: schema '{shared}' in the existing database '{test_database_name}' "
                f"(alias '{alias}') was not created by schemaiso as its shared schema, so it "
                "is neither used nor touched. Set SCHEMAISO['SHARED_SCHEMA'] to a name that "
                "does not exist yet (schemaiso creates it), or leave the key out."
            )
        if self._verbosity < 1:
            return
        cursor.execute(
            "SELECT e.extname, n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', %s) ORDER BY 1",
            [shared],
        )
        elsewhere = cursor.fetchall()
        if elsewhere:
            shown = ", ".join(f"{name} (in {schema})" for name, schema in elsewhere)
            self.log(
                f"schemaiso: alias '{alias}': note: extension(s) {shown} were installed "
                f"outside schemaiso's schemas; those schemas are never on a worker's "
                "search_path, so their objects need schema-qualified names there "
                "(e.g. public.similarity()). A migration's CREATE EXTENSION of another "
                f"extension installs it into '{shared}'."
            )

    def _prune_dead_runs(self, raw: Any, test_database_name: str) -> None:
        """Drop schemas left by runs on this host whose process is gone (``kill -9``,
        a crash). Never fails the run: a schema that cannot be dropped now (a lock
        held elsewhere) is left for the next run or ``manage.py schemaiso prune``."""
        try:
            dropped = orphans.prune(raw)
        except Exception as exc:  # noqa: BLE001  (cleanup of others' leftovers is best effort)
            self.log(
                f"schemaiso: warning: could not drop schemas of finished runs in test database "
                f"'{test_database_name}': {str(exc).strip()}. Run `manage.py schemaiso prune`."
            )
            return
        if dropped and self._verbosity >= 1:
            shown = ", ".join(dropped[:6]) + (", ..." if len(dropped) > 6 else "")
            self.log(
                f"schemaiso: dropped {len(dropped)} schema(s) left by runs whose process is "
                f"gone, in test database '{test_database_name}': {shown}"
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

    # -- schemas for the main process and workers -------------------------------

    def _raw_connection(self) -> Any:
        self.connection.ensure_connection()
        return self.connection.connection

    def _plan(self, raw: Any = None, test_database_name: str | None = None) -> clone.ClonePlan:
        """The template's clone script, read once per process after ``migrate``; with
        ``--keepdb``, from the plan cache while the kept template is the same one.

        ``raw`` is a connection to the test database (default: the alias's own,
        once Django has switched it there)."""
        state = self._require_state()
        if self._clone_plan is None or self._clone_plan.template != state["template"]:
            database = test_database_name or self.connection.settings_dict["NAME"]
            key = self._plan_key(state, database) if self._keepdb else None
            cached = plan_cache.load(key) if key else None
            if cached is not None:
                plan, self._template_signature = cached
            else:
                raw = raw or self._raw_connection()
                plan = clone.read_template(raw, state["template"], state["shared"])
                if self._keepdb:
                    self._template_signature = clone.structure_signature(raw, state["template"])
                if key:
                    plan_cache.store(key, plan, self._template_signature)
            for warning in plan.warnings:
                self.log(f"schemaiso: warning: {warning}")
            self._clone_plan = plan
        return self._clone_plan

    def _plan_key(self, state: SchemaState, database: str) -> dict[str, str] | None:
        """The plan cache key of the shared template (a run's own template is never
        kept, so it has no stamp and is not cached)."""
        if not self._template_stamp or state["template"] != self._names(state).template:
            return None
        sd = self.connection.settings_dict
        return plan_cache.plan_key(
            server=f"{sd.get('HOST') or ''}:{sd.get('PORT') or ''}:{self._server_version}",
            database=database, template=state["template"], shared=state["shared"],
            stamp=self._template_stamp,
        )

    @property
    def _reuses_spares(self) -> bool:
        """With ``--keepdb``, schemas are kept as spares and reset for the next run,
        where the plan allows a faithful reset."""
        if self._spares_planned is not None:
            return bool(self._keepdb and self._template_stamp and self._spares_planned)
        plan = self._clone_plan
        return bool(
            self._keepdb and self._template_stamp and plan is not None
            and plan.reset is not None and not plan.reset.declined
        )

    def _schema_exists(self, schema: str) -> bool:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
            return cursor.fetchone() is not None

    def create_schema(self, schema: str, role: str) -> None:
        """Create ``schema`` with our marker and fill it from the template, right now."""
        self._plan()
        raw = self._raw_connection()
        budget = (clone.server_lock_budget(raw, self.concurrent_setups)
                  if self.concurrent_setups > 1 else None)
        self._fill_schema(raw, schema, role, lock_budget=budget)

    def _fill_schema(
        self, raw: Any, schema: str, role: str, lock_budget: int | None = None
    ) -> str | None:
        """Create and clone one schema on ``raw``, or claim and reset a spare for
        it; the spare's old name, or None when cloned. Runs in clone threads too.

        The plan must already be read: threads share it and never touch the
        alias's own connection.
        """
        state = self._require_state()
        plan = self._clone_plan
        assert plan is not None, "read the clone plan in the main thread first"
        if self._reuses_spares and self._template_stamp:
            claimed = spares.claim(
                raw, plan, prefix=state["prefix"], stamp=self._template_stamp,
                template_signature=self._template_signature, target=schema,
                target_marker=markers.run_marker(role, state["run_id"]),
                lock_budget=lock_budget or clone.server_lock_budget(raw),
            )
            if claimed is not None:
                return claimed
        with raw.cursor() as cursor:
            create_marked_schema(cursor, schema, role, state["run_id"])
        clone.clone_schema(raw, plan, schema, lock_budget=lock_budget)
        return None

    def _clone_queue(self, raw: Any = None, test_database_name: str | None = None) -> CloneQueue:
        """The background cloner of this alias, sized to the server's lock table.

        ``raw`` and ``test_database_name`` as for ``_plan``."""
        if self._clones is None:
            self._prepared = []
            database = test_database_name or self.connection.settings_dict["NAME"]
            self._plan(raw, database)
            alone = clone.server_lock_budget(raw or self._raw_connection())  # a quarter of the table
            concurrency = get_config().clone_concurrency or default_concurrency(alone * 4)
            budget = max(1, alone // concurrency)  # = server_lock_budget(conn, concurrency)

            def job(raw: Any, schema: str, role: str) -> None:
                try:
                    started = time.perf_counter()
                    spare = self._fill_schema(raw, schema, role, lock_budget=budget)
                    self._prepared.append(
                        PreparedSchema(schema, spare, time.perf_counter() - started)
                    )
                except SchemaIsoError:
                    raise
                except Exception as exc:
                    raise SchemaIsoError(
                        f"schemaiso: could not create schema '{schema}' for alias "
                        f"'{self.connection.alias}' from template '{self._require_state()['template']}'"
                        f": {str(exc).strip()}"
                    ) from exc

            self._clones = CloneQueue(
                job, lambda: self._raw_test_db_connection(database), concurrency
            )
        return self._clones

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
        self._record_time(
            f"  {describe_prepared(done)} of '{self.connection.alias}' "
            f"({clones.concurrency} at a time, in the background)",
            (clones.last_finished or clones.first_started) - clones.first_started,
        )
        if self._verbosity >= 2:
            template = self._require_state()["template"]
            for item in done:
                how = (f"reset kept spare '{item.spare}'" if item.spare
                       else f"cloned from template '{template}'")
                self.log(
                    f"schemaiso: schema '{item.schema}' of alias '{self.connection.alias}': "
                    f"{how} in {item.seconds:.2f}s"
                )

    def _timed(self, label: str) -> AbstractContextManager[Any]:
        """Time a step for ``--timing`` (Django prints it in the order steps begin)."""
        return self.time_keeper.timed(label) if self.time_keeper is not None else nullcontext()

    def _record_time(self, label: str, seconds: float) -> None:
        """Record a step timed elsewhere (background clones) for ``--timing``."""
        records = getattr(self.time_keeper, "records", None)
        if records is not None:
            records[label].append(seconds)

    def cancel_clones(self) -> None:
        """Stop this alias's background clones (teardown after a failure or Ctrl-C)."""
        if self._clones is not None:
            clones, self._clones = self._clones, None
            self._prepared = []
            clones.cancel()

    def use_main_schema(self) -> None:
        """Move this process off the template into its own schema (cloned once): the
        main schema, or a run member's worker schema (``own_worker_number``)."""
        state = self._require_state()
        if self.own_worker_number is None:
            schema, role = self._names(state).main, "main"
        else:
            schema, role = self._names(state).worker(self.own_worker_number), "worker"
        if (state["role"] == role and state["schema"] == schema) or state["mirror"]:
            return
        self.wait_for_clones()
        if not self._schema_exists(schema):
            with self._timed(f"  Cloning schema '{schema}' of '{self.connection.alias}'"):
                self.create_schema(schema, role)
        self._use_schema(schema, role)

    def follow(self, primary_settings_dict: dict[str, Any]) -> None:
        """Make this mirror alias use the same schema as its primary."""
        primary = get_state(primary_settings_dict)
        if primary is not None:
            self.connection.settings_dict[STATE_KEY] = {**primary, "mirror": True}
            self.connection.close()

    def _clone_test_db(self, suffix: str, verbosity: int, keepdb: bool = False) -> None:
        state = self._require_state()
        schema = self._names(state).worker(int(suffix))
        if not self.clone_in_background:
            if verbosity >= 2:
                self.log(f"schemaiso: cloning schema '{state['template']}' into '{schema}'")
            self.create_schema(schema, "worker")
            return
        clones = self._clone_queue()
        if verbosity >= 2:
            how = (
                f"resetting a kept spare of template '{state['template']}' into '{schema}', "
                "or cloning it" if self._template_is_current and self._reuses_spares
                else f"cloning schema '{state['template']}' into '{schema}'"
            )
            self.log(
                f"schemaiso: alias '{state['alias']}': {how} (in the background, "
                f"{clones.concurrency} at a time)"
            )
        if schema not in clones.submitted:  # else queued by _claim_workers_early
            clones.submit(schema, "worker")

    def get_test_db_clone_settings(self, suffix: str) -> dict[str, Any]:
        state = self.state
        if state is None:
            return super().get_test_db_clone_settings(suffix)  # type: ignore[misc, no-any-return]
        worker = self._names(state).worker(int(suffix))
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
        if not self._schema_exists(state["schema"]):
            self.create_schema(state["schema"], "worker")

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
            return super().destroy_test_db(old_database_name, verbosity, keepdb, suffix)  # type: ignore[misc, no-any-return]
        if self.run_member and suffix is None:
            self.leave_run(old_database_name)
            return None
        self.cancel_clones()
        if suffix is not None:
            # A worker's schema lives in the test database: it goes when the database
            # goes, or with this run's other schemas below when the database stays.
            self.connection.close()
            return None
        try:
            others = self._leave_test_database(keepdb)
            failed = self._failed_schemas(state)
            keep_database = keepdb or others > 0 or self._existing_database or bool(failed)
            # A kept failed schema still uses the shared schema's extensions.
            last_out_of_existing = (
                self._existing_database and not keepdb and not others and not failed
            )
            alias, database = state["alias"], self.connection.settings_dict["NAME"]
            if keep_database:
                action = ("Keeping this run's schemas as spares (dropping those a test "
                          "changed)" if self._reuses_spares else "Dropping this run's schemas")
                with self._timed(f"  {action} of '{alias}' ('{database}')"):
                    self._drop_run_schemas(
                        state, verbosity, keeps_template=not last_out_of_existing, keep=failed
                    )
            if last_out_of_existing:
                self._drop_shared_schemas(state, verbosity)
            self._show_failed(state, failed)
            if others and not keepdb and verbosity >= 1:
                self.log(
                    f"schemaiso: alias '{state['alias']}': leaving test database "
                    f"'{self.connection.settings_dict['NAME']}' in place: {others} other "
                    "run(s) still use it; the last one drops it."
                )
            self.connection.close()
            self.connection.settings_dict[STATE_KEY] = None
            with (
                nullcontext() if keep_database
                else self._timed(f"  Dropping test database '{database}' ('{alias}')")
            ):
                return super().destroy_test_db(old_database_name, verbosity, keep_database)  # type: ignore[misc, no-any-return]
        except (DjangoDatabaseError, self.connection.Database.DatabaseError) as exc:
            raise SchemaIsoError(
                f"schemaiso: PostgreSQL at {self._server_display()} failed while tearing "
                f"down alias '{state['alias']}' (test database "
                f"'{self.connection.settings_dict['NAME']}'): {first_line(exc)}\n"
                "This run's schemas may be left there. Once the server answers again, "
                "the next run on this host drops them (their process is gone), or run "
                "`python manage.py schemaiso prune`."
            ) from exc
        finally:
            self._close_lease()

    def leave_run(self, old_database_name: str | None = None) -> None:
        """A run member's teardown: close this process's connections and lease and
        report what ``finish_run`` needs; the schemas stay until the run ends."""
        state = self._require_state()
        self.cancel_clones()
        self.run_report = RunReport(
            alias=state["alias"], test_database_name=self._test_database_name,
            run_id=state["run_id"], prefix=state["prefix"], shared=state["shared"],
            template=state["template"], schema=state["schema"],
            template_stamp=self._template_stamp, reuses_spares=self._reuses_spares,
            existing_database=self._existing_database,
            keep_failed=bool(state.get("keep_failed")),
            migrated=not self._template_is_current, worker=self.own_worker_number,
            ready=state["role"] in ("main", "worker"),
        )
        self._close_lease()
        close_with_pool(self.connection)
        self.connection.settings_dict[STATE_KEY] = None
        super().destroy_test_db(old_database_name or self._old_database_name, 0, True)  # type: ignore[misc]

    def finish_run(self, report: RunReport, keepdb: bool, verbosity: int) -> None:
        """End a run whose members have all left (the pytest plugin's last step):
        drop its test database, or, when it stays (``keepdb``, other runs, failed
        schemas kept), this run's schemas, or keep them as spares."""
        sd = self.connection.settings_dict
        old_database_name = sd["NAME"]
        name = report["test_database_name"]
        self.run_member = False
        self._test_database_name = name
        self._existing_database = report["existing_database"]
        self._keepdb = keepdb
        self._verbosity = verbosity
        self._template_stamp = report["template_stamp"]
        self._spares_planned = report["reuses_spares"]
        lease = self._lease = self._open_lease(name)
        try:
            lease.acquire_setup("keeping its schemas" if keepdb else "dropping it")
            if not (self._existing_database or self._database_exists(lease.cursor, name)):  # type: ignore[attr-defined]
                self._close_lease()
                return  # another run dropped it already
        except BaseException:
            self._close_lease()
            raise
        sd["NAME"] = name
        sd[STATE_KEY] = SchemaState(
            alias=report["alias"], prefix=report["prefix"], run_id=report["run_id"],
            shared=report["shared"], template=report["template"], schema=None, role="main",
            mirror=False, keep_failed=report["keep_failed"],
        )
        self.destroy_test_db(old_database_name, verbosity, keepdb)

    def _leave_test_database(self, keepdb: bool) -> int:
        """Give up this run's claim on the test database, under the setup lock (held
        until the lease closes, so nobody joins a database being dropped), and
        return how many other runs still use it."""
        if self._lease is None:
            return 0
        self._lease.acquire_setup("keeping its schemas" if keepdb else "dropping it")
        self._lease.leave()
        return self._lease.other_runs()

    def _drop_run_schemas(
        self, state: SchemaState, verbosity: int, *, keeps_template: bool = True,
        keep: list[str] | None = None,
    ) -> None:
        """Drop every schema this run created in the kept database, in small batches,
        except those in ``keep``."""
        names = self._names(state)
        raw = self._raw_connection()
        schemas = [s for s in cleanup.run_schemas(raw, names) if s not in (keep or [])]
        if self._reuses_spares:
            self._keep_as_spares(raw, state, schemas, verbosity)
            return
        if verbosity >= 1 and schemas:
            shared = names.template
            self.log(
                f"schemaiso: dropping {len(schemas)} schema(s) of run {names.run_id} "
                f"for alias '{state['alias']}'"
                + (f"; keeping '{shared}'..." if self._template_stamp and keeps_template else "...")
            )
        cleanup.drop_schemas(raw, schemas)

    # -- keeping the schemas of failed tests ----------------------------------------

    def mark_failed(self) -> None:
        """Mark this process's schema as one where tests failed, for teardown to keep
        (``--keep-failed-schemas``). Never fails the run: the mark is a convenience."""
        state = self.state
        if state is None or state["mirror"] or not state.get("keep_failed") or not state["schema"]:
            return
        schema = state["schema"]
        try:
            with self.connection.cursor() as cursor:
                markers.mark_failed(cursor, schema)
        except (DjangoDatabaseError, self.connection.Database.Error) as exc:
            self.log(f"schemaiso: warning: could not mark schema '{schema}' as failed: "
                     f"{first_line(exc)}")

    def _failed_schemas(self, state: SchemaState) -> list[str]:
        """This run's schemas marked by ``mark_failed``, when they are to be kept."""
        if not state.get("keep_failed"):
            return []
        marked = markers.marked_schemas(self._raw_connection(), self._names(state).run_pattern)
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
        self.log(
            f"schemaiso: kept {len(failed)} schema(s) of alias '{state['alias']}' where tests "
            f"failed, in test database '{sd['NAME']}' (until the next run on this host, or "
            "`manage.py schemaiso prune`). Inspect one with:"
        )
        for schema in failed:
            path = f"SET search_path TO {quote_ident(schema)}, {quote_ident(state['shared'])}"
            self.log(f"    psql {shlex.quote(conninfo)} -c {shlex.quote(path)} -c '\\dt'")

    def _drop_shared_schemas(self, state: SchemaState, verbosity: int) -> None:
        """The last run out of an existing database without ``--keepdb`` drops what
        runs share there (the template, spares, the shared schema): the database
        stays, so nothing else would. The shared schema's extensions go one by one,
        RESTRICT: an object outside our schemas that uses one keeps it, and the schema."""
        raw = self._raw_connection()
        prefix, shared = state["prefix"], state["shared"]
        like = like_escape(prefix + "_") + "%"
        ours = [
            name for name, payload in markers.marked_schemas(raw, like).items()
            if payload.get("role") in ("template", "spare")
        ]
        if verbosity >= 1:
            self.log(
                f"schemaiso: alias '{state['alias']}': last run out of the existing database "
                f"'{self.connection.settings_dict['NAME']}': dropping "
                f"{', '.join([*ours, shared])}."
            )
        cleanup.drop_schemas(raw, ours)
        if markers.marked_schemas(raw, like_escape(shared)).get(shared, {}).get("role") != "shared":
            return  # never drop a schema our marker does not prove ours
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT e.extname FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE n.nspname = %s ORDER BY 1",
                [shared],
            )
            extensions = [row[0] for row in cursor.fetchall()]
        statements = [f"DROP EXTENSION {quote_ident(name)} RESTRICT" for name in extensions]
        statements.append(f"DROP SCHEMA {quote_ident(shared)} RESTRICT")
        with raw.cursor() as cursor:
            try:
                cursor.execute("BEGIN; " + "; ".join(statements) + "; COMMIT")
            except self.connection.Database.Error as exc:
                rollback(cursor)
                self.log(
                    f"schemaiso: warning: kept the shared schema '{shared}' of alias "
                    f"'{state['alias']}': {first_line(exc)}"
                )

    def _keep_as_spares(
        self, raw: Any, state: SchemaState, schemas: list[str], verbosity: int
    ) -> None:
        """Keep this run's schemas for the next ``--keepdb`` run (renamed to spares),
        except those a test changed with DDL, and drop spares beyond what this run
        used, or of an older template."""
        assert self._template_stamp is not None
        prefix = state["prefix"]
        fit, changed = spares.split_by_structure(raw, schemas, state["template"])
        spares.keep(raw, fit, prefix=prefix, run_id=state["run_id"], stamp=self._template_stamp)
        current, stale = spares.by_template(raw, prefix, self._template_stamp)
        surplus = current[len(fit):]
        if verbosity >= 1 and schemas:
            self.log(
                f"schemaiso: keeping {len(fit)} schema(s) of alias '{state['alias']}' "
                f"for the next --keepdb run (reset, not cloned, when it starts)"
                + (f"; dropping {len(changed)} whose tables a test changed (DDL)"
                   if changed else "")
                + (f"; dropping {len(surplus) + len(stale)} unused" if surplus or stale else "")
                + "."
            )
        cleanup.drop_schemas(raw, changed + surplus + stale)


def isolated_creations(initialized_only: bool = True) -> list[SchemaIsolationCreationMixin]:
    """The creation of every schemaiso alias: of the connections this thread has
    opened, or (``initialized_only=False``) of every alias in DATABASES."""
    return [
        c.creation
        for c in connections.all(initialized_only=initialized_only)
        if isinstance(c.creation, SchemaIsolationCreationMixin)
    ]


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
