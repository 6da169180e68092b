#!/usr/bin/env python3
"""Stock Django vs schemaiso on a generated project of a given size, alternating.

    python3 bench/compare.py --tables 300 --parallel 4 [--rounds 3] [--pytest] [--transactional N]

Generates (or reuses) a synthetic project with ``--tables`` models (bench/generate.py),
then runs its suite with ``manage.py test --parallel N --timing``, first under
``django.test.runner.DiscoverRunner``, then under ``schemaiso.Runner``, ``--rounds``
times, on the same server with the same settings, each run with a fresh test
database name. Prints database setup and teardown (Django's --timing), total wall
time and server-side bytes (WAL, data files) per runner, medians over the rounds,
and ends with one line: ``ratio setup=X teardown=Y total=Z tests=T`` (schemaiso /
stock; below 1 means schemaiso is faster), where ``tests`` is the test phase: total
wall minus setup and teardown (Python's start, the system checks, the tests).

``--transactional N`` adds N TransactionTestCase tests to the project, each
writing a few rows into a few models and leaving the whole project to its flush
(no ``available_apps``), as most projects' do (bench/generate.py): the ``tests``
ratio then measures the flush after each of them. It leaves out what else makes
real suites' transactional tests slow (a live server, HTTP, fixtures): those cost
the same under both runners.

``--keepdb`` measures warm runs instead: each runner first runs once with
``--keepdb``, untimed, into a test database of its own, and every timed run
reuses it (stock Django re-runs ``migrate`` and reuses its clones; schemaiso skips
``migrate`` while the template's fingerprint matches).

``--snapshot`` measures a CI job whose cache step brought a schemaiso snapshot
back: schemaiso first runs once, untimed, writing a snapshot of the migrated
template into a scratch directory, and every timed schemaiso run starts on a fresh
test database (no kept template) and restores that snapshot instead of migrating.
Stock Django has no such cache and migrates, as in the default mode. Without
``--snapshot`` every schemaiso run gets an empty snapshot directory of its own:
it writes a snapshot (the default, so its cost counts) and never restores one.

``--pytest`` runs the same suite with ``pytest -n N`` (pytest-django, pytest-xdist)
instead: plain pytest-django ("stock", one database per worker), then with
``-p schemaiso.pytest_plugin``. pytest-django prints no timing: both runs load
bench/pytest_timing.py, which times the ``django_db_setup`` fixture in the
workers and the controller's session finish, and prints one line this script
reads. With ``--keepdb`` every run gets ``--reuse-db`` (the warm-up as above).

Needs only Python 3.11+ and the PostgreSQL server binaries: like tools/demo.py it
installs Django, psycopg and schemaiso into ``.venv-demo`` when this interpreter
lacks them, and without DATABASE_URL it starts a throwaway server (fsync on).
Every database it makes is named ``bench_<hex>*`` and dropped at the end, also on
Ctrl-C. Standard library only at the top level.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
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
#: --pytest: what each runner adds to the pytest command line.
PYTEST_OPTIONS: dict[str, tuple[str, ...]] = {
    "stock": (),
    "schemaiso": ("-p", "schemaiso.pytest_plugin"),
}
#: --pytest needs these (module: distribution) besides Django, psycopg and schemaiso.
PYTEST_PACKAGES = {"pytest": "pytest", "pytest_django": "pytest-django", "xdist": "pytest-xdist"}


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

    #: What setup and teardown are read from, for the error when they are missing.
    TIMING = "'Total database setup/teardown took' lines in its --timing output"

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


# bench/pytest_timing.py's line (its TAG); seconds, or n/a.
_PYTEST_TIMING = re.compile(
    r"^bench-timing: setup=(?P<setup>\S+) teardown=(?P<teardown>\S+) workers=(?P<workers>\d+) "
    r"sessionfinish=(?P<sessionfinish>\S+)\r?$", re.MULTILINE)
# pytest's last line: "==== 1 failed, 17 passed in 3.17s ====" (plus " (0:01:03)" past
# a minute).
_PYTEST_SUMMARY = re.compile(
    r"^=+ (?P<counts>.+?) in \d+(?:\.\d+)?s(?: \([\d:.]+\))? =+\r?$", re.MULTILINE)


@dataclass(frozen=True)
class PytestRun(Run):
    """One ``pytest -n N`` run (--pytest): its times from bench/pytest_timing.py's
    line, its outcome from pytest's summary line. Nothing tells migrate from the
    copies here: the setup is one figure."""

    TIMING = "'bench-timing:' line (bench/pytest_timing.py) in its output"

    def _timing(self, name: str) -> float | None:
        found = list(_PYTEST_TIMING.finditer(self.output))
        if not found or found[-1][name] == "n/a":
            return None
        return float(found[-1][name])

    @property
    def setup(self) -> float | None:
        """The ``django_db_setup`` fixture's setup in the slowest worker."""
        return self._timing("setup")

    @property
    def teardown(self) -> float | None:
        """That fixture's teardown and the worker's session finish in the slowest
        worker, plus the controller's ``pytest_sessionfinish`` (where schemaiso drops
        its test database)."""
        return self._timing("teardown")

    @property
    def sessionfinish(self) -> float | None:
        return self._timing("sessionfinish")

    @property
    def migrate(self) -> float | None:
        return None

    @property
    def copies(self) -> float | None:
        return None

    @property
    def _counts(self) -> dict[str, int] | None:
        found = list(_PYTEST_SUMMARY.finditer(self.output))
        if not found:
            return None
        return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", found[-1]["counts"])}

    @property
    def tests(self) -> int | None:
        counts = self._counts
        if counts is None:
            return None
        return sum(counts.get(word, 0) for word in ("passed", "failed", "skipped", "xfailed",
                                                    "xpassed"))

    @property
    def status(self) -> str:
        counts = self._counts
        if counts is None:
            return "no result"
        return "FAILED" if any(counts.get(word) for word in ("failed", "error", "errors")) else "OK"


