#!/usr/bin/env python3
"""Run testproject's suite with --parallel under Django's stock runner and under
schemaiso, and print the schemas schemaiso used and the timings side by side.

    python3 tools/demo.py [--parallel N] [--rounds R] [--fast]

Needs only Python 3.11+ and the PostgreSQL server binaries on PATH: when Django,
psycopg or schemaiso cannot be imported, it installs them once into
``<repo>/.venv-demo`` and re-runs itself with that venv's python. Without
DATABASE_URL it starts a throwaway server (tools/pgserver.py); either way the run
gets a fresh ``demo_<hex>`` database, dropped at the end, also on Ctrl-C.
Standard library only at the top level: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))

import _bootstrap  # noqa: E402  (tools/ is not a package)
from _bootstrap import (  # noqa: E402
    REPO,
    TAIL,
    child_pythonpath,
    median,
    redacted,
    signals_ignored,
    signals_interrupt,
    stop,
    tail,
    timing_seconds,
    with_database,
)

TESTPROJECT = REPO / "testproject"
LABELS = ("library", "shop", "isolation")
STOCK = "django.test.runner.DiscoverRunner"
SCHEMAISO = "schemaiso.Runner"


def _say(message: str) -> None:
    _bootstrap.say("demo", message)


def _die(message: str) -> NoReturn:
    _bootstrap.die("demo", message)


def ensure_dependencies() -> None:
    """Return if Django, psycopg and schemaiso import; else set up .venv-demo (once)
    and replace this process with the same command run by the venv's python."""
    _bootstrap.ensure_dependencies("demo", __file__)


# --- step 2: server and database ----------------------------------------------------


class DemoDatabase:
    """``demo_<hex>`` on the server at ``admin_url``, plus what the test runs make of it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"demo_{secrets.token_hex(4)}"
        self.url = with_database(admin_url, self.name)
        self.server_version = ""
        self._attempted = False  # whether there can be anything to drop

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)

    def create(self) -> None:
        import psycopg
        from psycopg import sql

        try:
            with self._connect() as conn:
                self.server_version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]
                self._attempted = True
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        except psycopg.Error as exc:
            _die(f"cannot create database {self.name} on {redacted(self.admin_url)}: {exc}")

    def drop(self) -> None:
        """Drop the demo database and the test databases (and any clones) made from it."""
        if not self._attempted:
            return
        import psycopg
        from psycopg import sql

        test = f"test_{self.name}"
        names = [self.name, test, f"{test}_reports"]
        with signals_ignored():
            try:
                with self._connect() as conn:
                    rows = conn.execute(
                        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                        "ORDER BY datname", [test + "_"],
                    ).fetchall()
                    names += [row[0] for row in rows if row[0] not in names]
                    for name in names:
                        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)))
            except psycopg.Error as exc:
                print(f"demo: warning: could not drop {', '.join(names)}: {exc}",
                      file=sys.stderr, flush=True)


# --- step 3 and 4: the runs -----------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One ``manage.py test`` run and what its output says."""

    kind: str  # "stock" or "schemaiso"
    returncode: int
    output: str  # stdout and stderr, interleaved
    wall: float

    @property
    def setup(self) -> float | None:
        found = timing_seconds(self.output, "Total database setup")
        return found[-1] if found else None

    @property
    def teardown(self) -> float | None:
        found = timing_seconds(self.output, "Total database teardown")
        return found[-1] if found else None

    @property
    def creating(self) -> list[float]:
        return timing_seconds(self.output, r"  Creating '[^']*'")

    @property
    def cloning(self) -> list[float]:
        return timing_seconds(self.output, r"  Cloning '[^']*'")

    @property
    def tests(self) -> int | None:
        found = re.findall(r"^Ran (\d+) tests? in ", self.output, re.MULTILINE)
        return int(found[-1]) if found else None

    @property
    def status(self) -> str:
        found = re.findall(r"^(OK|FAILED)\b", self.output, re.MULTILINE)
        return found[-1] if found else "no result"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.status == "OK"

    @property
    def schemaiso_lines(self) -> list[str]:
        return re.findall(r"^schemaiso: .*$", self.output, re.MULTILINE)


