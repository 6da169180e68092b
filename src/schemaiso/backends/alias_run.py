"""One alias's part in one run, as this process knows it.

The parts of setup and teardown (preflight.py, preparation.py, template.py,
provisioning.py, teardown.py) are objects with one job each; this is what they
share, filled in as setup learns it: the test database, the options, the lease,
which template the run uses and whether ``migrate`` can be skipped. A new one is
made for each ``create_test_db``. Which schema connections use lives elsewhere,
in the settings dict (state.py), because Django carries that to every worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..conf import get_config
from ..lease import RunLease
from ..naming import SchemaNames
from ..run_options import RunOptions
from .state import SchemaState, names_of, require_state


@dataclass
class AliasRun:
    """What the parts of one alias's setup share."""

    #: The alias's ``DatabaseCreation`` (ours mixed in): its connection, and the
    #: stock helpers the parts use (``_nodb_cursor``, ``_database_exists``).
    creation: Any
    log: Callable[[str], None]
    test_database_name: str = ""
    #: The alias's NAME before setup switched it to the test database.
    old_database_name: str | None = None
    verbosity: int = 1
    keepdb: bool = False
    #: Inside an existing database (SCHEMAISO['EXISTING_DATABASE']): it is never
    #: created or dropped, and the shared schema is one of schemaiso's own.
    existing_database: bool = False
    #: This run's fingerprint of what ``migrate`` produces (fingerprint.py).
    fingerprint: dict[str, Any] = field(default_factory=dict)
    #: The run id that built the template in use: spares of another template are
    #: stale. None for a template of this run alone (never kept).
    template_stamp: str | None = None
    #: ``--keepdb`` kept a template whose fingerprint matches: no ``migrate``.
    template_is_current: bool = False
    #: How many other runs were using the test database when this one set up.
    other_runs: int = 0
    #: The server's version number, part of the plan cache key.
    server_version: int = 0
    #: This run's locks on its test database, shared with other runs (lease.py).
    lease: RunLease | None = None

    @classmethod
    def start(
        cls, creation: Any, log: Callable[[str], None], test_database_name: str, **facts: Any
    ) -> AliasRun:
        """A run of ``creation``'s alias on ``test_database_name``; the settings
        say whether that is an existing database."""
        existing = get_config().in_existing_database(creation.connection.alias)
        return cls(creation, log, test_database_name, existing_database=existing, **facts)

    @property
    def options(self) -> RunOptions:
        """The options the runner or the pytest plugin handed the alias."""
        options: RunOptions = self.creation.run_options
        return options

    @property
    def connection(self) -> Any:
        return self.creation.connection

    @property
    def alias(self) -> str:
        return str(self.creation.connection.alias)

    @property
    def member(self) -> bool:
        """One of several processes of one run (the pytest plugin's)."""
        return self.options.membership is not None

    def raw_connection(self) -> Any:
        """The alias's own psycopg connection, opened if need be (on the test
        database once Django has switched the alias there)."""
        self.connection.ensure_connection()
        return self.connection.connection

    def state(self) -> SchemaState:
        return require_state(self.connection)

    def names(self) -> SchemaNames:
        return names_of(self.state())

    def close_lease(self) -> None:
        if self.lease is not None:
            lease, self.lease = self.lease, None
            lease.close()