def suite_env(url: str, runner: str, test_name: str = "", keepdb: bool = False,
              pytest: bool = False, snapshot_dir: str = "") -> dict[str, str]:
    """The environment of a run: the generated settings read it (BENCH_RUNNER is
    also how the suite knows it runs under stock --keepdb or --reuse-db, whose kept
    databases are stale; pytest itself ignores TEST_RUNNER)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"
           # Neither our own pytest's (when a test runs this script) nor the user's
           # PYTEST_ADDOPTS: both runs get the same command line and nothing else.
           and not (pytest and k.startswith("PYTEST_"))}
    pythonpath = _bootstrap.child_pythonpath()
    env.update(
        DATABASE_URL=url,
        BENCH_RUNNER=runner,
        BENCH_TEST_NAME=test_name,
        BENCH_KEEPDB="1" if keepdb else "",
        # schemaiso's snapshots: the directory of this run ("" turns them off).
        SCHEMAISO_SNAPSHOT_DIR=snapshot_dir,
        # bench/ last: `-p pytest_timing` imports from there.
        PYTHONPATH=os.pathsep.join([pythonpath, str(BENCH)]) if pytest else pythonpath,
        PYTHONUNBUFFERED="1",  # keeps stdout and stderr lines in order in the one pipe
    )
    return env


def pytest_argv(kind: str, parallel: int | None, keepdb: bool = False) -> list[str]:
    """pytest's command line; ``parallel`` None: no xdist, one process."""
    # No cache provider: nothing written into the project, no state between runs.
    return [sys.executable, "-m", "pytest", *(["-n", str(parallel)] if parallel else []),
            "-p", "pytest_timing", *PYTEST_OPTIONS[kind], "-p", "no:cacheprovider",
            "--color=no", *(["--reuse-db"] if keepdb else [])]