def run_suite(kind: str, runner: str, url: str, parallel: int) -> Run:
    """``manage.py test`` in testproject with ``runner``, output captured."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=url,
        TESTPROJECT_RUNNER=runner,
        PYTHONPATH=child_pythonpath(),
        PYTHONUNBUFFERED="1",  # keeps stdout and stderr lines in order in the one pipe
    )
    argv = [sys.executable, "manage.py", "test", *LABELS, "--parallel", str(parallel),
            "--noinput", "--timing"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=TESTPROJECT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace",
        start_new_session=True,  # Ctrl-C is ours to pass on, so we can also stop it for sure
    )
    try:
        output, _ = proc.communicate()
    except BaseException:
        stop(proc)
        raise
    return Run(kind, proc.returncode, output, time.perf_counter() - start)


# --- step 5: the report ---------------------------------------------------------------


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"


def _ratio(stock: float | None, schemaiso: float | None) -> str:
    return "" if stock is None or schemaiso is None or stock <= 0 else f"{schemaiso / stock:.2f}"


def _against(stock: float, schemaiso: float) -> str:
    """'1.32s against stock's 1.50s (12% less)'."""
    ratio = schemaiso / stock if stock > 0 else 1.0
    if 0.95 <= ratio <= 1.05:  # closer than one run's noise on a shared machine
        change = "about the same"
    else:
        change = f"{abs(ratio - 1):.0%} {'less' if ratio < 1 else 'more'}"
    return f"{schemaiso:.2f}s against stock's {stock:.2f}s ({change})"


def verdict(parallel: int, setup: tuple[float, float], total: tuple[float, float],
            teardown: tuple[float, float] | None) -> str:
    """The report's last line: one sentence on what the (stock, schemaiso) medians
    mean, with the reasons docs/benchmarks.md measured."""
    setup_slower = setup[1] > setup[0] * 1.05
    if setup_slower:
        why = ("on a project this small each of stock's CREATE DATABASE ... TEMPLATE copies "
               "is a cheap file copy, while schemaiso builds each worker's schema by DDL")
    elif setup[1] < setup[0] * 0.95:
        why = ("schemaiso makes its worker schemas in the background while Django runs its "
               "checks, where stock copies a database per worker, one after another")
    else:
        why = ("both migrate once and then copy the result, stock into a database per "
               "worker, schemaiso into a schema per worker")
    total_slower = total[1] > total[0] * 1.05
    if setup_slower and not total_slower and teardown and teardown[1] < teardown[0] * 0.95:
        why += (f", and its teardown drops one database where stock drops {parallel + 1} "
                f"({teardown[1]:.2f}s against {teardown[0]:.2f}s)")
    return (f"In short: at --parallel {parallel} schemaiso's setup took {_against(*setup)} "
            f"and the whole run {_against(*total)}, because {why}; schemaiso wins where migrate is the cost (pytest-xdist migrates "
            "once instead of once per worker, warm --keepdb runs skip it) and where the role "
            "may not create databases (it needs one test database, or none with "
            "SCHEMAISO['EXISTING_DATABASE']); see docs/benchmarks.md.")


def report(stock: list[Run], schemaiso: list[Run], parallel: int) -> None:
    """The schemas schemaiso used, the timings table and what to make of it."""
    print("\nschemaiso's own account of its first run (verbosity 1):")
    for line in schemaiso[0].schemaiso_lines or ["(no 'schemaiso:' lines in its output)"]:
        print("  " + line)

    rounds = len(stock)
    title = f"median of {rounds} rounds" if rounds > 1 else "one round"
    print(f"\n{'':13}{'stock':>9}{'schemaiso':>12}{'ratio':>8}   ({title})")
    rows: list[tuple[str, Callable[[Run], float | None]]] = [
        ("setup", lambda r: r.setup),
        ("teardown", lambda r: r.teardown),
        ("total wall", lambda r: r.wall),
    ]
    medians: dict[str, tuple[float, float] | None] = {}
    for label, metric in rows:
        a, b = median([metric(r) for r in stock]), median([metric(r) for r in schemaiso])
        print(f"{label:13}{_secs(a):>9}{_secs(b):>12}{_ratio(a, b):>8}")
        medians[label] = None if a is None or b is None else (a, b)
    a_run, b_run = stock[-1], schemaiso[-1]
    print(f"{'tests':13}{f'{a_run.status} {a_run.tests}':>9}{f'{b_run.status} {b_run.tests}':>12}")

    migrate = median([sum(r.creating) if r.creating else None for r in schemaiso])
    clones = median([sum(r.cloning) if r.cloning else None for r in schemaiso])
    count = len(schemaiso[-1].cloning)
    if migrate is not None and clones is not None:
        where = (f"schemaiso's setup = migrate once per database into a template schema "
                 f"({migrate:.2f}s) + {count} schema clones ({clones:.2f}s)")
    else:
        where = "schemaiso's setup = migrate once into a template schema + one schema clone per worker"
    print(f"\nnote: {where}; ratio = schemaiso / stock, below 1 means schemaiso is faster.")
    setup, total = medians["setup"], medians["total wall"]
    if setup is not None and total is not None:
        print("\n" + textwrap.fill(verdict(parallel, setup, total, medians["teardown"]), 100,
                                  break_long_words=False, break_on_hyphens=False))


