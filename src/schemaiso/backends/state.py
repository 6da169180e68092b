"""Which schema a connection works in, carried in its settings dict.

The state lives in ``settings_dict`` under :data:`STATE_KEY` because Django already
moves that dict to where it is needed: every thread's connection of an alias shares
it, ``setup_worker_connection`` updates it in place in each worker, and spawned
workers receive it pickled. Django ignores keys it does not know.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from ..conf import get_config
from ..errors import SchemaIsoError
from ..naming import SchemaNames

STATE_KEY = "SCHEMAISO_STATE"


class SchemaState(TypedDict):
    """One alias's schemas for this run."""

    #: The alias that owns the test database: a mirror's state is a copy of its
    #: primary's, so there it names the primary.
    alias: str
    prefix: str
    run_id: str
    shared: str
    template: str
    #: The schema this process's connections use, or None before setup.
    schema: str | None
    #: "template" while migrating, "main" in the main process, "worker" in workers.
    role: str
    #: True when the alias is a test mirror (or a second alias of the same
    #: database): it follows its primary and never creates or drops schemas.
    mirror: bool
    #: ``--keep-failed-schemas``: a process whose tests failed marks its schema so
    #: that teardown keeps it for inspection.
    keep_failed: NotRequired[bool]


class RunReport(TypedDict):
    """What a run member (a pytest-xdist worker) leaves for the end of its run:
    enough to find, keep or drop the run's schemas once every member has gone.
    It travels from worker to controller (pytest-xdist's ``workeroutput``), so it
    holds only plain values."""

    #: The member's state when it left: which schemas, which template.
    state: SchemaState
    test_database_name: str
    #: The run id that built the template (spares of another are stale), or None
    #: for a template of this run alone.
    template_stamp: str | None
    #: Whether the template allows keeping schemas as spares (``--reuse-db``).
    reuses_spares: bool
    existing_database: bool
    #: Whether this member ran ``migrate`` (it built the template).
    migrated: bool
    #: Whether its setup finished (it moved into its own schema).
    ready: bool
    #: The member's worker schema number, or None for the main schema.
    worker: int | None


def new_state(alias: str, run_id: str, *, keep_failed: bool) -> SchemaState:
    """The state of an alias whose setup starts: ``migrate`` goes into the template."""
    config = get_config()
    names = SchemaNames(prefix=config.prefix, run_id=run_id)
    return SchemaState(
        alias=alias, prefix=config.prefix, run_id=run_id,
        shared=config.shared_schema_for(alias), template=names.template,
        schema=names.template, role="template", mirror=False, keep_failed=keep_failed,
    )


def get_state(settings_dict: dict[str, Any]) -> SchemaState | None:
    """The alias's state, or None when schemaiso does not manage it."""
    state = settings_dict.get(STATE_KEY)
    return state if state else None


def search_path(settings_dict: dict[str, Any]) -> list[str] | None:
    """The ``search_path`` every new connection must get, or None to leave it alone."""
    state = get_state(settings_dict)
    if state is None or not state["schema"]:
        return None
    return [state["schema"], state["shared"]]


def require_state(connection: Any) -> SchemaState:
    """The alias's state; a clear error when its test database is not set up."""
    state = get_state(connection.settings_dict)
    if state is None:
        raise SchemaIsoError(
            f"schemaiso: alias '{connection.alias}' has no test schemas yet; "
            "create the test database first."
        )
    return state


def names_of(state: SchemaState) -> SchemaNames:
    """The names of the schemas of the run ``state`` belongs to."""
    return SchemaNames(prefix=state["prefix"], run_id=state["run_id"])


def set_state(connection: Any, **changes: Any) -> None:
    connection.settings_dict[STATE_KEY] = {**require_state(connection), **changes}


def use_schema(connection: Any, schema: str, role: str) -> None:
    """Point every future connection of this alias (all threads) at ``schema``."""
    set_state(connection, schema=schema, role=role)
    close_with_pool(connection)


def close_with_pool(connection: Any) -> None:
    """Close ``connection`` and its psycopg pool, if it has one: a pooled connection
    keeps the search_path it was opened with, so a new schema needs new connections."""
    connection.close()
    close_pool = getattr(connection, "close_pool", None)
    if close_pool is not None:
        close_pool()