def communicate(argv: Sequence[str], project: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` in ``project``: (exit code, stdout and stderr in one)."""
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
    return proc.returncode, output


def run_suite(project: Path, kind: str, runner: str, url: str, test_name: str,
              parallel: int, stats: Stats, keepdb: bool = False, pytest: bool = False,
              snapshot_dir: str = "") -> Run:
    env = suite_env(url, runner, test_name, keepdb, pytest, snapshot_dir)
    if pytest:
        argv = pytest_argv(kind, parallel, keepdb)
    else:
        argv = [sys.executable, "manage.py", "test", "--parallel", str(parallel), "--noinput",
                "--timing", *(["--keepdb"] if keepdb else [])]
    start_counters = stats.before()
    start_cpu = _children_cpu()
    start = time.perf_counter()
    returncode, output = communicate(argv, project, env)
    wall = time.perf_counter() - start
    client_cpu = _children_cpu() - start_cpu
    run_class = PytestRun if pytest else Run
    return run_class(kind, returncode, output, wall, stats.after(start_counters), client_cpu)


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


Row = tuple[str, Callable[[Run], float | None], Callable[[float | None], str]]


def _sessionfinish(run: Run) -> float | None:
    return run.sessionfinish if isinstance(run, PytestRun) else None


def _in_workers(run: Run) -> float | None:
    finish = _sessionfinish(run)
    return None if run.teardown is None or finish is None else run.teardown - finish


def _test_phase(run: Run) -> float | None:
    """The run's wall time outside database setup and teardown."""
    if run.setup is None or run.teardown is None:
        return None
    return run.wall - run.setup - run.teardown


def report(stock: list[Run], schemaiso: list[Run], note: str) -> None:
    rounds = len(stock)
    pytest = isinstance(stock[0], PytestRun)
    title = f"median of {rounds} rounds" if rounds > 1 else "one round"
    print(f"\n{'':22}{'stock':>11}{'schemaiso':>12}{'ratio':>8}   ({title})")
    # manage.py test --timing splits the setup into migrate and copies; pytest's
    # timing plugin splits the teardown into the workers' and the controller's part.
    setup_parts: list[Row] = [] if pytest else [
        ("  of which migrate", lambda r: r.migrate, _secs),
        ("  of which copies", lambda r: r.copies, _secs),
    ]
    teardown_parts: list[Row] = [
        ("  of which workers", _in_workers, _secs),
        ("  of which controller", _sessionfinish, _secs),
    ] if pytest else []
    minus_migrate: list[Row] = [] if pytest else [
        ("total minus migrate", lambda r: None if r.migrate is None else r.wall - r.migrate,
            _secs),
    ]
    rows: list[Row] = [
        ("database setup", lambda r: r.setup, _secs),
        *setup_parts,
        ("database teardown", lambda r: r.teardown, _secs),
        *teardown_parts,
        ("total wall", lambda r: r.wall, _secs),
        ("tests (wall-setup-td)", _test_phase, _secs),
        *minus_migrate,
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
    if pytest:
        print("setup/teardown: bench/pytest_timing.py: setup is the django_db_setup fixture's "
              "setup in the slowest xdist worker; teardown is that fixture's teardown plus the "
              "worker's own pytest_sessionfinish in the slowest worker (workers: schemaiso's "
              "workers leave the run there), plus the controller's whole pytest_sessionfinish "
              "(controller: schemaiso drops its test database there; for both runners it "
              "also holds xdist stopping the workers and the terminal summary); total wall: "
              "the whole `pytest` process; client CPU: pytest and its workers; ", end="")
    else:
        print("setup/teardown: Django's --timing (schemaiso's setup includes its wait for "
              "background clones after the system checks); total wall: the whole `manage.py "
              "test` process; total minus migrate: the same without the `Creating` lines, "
              "which run the same migrate for both runners and carry most of the run-to-run "
              "noise; client CPU: manage.py and its workers; ", end="")
    print("server CPU: every server process (a local server only); WAL: pg_current_wal_lsn() "
          "before/after; data files: blocks written by checkpointer, bgwriter and backends, "
          "with a CHECKPOINT before and after each run (untimed).")
    print(f"ratio setup={_ratio(*medians['database setup'], digits=3)} "
          f"teardown={_ratio(*medians['database teardown'], digits=3)} "
          f"total={_ratio(*medians['total wall'], digits=3)} "
          f"tests={_ratio(*medians['tests (wall-setup-td)'], digits=3)}", flush=True)


