"""Which schema a connection works in, carried in its settings dict.

The state lives in ``settings_dict`` under :data:`STATE_KEY` because Django already
moves that dict to where it is needed: every thread's connection of an alias shares
it, ``setup_worker_connection`` updates it in place in each worker, and spawned
workers receive it pickled. Django ignores keys it does not know.
"""

from __future__ import annotations

from typing import Any, TypedDict

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
