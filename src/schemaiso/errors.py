"""The exception users see when schemaiso cannot do what a run needs."""

from __future__ import annotations

from django.core.management.base import CommandError


class SchemaIsoError(CommandError):
    """A problem with settings, privileges or the server that the user must fix.

    It subclasses ``CommandError`` so that ``manage.py test`` prints the message
    alone, without a traceback, and exits non-zero: the message is the interface.
    Every message names the alias, setting or schema involved and what to do.
    """


class CloneError(SchemaIsoError):
    """Copying the template schema failed: it holds something the clone engine cannot copy
    faithfully, or PostgreSQL rejected one of the clone's statements."""


def first_line(exc: BaseException) -> str:
    """A driver error's first line: the rest repeats it or guesses at causes."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