# --- main -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="compare.py",
        description="Stock Django vs schemaiso on a generated project: database setup, "
        "teardown, wall time and bytes written, alternating runs on one server.",
    )
    parser.add_argument("--tables", type=_bootstrap.positive_int, default=300, metavar="N",
                        help="models in the generated project (default 300)")
    parser.add_argument("--parallel", "-n", type=_bootstrap.positive_int, default=4,
                        metavar="N", help="manage.py test --parallel N, or pytest -n N "
                        "(default 4)")
    parser.add_argument("--rounds", type=_bootstrap.positive_int, default=3, metavar="R",
                        help="stock, schemaiso, stock, schemaiso... R times each; medians "
                        "(default 3)")
    parser.add_argument("--keepdb", action="store_true",
                        help="warm runs: each runner first runs once with --keepdb, untimed, "
                        "then every timed run reuses what that left (manage.py test --keepdb; "
                        "with --pytest, pytest --reuse-db)")
    parser.add_argument("--snapshot", action="store_true",
                        help="schemaiso restores its template from a snapshot made once, "
                        "untimed, on a fresh test database every run (a CI cache hit); stock "
                        "migrates")
    parser.add_argument("--pytest", action="store_true",
                        help="run the suite with pytest -n N (pytest-django, pytest-xdist): "
                        "plain, then with -p schemaiso.pytest_plugin")
    parser.add_argument("--transactional", type=_bootstrap.positive_int, default=None,
                        metavar="N", help="add N TransactionTestCase tests, each writing a few "
                        "rows and flushing the whole project")
    parser.add_argument("--projects", type=Path, default=DEFAULT_PROJECTS, metavar="DIR",
                        help="where generated projects are cached (default bench/.projects)")
    parser.add_argument("--logs", type=Path, metavar="DIR",
                        help="write each run's full output to DIR/round<R>-<runner>.log")
    args = parser.parse_args(argv)
    if args.snapshot and args.keepdb:
        parser.error("--snapshot measures fresh test databases; it does not go with --keepdb")
    return args


