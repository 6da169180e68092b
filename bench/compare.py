#!/usr/bin/env python3
"""Stock Django vs schemaiso on a generated project of a given size, alternating.

    python3 bench/compare.py --tables 300 --parallel 4 [--rounds 3]

Generates (or reuses) a synthetic project with ``--tables`` models (bench/generate.py),
then runs its suite with ``manage.py test --parallel N --timing``, first under
``django.test.runner.DiscoverRunner``, then under ``schemaiso.Runner``, ``--rounds``
times, on the same server with the same settings, each run with a fresh test
database name. Prints database setup and teardown (Django's --timing), total wall
time and server-side bytes (WAL, data files) per runner, medians over the rounds,
and ends with one line: ``ratio setup=X teardown=Y total=Z`` (schemaiso / stock;
below 1 means schemaiso is faster).

``--keepdb`` measures warm runs instead: each runner first runs once with
``--keepdb``, untimed, into a test database of its own, and every timed run
reuses it (stock Django re-runs ``migrate`` and reuses its clones; schemaiso skips
``migrate`` while the template's fingerprint matches).

Needs only Python 3.11+ and the PostgreSQL server binaries: like tools/demo.py it
installs Django, psycopg and schemaiso into ``.venv-demo`` when this interpreter
lacks them, and without DATABASE_URL it starts a throwaway server (fsync on).
Every database it makes is named ``bench_<hex>*`` and dropped at the end, also on
Ctrl-C. Standard library only at the top level.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "tools"), str(BENCH)]  # neither is a package

import _bootstrap  # noqa: E402
from common import Counters, Scratch, Stats, megabytes, server_url  # noqa: E402
from generate import DEFAULT_PROJECTS, ensure_project  # noqa: E402

PROG = "bench"
RUNNERS = (("stock", "django.test.runner.DiscoverRunner"), ("schemaiso", "schemaiso.Runner"))


@dataclass(frozen=True)
class Run:
    """One ``manage.py test`` run, what its output says and what the server wrote."""

    kind: str
    returncode: int
    output: str
    wall: float
    server: Counters
    #: CPU seconds of ``manage.py test`` and its workers (user + system).
    client_cpu: float

    @property
    def setup(self) -> float | None:
        """Django's "Total database setup", plus schemaiso's "Waiting for schema
        clones": its runner lets the clones finish in the background while the
        system checks run, after Django's setup timer stopped, and waits for them
        before the tests start. Only the wait is added: the checks' own time is
        left out for both runners alike."""
        found = _bootstrap.timing_seconds(self.output, "Total database setup")
        if not found:
            return None
        return found[-1] + sum(self._waiting)

    @property
    def _waiting(self) -> list[float]:
        return _bootstrap.timing_seconds(self.output, r"  Waiting for schema clones")

    @property
    def teardown(self) -> float | None:
        found = _bootstrap.timing_seconds(self.output, "Total database teardown")
        return found[-1] if found else None

    @property
    def migrate(self) -> float | None:
        """The setup's "Creating '<alias>'" part: create the database and migrate."""
        found = _bootstrap.timing_seconds(self.output, r"  Creating '[^']*'")
        return sum(found) if found else None

    @property
    def copies(self) -> float | None:
        """The rest of the setup: stock clones databases, schemaiso clones schemas
        (in the background, then waits for them)."""
        found = _bootstrap.timing_seconds(self.output, r"  Cloning '[^']*'") + self._waiting
        return sum(found) if found else None

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
        return (self.returncode == 0 and self.status == "OK" and self.setup is not None
                and self.teardown is not None)


def run_suite(project: Path, kind: str, runner: str, url: str, test_name: str,
              parallel: int, stats: Stats, keepdb: bool = False) -> Run:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=url,
        BENCH_RUNNER=runner,
        BENCH_TEST_NAME=test_name,
        BENCH_KEEPDB="1" if keepdb else "",
        PYTHONPATH=_bootstrap.child_pythonpath(),
        PYTHONUNBUFFERED="1",  # keeps stdout and stderr lines in order in the one pipe
    )
    argv = [sys.executable, "manage.py", "test", "--parallel", str(parallel), "--noinput",
            "--timing", *(["--keepdb"] if keepdb else [])]
    start_counters = stats.before()
    start_cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace",
        start_new_session=True,  # Ctrl-C is ours to pass on, so we can also stop it for sure
    )
    try:
        output, _ = proc.communicate()
    except BaseException:
        _bootstrap.stop(proc)
        raise
    wall = time.perf_counter() - start
    client_cpu = _children_cpu() - start_cpu
    return Run(kind, proc.returncode, output, wall, stats.after(start_counters), client_cpu)


