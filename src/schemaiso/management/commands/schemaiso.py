"""``manage.py schemaiso list``, ``prune`` and ``snapshots``.

Needs ``"schemaiso"`` in ``INSTALLED_APPS`` (only for this command; the runner
works without it). ``list`` and ``prune`` look at the test database of every
PostgreSQL alias (or of ``--database``), on the server the alias points at;
``snapshots`` looks at the snapshot directory (snapshot/store.py).
"""

from __future__ import annotations

import argparse
import copy
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from ... import orphans

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``7d`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise CommandError(
            f"schemaiso: --older-than {text!r}: give a number and a unit, e.g. 30m, 2h or 7d."
        )
    return float(match[1]) * _UNITS[match[2]]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _size(value: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _accept_common_options(parser: CommandParser, subparser: CommandParser) -> None:
    """Let ``subparser`` take the command's options too (``--settings``, ``-v``,
    ``--traceback``, ``--database``, ...), so that they work after ``list`` or ``prune``.

    Once argparse meets the subcommand, the rest of the line goes to the subparser,
    which rejects the options it does not know. Each copy defaults to SUPPRESS, so
    that a value given after the subcommand wins and one given before it is kept.
    (``manage.py`` applies ``--settings`` and ``--pythonpath`` from anywhere on the
    line before it loads the command; the copies are what keep them from failing
    the parse afterwards.)
    """
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        common = copy.copy(action)
        common.default = argparse.SUPPRESS
        subparser._add_action(common)


class Command(BaseCommand):
    help = (
        "List schemaiso's schemas in the test databases, or drop those left by runs that "
        "are gone (prune). Schemas without schemaiso's marker are never touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", metavar="ALIAS",
                            help="only this alias's test database (default: all)")
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="show every schemaiso schema")
        prune = sub.add_parser("prune", help="drop schemas of runs whose process is gone")
        prune.add_argument(
            "--older-than", metavar="AGE", type=parse_duration,
            help="also drop schemas older than AGE (30m, 2h, 7d) whose run cannot be "
            "checked from here (another host); templates are never dropped",
        )
        prune.add_argument("--dry-run", action="store_true",
                           help="only show what would be dropped")
        snapshots = sub.add_parser(
            "snapshots", help="list the template snapshots in the snapshot directory")
        snapshots.add_argument(
            "--prune", action="store_true",
            help="remove all but the newest SCHEMAISO['SNAPSHOT_KEEP'] snapshots (or --keep), "
            "and every file that cannot be read")
        snapshots.add_argument("--keep", type=int, metavar="N",
                               help="with --prune: how many snapshots to keep")
        for each in (listing, prune, snapshots):
            _accept_common_options(parser, each)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "snapshots":
            from ._snapshots import handle_snapshots

            handle_snapshots(self.stdout.write, options.get("database"),
                             prune=options["prune"], keep=options["keep"])
            return
        for alias, name, raw in self._test_databases(options.get("database")):
            try:
                if options["action"] == "list":
                    self._list(alias, name, raw)
                else:
                    self._prune(alias, name, raw, options["older_than"], options["dry_run"])
            finally:
                raw.close()

    def _test_databases(self, only: str | None) -> list[tuple[str, str, Any]]:
        """(alias, test database name, raw connection) for each existing test database."""
        aliases = [only] if only else list(connections)
        if only and only not in connections:
            raise CommandError(f"schemaiso: no database alias '{only}' in DATABASES.")
        found: list[tuple[str, str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for alias in aliases:
            connection = connections[alias]
            if connection.vendor != "postgresql":
                continue
            sd = connection.settings_dict
            if sd["TEST"].get("MIRROR"):
                continue
            name = connection.creation._get_test_db_name()  # type: ignore[attr-defined]
            key = (sd.get("HOST"), sd.get("PORT"), name)
            if key in seen:
                continue
            seen.add(key)
            # A wrapper of the alias's class for the test database, apart from the
            # alias's own connection and without a pool.
            options = {k: v for k, v in sd["OPTIONS"].items() if k != "pool"}
            wrapper = type(connection)({**sd, "NAME": name, "OPTIONS": options}, alias=alias)
            try:
                wrapper.ensure_connection()
            except Exception as exc:
                if f'"{name}" does not exist' in str(exc):
                    self.stdout.write(f"{alias}: no test database '{name}'.")
                    continue
                raise CommandError(
                    f"schemaiso: cannot connect to test database '{name}' of alias '{alias}': "
                    f"{str(exc).strip()}"
                ) from exc
            found.append((alias, name, wrapper))
        return found

    def _list(self, alias: str, name: str, wrapper: Any) -> None:
        schemas = orphans.list_schemas(wrapper.connection)
        self.stdout.write(f"{alias}: test database '{name}', {len(schemas)} schemaiso schema(s)")
        if not schemas:
            return
        header = ("schema", "role", "run", "host", "pid", "status", "age", "fingerprint", "size")
        rows = [header] + [
            (s.name, s.role + (" (failed)" if s.failed else ""), s.run_id, s.host, str(s.pid or "?"), s.status,
             _age(s.age_seconds), s.fingerprint or "-", _size(s.size_bytes))
            for s in schemas
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            cells = (value.ljust(width) for value, width in zip(row, widths, strict=True))
            self.stdout.write("  " + "  ".join(cells).rstrip())

    def _prune(self, alias: str, name: str, wrapper: Any, older_than: float | None,
               dry_run: bool) -> None:
        dropped = orphans.prune(wrapper.connection, older_than=older_than, dry_run=dry_run)
        verb = "would drop" if dry_run else "dropped"
        if not dropped:
            self.stdout.write(f"{alias}: test database '{name}': no orphan schemas.")
            return
        self.stdout.write(f"{alias}: test database '{name}': {verb} {len(dropped)} schema(s):")
        for schema in dropped:
            self.stdout.write(f"  {schema}")
