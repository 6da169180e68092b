"""The slice of DB-API the engine relies on, so psycopg 3 and psycopg2 both fit."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Protocol


class Cursor(Protocol):
    """The part of a DB-API cursor the engine uses (psycopg 3 and psycopg2)."""

    def execute(self, query: str, params: Any = ..., /) -> object: ...

    def fetchall(self) -> Sequence[Sequence[Any]]: ...

    def close(self) -> object: ...


class Connection(Protocol):
    """An autocommit DB-API connection; the engine never closes it."""

    def cursor(self) -> Cursor: ...


def rollback(cur: Cursor) -> None:
    """Best-effort ROLLBACK: the connection may be gone, and the original error is what matters."""
    with suppress(Exception):
        cur.execute("ROLLBACK")