def _children_cpu() -> float:
    """User + system CPU of every waited-for child process so far (workers included:
    ``manage.py test`` waits for them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- the report -------------------------------------------------------------------------


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"


def _ratio(stock: float | None, schemaiso: float | None, digits: int = 2) -> str:
    if stock is None or schemaiso is None or stock <= 0:
        return "n/a"
    return f"{schemaiso / stock:.{digits}f}"


def report(stock: list[Run], schemaiso: list[Run], note: str) -> None:
    rounds = len(stock)
    title = f"median of {rounds} rounds" if rounds > 1 else "one round"
    print(f"\n{'':22}{'stock':>11}{'schemaiso':>12}{'ratio':>8}   ({title})")
    rows: list[tuple[str, Callable[[Run], float | None], Callable[[float | None], str]]] = [
        ("database setup", lambda r: r.setup, _secs),
        ("  of which migrate", lambda r: r.migrate, _secs),
        ("  of which copies", lambda r: r.copies, _secs),
        ("database teardown", lambda r: r.teardown, _secs),
        ("total wall", lambda r: r.wall, _secs),
        ("total minus migrate", lambda r: None if r.migrate is None else r.wall - r.migrate,
            _secs),
        ("client CPU", lambda r: r.client_cpu, _secs),
        ("server CPU", lambda r: r.server.cpu, _secs),
        ("WAL written", lambda r: float(r.server.wal), megabytes),
        ("data files written", lambda r: None if r.server.written is None
            else float(r.server.written), megabytes),
    ]
    medians: dict[str, tuple[float | None, float | None]] = {}
    for label, metric, fmt in rows:
        a = _bootstrap.median([metric(r) for r in stock])
        b = _bootstrap.median([metric(r) for r in schemaiso])
        medians[label] = (a, b)
        print(f"{label:22}{fmt(a):>11}{fmt(b):>12}{_ratio(a, b):>8}")
    a_run, b_run = stock[-1], schemaiso[-1]
    print(f"{'tests':22}{f'{a_run.status} {a_run.tests}':>11}{f'{b_run.status} {b_run.tests}':>12}")
    if rounds > 1:
        spread = [statistics.pstdev([r.wall for r in runs]) for runs in (stock, schemaiso)]
        print(f"{'(wall spread, stdev)':22}{_secs(spread[0]):>11}{_secs(spread[1]):>12}")
    if note:
        print(f"note: {note}")
    print("setup/teardown: Django's --timing (schemaiso's setup includes its wait for background "
          "clones after the system checks); total wall: the whole `manage.py test` process; "
          "total minus migrate: the same without the `Creating` lines, which run the same "
          "migrate for both runners and carry most of the run-to-run noise; client CPU: "
          "manage.py and its workers; server CPU: every server process (a local server "
          "only); WAL: pg_current_wal_lsn() before/after; data files: blocks written by "
          "checkpointer, bgwriter and backends, with a CHECKPOINT before and after each run "
          "(untimed).")
    print(f"ratio setup={_ratio(*medians['database setup'], digits=3)} "
          f"teardown={_ratio(*medians['database teardown'], digits=3)} "
          f"total={_ratio(*medians['total wall'], digits=3)}", flush=True)


# --- main -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="compare.py",
        description="Stock Django vs schemaiso on a generated project: database setup, "
        "teardown, wall time and bytes written, alternating runs on one server.",
    )
    parser.add_argument("--tables", type=_bootstrap.positive_int, default=300, metavar="N",
                        help="models in the generated project (default 300)")
    parser.add_argument("--parallel", type=_bootstrap.positive_int, default=4, metavar="N",
                        help="manage.py test --parallel N (default 4)")
    parser.add_argument("--rounds", type=_bootstrap.positive_int, default=3, metavar="R",
                        help="stock, schemaiso, stock, schemaiso... R times each; medians "
                        "(default 3)")
    parser.add_argument("--keepdb", action="store_true",
                        help="warm runs: each runner first runs once with --keepdb, untimed, "
                        "then every timed run reuses what that left (manage.py test --keepdb)")
    parser.add_argument("--projects", type=Path, default=DEFAULT_PROJECTS, metavar="DIR",
                        help="where generated projects are cached (default bench/.projects)")
    parser.add_argument("--logs", type=Path, metavar="DIR",
                        help="write each run's full output to DIR/round<R>-<runner>.log")
    return parser.parse_args(argv)


def _fail(run: Run) -> int:
    what = f"exit {run.returncode}, {run.status}"
    if run.returncode == 0 and run.status == "OK":
        what = "no 'Total database setup/teardown took' lines in its --timing output"
    print(f"\n{PROG}: error: the {run.kind} run failed ({what}); last {_bootstrap.TAIL} "
          "lines of its output:", file=sys.stderr)
    print(_bootstrap.tail(run.output), file=sys.stderr, flush=True)
    return 1


def bench(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        try:
            admin_url, described = server_url(PROG, stack)
            project = ensure_project(args.tables, args.projects.resolve())
            # Compile once, untimed: the first run must not pay for writing .pyc files.
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(project)], check=False,
                           stdout=subprocess.DEVNULL)
            scratch = Scratch(PROG, admin_url)
            stack.callback(scratch.drop_all)
            base = scratch.name()
            scratch.create(base)
            stats = Stats(admin_url)
            stack.callback(stats.close)
            _bootstrap.say(PROG, f"server: {described} (server_version_num {stats.version})")
            _bootstrap.say(PROG, f"project: {project} ({args.tables} models)")
            _bootstrap.say(PROG, f"running `manage.py test --parallel {args.parallel}"
                                 f"{' --keepdb' if args.keepdb else ''}` "
                                 f"{args.rounds} time(s) per runner; databases {base}* are "
                                 "dropped at the end")
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
            runs: dict[str, list[Run]] = {kind: [] for kind, _ in RUNNERS}

            def test_name(kind: str, round_no: int) -> str:
                # Warm runs share one kept test database per runner.
                return scratch.name(f"keep_{kind}" if args.keepdb else f"r{round_no}_{kind}")

            if args.keepdb:
                for kind, runner in RUNNERS:
                    print(f"{PROG}: warming up: {kind:9} ... ", end="", flush=True)
                    run = run_suite(project, kind, runner, scratch.url(base), test_name(kind, 0),
                                    args.parallel, stats, keepdb=True)
                    print(f"{run.status} (untimed: creates the kept test database)", flush=True)
                    if not run.ok:
                        return _fail(run)
            for round_no in range(1, args.rounds + 1):
                # Swap who goes first every round, so that whatever the previous run
                # left the server doing (a teardown's checkpoint, autovacuum of the
                # catalog) does not always land on the same runner.
                order = RUNNERS if round_no % 2 else RUNNERS[::-1]
                for kind, runner in order:
                    print(f"{PROG}: round {round_no}/{args.rounds}: {kind:9} ... ", end="",
                          flush=True)
                    run = run_suite(project, kind, runner, scratch.url(base),
                                    test_name(kind, round_no), args.parallel, stats,
                                    keepdb=args.keepdb)
                    if args.logs:
                        (args.logs / f"round{round_no}-{kind}.log").write_text(run.output)
                    print(f"{run.status} {run.tests} tests, setup {_secs(run.setup)} (migrate "
                          f"{_secs(run.migrate)}), teardown {_secs(run.teardown)}, wall "
                          f"{run.wall:.2f}s, CPU client {run.client_cpu:.2f}s server "
                          f"{_secs(run.server.cpu)}", flush=True)
                    if not run.ok:
                        return _fail(run)
                    runs[kind].append(run)
            kept = {test_name(kind, 0) for kind, _ in RUNNERS} if args.keepdb else set()
            left = [name for name in scratch.leftovers()
                    if name != base and name not in kept
                    and not any(name.startswith(k + "_") for k in kept)]  # stock's kept clones
            if left:
                print(f"{PROG}: warning: the runs left databases behind (dropped now): "
                      f"{', '.join(left)}", file=sys.stderr, flush=True)
            report(runs["stock"], runs["schemaiso"], stats.note)
            return 0
        except KeyboardInterrupt:
            print(f"\n{PROG}: interrupted; cleaning up...", file=sys.stderr, flush=True)
            raise


def main(argv: Sequence[str] | None = None) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036  (the venv would get this old Python)
        _bootstrap.die(PROG, f"Python 3.11+ is required, this is {sys.version.split()[0]}")
    args = parse_args(argv)
    try:
        _bootstrap.ensure_dependencies(PROG, __file__)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted while setting up .venv-demo", file=sys.stderr, flush=True)
        return 130
    with _bootstrap.signals_interrupt():
        try:
            return bench(args)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
