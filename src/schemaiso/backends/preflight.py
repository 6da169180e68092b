"""Reaching the server and the test database, and checking privileges first.

Every failure here names the alias, host, user or grant involved, before Django's
generic errors would. The cursors it opens are detached from the alias's own
connection: setup runs before that connection may use the test database, and
clone threads must never share it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from django.db import OperationalError as DjangoOperationalError
from django.db.backends.base.base import NO_DB_ALIAS

from ..errors import SchemaIsoError, first_line
from ..lease import RunLease
from ..naming import quote_ident
from ..run_identity import run_id
from .alias_run import AliasRun
from .state import STATE_KEY


class Preflight:
    """Connections for one alias's setup, and the checks that run before it."""

    def __init__(self, run: AliasRun) -> None:
        self.run = run
        self.connection = run.connection

    # -- connections ------------------------------------------------------------

    def server_cursor(self) -> AbstractContextManager[Any]:
        """A cursor for work outside the test database's schemas (the lease, checks).

        Normally on the maintenance database, as Django's ``_nodb_cursor``: a
        session there never keeps the test database from being dropped. Inside an
        existing database, which is never dropped and may be the only one the role
        can connect to, on that database itself.
        """
        if self.run.existing_database:
            return self.test_db_cursor()
        return self.run.creation._nodb_cursor()  # type: ignore[no-any-return]

    def detached_wrapper(self) -> Any:
        """A new, unpooled wrapper for the test database with no schema state.

        It uses Django's "no database" alias, as ``_nodb_cursor`` does, so that
        ``connection_created`` receivers (contrib.postgres's type handlers) leave it
        alone instead of querying the alias's own, not yet usable, connection.
        Django ties a wrapper to the thread that creates it: create it where it is used.
        """
        sd = self.connection.settings_dict
        options = {k: v for k, v in sd["OPTIONS"].items() if k != "pool"}
        return self.connection.__class__(
            {**sd, "NAME": self.run.test_database_name, "OPTIONS": options, STATE_KEY: None},
            alias=NO_DB_ALIAS,
        )

    @contextmanager
    def test_db_cursor(self) -> Iterator[Any]:
        """A cursor on a short-lived, unpooled connection to the test database."""
        conn = self.detached_wrapper()
        try:
            with conn.cursor() as cursor:
                yield cursor
        finally:
            conn.close()

    @contextmanager
    def raw_test_db_connection(self) -> Iterator[Any]:
        """A raw driver connection (autocommit) to the test database, for one clone thread."""
        conn = self.detached_wrapper()
        try:
            conn.ensure_connection()
            yield conn.connection
        finally:
            conn.close()

    def open_lease(self) -> RunLease:
        """The run's lease, on the one maintenance-database session setup needs; a
        failure to connect says which alias, host and user, before Django's generic errors."""
        alias = self.connection.alias
        try:
            return RunLease(self.server_cursor, self.run.test_database_name, self.run.log, run_id())
        except (DjangoOperationalError, self.connection.Database.OperationalError) as exc:
            raise SchemaIsoError(
                f"schemaiso: cannot connect to PostgreSQL for alias '{alias}' at "
                f"{self.server_display()} as user {self._user()}: "
                f"{str(exc).strip()}\nCheck DATABASES['{alias}'] (HOST, PORT, USER, "
                "PASSWORD) and that the server is running."
            ) from exc

    # -- when something fails -----------------------------------------------------

    def server_answers(self) -> bool:
        """Whether a new connection to the server works (after a database error)."""
        try:
            with warnings.catch_warnings():  # Django's "no 'postgres' database" fallback
                warnings.simplefilter("ignore", RuntimeWarning)
                with self.server_cursor() as cursor:
                    cursor.execute("SELECT 1")
        except Exception:  # noqa: BLE001  (any failure means: it does not)
            return False
        return True

    def server_display(self) -> str:
        sd = self.connection.settings_dict
        return f"{sd.get('HOST') or 'local socket'}:{sd.get('PORT') or '5432'}"

    def _user(self) -> str:
        return f"'{self.connection.settings_dict.get('USER') or '(default)'}'"

    def lost_server(self, exc: BaseException) -> SchemaIsoError:
        """The error for a server that went away during setup."""
        return SchemaIsoError(
            f"schemaiso: lost PostgreSQL at {self.server_display()} while setting up "
            f"alias '{self.connection.alias}': {first_line(exc)}\nCheck that the "
            "server is running and reachable, then run the tests again; what this "
            "run created is dropped by the next run on this host."
        )

    # -- checks -------------------------------------------------------------------

    def check_may_create_database(self, cursor: Any) -> None:
        """Fail early, with the alias and grant named, before Django's generic errors."""
        cursor.execute(
            "SELECT current_user, rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        user, can_create_db = cursor.fetchone()
        name = self.run.test_database_name
        exists = self.run.creation._database_exists(cursor, name)
        if not can_create_db and not (self.run.keepdb and exists):
            raise SchemaIsoError(
                f"schemaiso: role '{user}' may not create the test database "
                f"'{name}' for alias '{self.connection.alias}' (it lacks the CREATEDB "
                f"privilege). As a superuser run: ALTER ROLE {quote_ident(user)} CREATEDB;\n"
                "Where that is not possible (managed PostgreSQL), have the test database "
                "created once, grant this role CREATE on it, and set "
                "SCHEMAISO = {'EXISTING_DATABASE': True}: schemaiso then works in schemas "
                "of that database and never creates or drops it (docs/settings.md)."
            )

    def check_existing_database(self) -> None:
        """Inside an existing database: it must exist and take our connection."""
        alias, name = self.connection.alias, self.run.test_database_name
        try:
            with self.test_db_cursor() as cursor:
                cursor.execute("SELECT 1")
        except (DjangoOperationalError, self.connection.Database.OperationalError) as exc:
            if f'"{name}" does not exist' in str(exc):
                raise SchemaIsoError(
                    f"schemaiso: SCHEMAISO['EXISTING_DATABASE'] is on for alias '{alias}', "
                    f"so the tests run inside the existing database '{name}', "
                    "but it does not exist. Set DATABASES"
                    f"['{alias}']['TEST']['NAME'] to the database you were given, or have "
                    f"it created: CREATE DATABASE {quote_ident(name)};"
                ) from exc
            raise SchemaIsoError(
                f"schemaiso: cannot connect to the existing database '{name}' "
                f"of alias '{alias}' at {self.server_display()} as user {self._user()}: "
                f"{str(exc).strip()}\nCheck DATABASES['{alias}'] (HOST, PORT, USER, "
                "PASSWORD, TEST NAME) and that the role may CONNECT to it."
            ) from exc
        if self.run.verbosity >= 1:
            self.run.log(
                f"schemaiso: alias '{alias}': working inside the existing database "
                f"'{name}' (SCHEMAISO['EXISTING_DATABASE']): only schemas "
                "schemaiso creates there are used or dropped; the database stays."
            )

    def check_may_create_schemas(self, cursor: Any) -> None:
        """The role must be able to create schemas in the test database."""
        cursor.execute("SELECT current_user, has_database_privilege(current_database(), 'CREATE')")
        user, can_create = cursor.fetchone()
        if not can_create:
            name = self.run.test_database_name
            raise SchemaIsoError(
                f"schemaiso: role '{user}' may not create schemas in test database "
                f"'{name}' (alias '{self.connection.alias}'). As the database owner run: "
                f"GRANT CREATE ON DATABASE {quote_ident(name)} TO {quote_ident(user)};"
            )