# --- main -----------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo.py",
        description="testproject's suite under Django's stock runner and under schemaiso, "
        "timed side by side.",
    )
    parser.add_argument("--parallel", type=_bootstrap.positive_int, default=2, metavar="N",
                        help="test processes per run (default 2)")
    parser.add_argument("--rounds", type=_bootstrap.positive_int, default=1, metavar="R",
                        help="alternate stock/schemaiso R times, report medians (default 1)")
    parser.add_argument("--fast", action="store_true",
                        help="throwaway server with fsync off (ignored with DATABASE_URL)")
    return parser.parse_args(argv)


def _demo(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        try:
            url = os.environ.get("DATABASE_URL", "")
            server: Any = None
            if url:
                described = f"DATABASE_URL {redacted(url)}"
                if args.fast:
                    _say("--fast ignored: it applies to the throwaway server only")
            else:
                from pgserver import PgServerError, ThrowawayPostgres

                _say("DATABASE_URL is not set: starting a throwaway PostgreSQL "
                     f"(tools/pgserver.py{' --fast' if args.fast else ''})...")
                server = ThrowawayPostgres(fast=args.fast)
                try:
                    stack.enter_context(server)
                except PgServerError as exc:
                    _die(str(exc))
                url, described = server.url, server.describe()
            database = DemoDatabase(url)
            stack.callback(database.drop)
            database.create()
            if server is None:
                described += f" (PostgreSQL {database.server_version})"
            _say(f"server: {described}")
            _say(f"database {database.name} (dropped at the end); running "
                 f"`manage.py test {' '.join(LABELS)} --parallel {args.parallel}` "
                 f"{args.rounds} time(s) per runner")

            runs: dict[str, list[Run]] = {"stock": [], "schemaiso": []}
            for round_no in range(1, args.rounds + 1):
                for kind, runner in (("stock", STOCK), ("schemaiso", SCHEMAISO)):
                    print(f"demo: round {round_no}/{args.rounds}: {kind:9} ({runner}) ... ",
                          end="", flush=True)
                    run = run_suite(kind, runner, database.url, args.parallel)
                    outcome = f"{run.tests} tests" if run.ok else f"exit {run.returncode}"
                    print(f"{run.status} {outcome}, {run.wall:.1f}s", flush=True)
                    if not run.ok:
                        print(f"\n{kind} run failed (exit {run.returncode}); "
                              f"last {TAIL} lines of its output:", file=sys.stderr)
                        print(tail(run.output), file=sys.stderr, flush=True)
                        return 1
                    runs[kind].append(run)
            report(runs["stock"], runs["schemaiso"], args.parallel)
            return 0
        except KeyboardInterrupt:
            print("\ndemo: interrupted; cleaning up...", file=sys.stderr, flush=True)
            raise


def main(argv: Sequence[str] | None = None) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036  (the venv would get this old Python)
        _die(f"Python 3.11+ is required, this is {sys.version.split()[0]}")
    args = _parse_args(argv)
    try:
        ensure_dependencies()
    except KeyboardInterrupt:  # pip is stopped too; the next run checks the venv again
        print("\ndemo: interrupted while setting up .venv-demo", file=sys.stderr, flush=True)
        return 130
    with signals_interrupt():
        try:
            return _demo(args)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