def _package_dir(name: str) -> str:
    """Where the package ``name`` that this interpreter imports lives."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations
    return list(spec.submodule_search_locations)[0]


def _fail(run: Run) -> int:
    what = f"exit {run.returncode}, {run.status}"
    if run.returncode == 0 and run.status == "OK":
        what = f"no {run.TIMING}"
    print(f"\n{PROG}: error: the {run.kind} run failed ({what}); last {_bootstrap.TAIL} "
          "lines of its output:", file=sys.stderr)
    print(_bootstrap.tail(run.output), file=sys.stderr, flush=True)
    return 1


def collects(project: Path, scratch: Scratch) -> bool:
    """--pytest: collect the suite once per runner, untimed, in one process. The first
    timed run must not pay for pytest's rewritten test modules (written to
    __pycache__ on first import) either, and a plugin that does not load shows now,
    not after a full stock run."""
    for kind, runner in RUNNERS:
        # A database name under the prefix in case a plugin makes anything.
        env = suite_env(scratch.url(scratch.name()), runner, scratch.name(f"collect_{kind}"),
                        pytest=True)
        returncode, output = communicate([*pytest_argv(kind, None), "--collect-only", "-q"],
                                         project, env)
        if returncode != 0:
            print(f"{PROG}: error: `pytest --collect-only` with the {kind} options failed "
                  f"(exit {returncode}); last {_bootstrap.TAIL} lines of its output:",
                  file=sys.stderr)
            print(_bootstrap.tail(output), file=sys.stderr, flush=True)
            return False
    return True


def ensure_pytest() -> None:
    """--pytest also needs pytest, pytest-django and pytest-xdist. .venv-demo (made by
    _bootstrap) gets them from schemaiso's [test] extra, but one made before that
    extra listed pytest-xdist lacks it: what is missing is added to it now. Any other
    interpreter must have them already: this script installs nothing into an
    environment it did not make."""
    missing = [package for module, package in PYTEST_PACKAGES.items()
               if importlib.util.find_spec(module) is None]
    if not missing:
        return
    packages = " ".join(missing)
    if Path(sys.prefix).resolve() != _bootstrap.VENV.resolve():
        _bootstrap.die(PROG, f"--pytest needs {packages}, which {sys.executable} lacks "
                             f"(`{sys.executable} -m pip install {packages}`)")
    _bootstrap.say(PROG, f"installing {packages} into {_bootstrap.VENV.name} for --pytest...")
    _bootstrap.run_quietly(PROG, [sys.executable, "-m", "pip", "install", "--quiet", *missing],
                           f"pip install {packages}")


def bench(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        try:
            admin_url, described = server_url(PROG, stack)
            project = ensure_project(args.tables, args.projects.resolve(), args.transactional or 0)
            # Compile once, untimed: the first run must not pay for writing .pyc files.
            # schemaiso too, as an install from a wheel is: an editable install of this
            # checkout has none, and under PYTHONDONTWRITEBYTECODE every run would compile
            # its sources again (70 ms of its test phase), where Django's come compiled.
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(project),
                            _package_dir("schemaiso")], check=False,
                           stdout=subprocess.DEVNULL)
            scratch = Scratch(PROG, admin_url)
            stack.callback(scratch.drop_all)
            base = scratch.name()
            scratch.create(base)
            stats = Stats(admin_url)
            stack.callback(stats.close)
            _bootstrap.say(PROG, f"server: {described} (server_version_num {stats.version})")
            transactional = (f", {args.transactional} more TransactionTestCase tests"
                             if args.transactional else "")
            _bootstrap.say(PROG, f"project: {project} ({args.tables} models{transactional})")
            if args.pytest:
                command = (f"pytest -n {args.parallel}{' --reuse-db' if args.keepdb else ''}` "
                           "(schemaiso: `-p schemaiso.pytest_plugin`)")
            else:
                command = (f"manage.py test --parallel {args.parallel}"
                           f"{' --keepdb' if args.keepdb else ''}`")
            if args.snapshot:
                command += " (schemaiso restoring a snapshot on a fresh test database)"
            _bootstrap.say(PROG, f"running `{command} {args.rounds} time(s) per runner; "
                                 f"databases {base}* are dropped at the end")
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
            if args.pytest and not collects(project, scratch):
                return 1
            runs: dict[str, list[Run]] = {kind: [] for kind, _ in RUNNERS}

            def test_name(kind: str, round_no: int) -> str:
                # Warm runs share one kept test database per runner.
                return scratch.name(f"keep_{kind}" if args.keepdb else f"r{round_no}_{kind}")

            snapshots = Path(stack.enter_context(tempfile.TemporaryDirectory()))

            def snapshot_dir(kind: str, round_no: int) -> str:
                """--snapshot: the one directory the warm-up wrote; else an empty one."""
                if kind != "schemaiso":
                    return ""
                where = snapshots / ("made" if args.snapshot else f"r{round_no}")
                where.mkdir(exist_ok=True)
                return str(where)

            if args.snapshot:
                print(f"{PROG}: making the snapshot: schemaiso ... ", end="", flush=True)
                run = run_suite(project, "schemaiso", dict(RUNNERS)["schemaiso"],
                                scratch.url(base), scratch.name("snapshot"), args.parallel,
                                stats, pytest=args.pytest, snapshot_dir=snapshot_dir("schemaiso", 0))
                made = len(list((snapshots / "made").glob("*.snapshot")))
                print(f"{run.status} (untimed: wrote {made} snapshot(s))", flush=True)
                if not run.ok or not made:
                    return _fail(run)

            if args.keepdb:
                for kind, runner in RUNNERS:
                    print(f"{PROG}: warming up: {kind:9} ... ", end="", flush=True)
                    run = run_suite(project, kind, runner, scratch.url(base), test_name(kind, 0),
                                    args.parallel, stats, keepdb=True, pytest=args.pytest,
                                    snapshot_dir=snapshot_dir(kind, 0))
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
                                    keepdb=args.keepdb, pytest=args.pytest,
                                    snapshot_dir=snapshot_dir(kind, round_no))
                    if args.logs:
                        (args.logs / f"round{round_no}-{kind}.log").write_text(run.output)
                    migrate = "" if args.pytest else f" (migrate {_secs(run.migrate)})"
                    print(f"{run.status} {run.tests} tests, setup {_secs(run.setup)}{migrate}, "
                          f"teardown {_secs(run.teardown)}, wall {run.wall:.2f}s, CPU client "
                          f"{run.client_cpu:.2f}s server {_secs(run.server.cpu)}", flush=True)
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
            note = stats.note
            if args.snapshot:
                note = ((note + "; ") if note else "") + (
                    "--snapshot: every schemaiso run restored its template from a snapshot "
                    "made once, untimed, on a fresh test database (its 'migrate' is that "
                    "restore); stock migrated")
            report(runs["stock"], runs["schemaiso"], note)
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
        if args.pytest:
            ensure_pytest()
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
