#!/usr/bin/env python3
"""Check schemaiso against Django's own test suite: run Django's ``tests/runtests.py``
on PostgreSQL under Django's stock runner, then under ``schemaiso.Runner``, and report
every test whose outcome differs.

    DATABASE_URL=postgres://user:pw@host:port/db python3 tools/django_suite.py --django 5.2.19
    DATABASE_URL=... python3 tools/django_suite.py --django 6.1.3 \\
        --python "$(pyenv root)/versions/3.12.1/bin/python" backends.base queries

The first run for a (Django, Python) pair downloads Django's sdist from PyPI, extracts it
and builds a venv under ``--work`` (about a minute); later runs reuse both. The venv has
schemaiso from this checkout, editable: a run tests the working tree as it is. With the
default labels (7,760 tests on Django 5.2) each runner takes about 3.5 minutes at
``--parallel 2`` on two cores, 7 minutes for both; a few labels take seconds. The role in
DATABASE_URL must be able to create databases and extensions (a superuser). Test
databases are named ``test_djsuite_<runner>_<version>_<alias>``; a run stopped by
``--timeout`` leaves them, and the next run replaces them. Exit status 0 when no test
that passes under the stock runner fails (or does not run) under schemaiso, else 1.
A manual check: it does not run in CI. Standard library only at the top level.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
RUNNERS = ("stock", "schemaiso")
# Database-heavy labels: they exercise what schemaiso changes (test database creation and
# cloning, search_path, sequences, extensions, introspection, transactions, fixtures).
DEFAULT_LABELS = [
    "backends", "postgres_tests", "migrations", "schema", "transactions", "test_utils",
    "queries", "fixtures", "fixtures_regress", "serializers", "model_fields", "model_forms",
    "basic", "aggregation", "annotations", "expressions", "lookup", "custom_lookups", "delete",
    "update", "bulk_create", "get_or_create", "select_for_update", "select_related",
    "prefetch_related", "many_to_one", "many_to_many", "one_to_one", "model_inheritance",
    "proxy_models", "contenttypes_tests", "auth_tests", "sessions_tests", "cache",
    "introspection", "inspectdb", "db_functions", "constraints", "indexes", "ordering",
    "raw_query",
]
# It times the parser, so it fails at random on a busy machine, under either runner.
IGNORED = re.compile(r"^serializers\..*\.test_crafted_xml_performance$")
# Left out of tests/requirements/*.txt: they compile C code against system libraries, or
# serve only tests outside the database labels.
NOT_INSTALLED = {
    "pylibmc": "needs libmemcached headers to compile",
    "pywatchman": "compiles a C extension; autoreload tests only",
    "selenium": "browser tests only",
    "black": "formatting check only",
}
SETTINGS_MODULE = "schemaiso_suite_settings"
SETTINGS = '''\
"""Written by tools/django_suite.py: this Django version's reference test settings
(tests/test_sqlite.py: SECRET_KEY, the MD5 hasher, USE_TZ, DEFAULT_AUTO_FIELD where it
sets one) on PostgreSQL. runtests.py has tests/ on sys.path."""
import os

from test_sqlite import *  # noqa: F403

_DB = {db!r}
_TAG = os.environ.get("SCHEMAISO_SUITE_DBTAG", "stock")
DATABASES = {{
    alias: {{**_DB, "TEST": {{"NAME": f"test_djsuite_{{_TAG}}_{{alias}}"}}}}
    for alias in ("default", "other")
}}
if os.environ.get("SCHEMAISO_SUITE_RUNNER") == "schemaiso":
    TEST_RUNNER = "schemaiso.Runner"
'''
GOOD = {"ok", "skipped", "expected failure"}
RANK = {"skipped": 0, "expected failure": 1, "ok": 2, "unexpected success": 3, "FAIL": 4, "ERROR": 5}
HEAD_RE = re.compile(r"^\s*(\w+) \(([\w.]+)\)")
STATUS = r"ok|FAIL|ERROR|skipped\b.*|expected failure|unexpected success"
STATUS_RE = re.compile(rf"(?:^| \.\.\. )({STATUS})$")
DONE_RE = re.compile(rf" \.\.\. (?:{STATUS})$", re.M)
REPORT_RE = re.compile(r"^(FAIL|ERROR|UNEXPECTED SUCCESS): (\w+) \(([\w.]+)\)")
RAN_RE = re.compile(r"^Ran (\d+) tests? in ", re.M)
FOUND_RE = re.compile(r"^Found (\d+) test", re.M)
SUMMARY_RE = re.compile(r"^(?:OK|FAILED)(?: \((.*)\))?$", re.M)
# The line schemaiso.Runner prints once per test database: proof it was the runner.
SCHEMAISO_LINE_RE = re.compile(r"^schemaiso: alias '", re.M)


def say(message: str) -> None:
    print(f"django_suite: {message}", flush=True)


def die(message: str) -> NoReturn:
    print(f"django_suite: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


@dataclass
class Run:
    runner: str
    log: Path
    wall: float = 0.0
    timed_out: bool = False
    ran: int | None = None  # None: no "Ran N tests" line, the run crashed or was stopped
    counts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    tracebacks: dict[str, list[str]] = field(default_factory=dict)
    used_schemaiso: bool = False


# --- setup ---------------------------------------------------------------------------


def quiet(argv: list[str], log: Path, what: str) -> bool:
    """Run a setup command with its output appended to log; True if it succeeded."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore"}
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        code = subprocess.call(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                               stdin=subprocess.DEVNULL)
    if code != 0:
        say(f"{what} failed (exit {code}); see {log}")
    return code == 0


def fetch_django(version: str, work: Path) -> Path:
    """Django `version`'s sdist, downloaded and extracted once."""
    target = work / "src" / f"django-{version}"
    if (target / "tests" / "runtests.py").is_file():
        return target
    sdists = work / "sdist"
    sdists.mkdir(parents=True, exist_ok=True)
    say(f"downloading the Django {version} sdist from PyPI into {sdists}")
    # Only the source is wanted: the venv's pip checks Requires-Python when installing it.
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--ignore-requires-python", f"django=={version}", "-d", str(sdists)]
    if not quiet(argv, work / "setup.log", f"pip download django=={version}"):
        die(f"no sdist of Django {version} on PyPI (is the version right?)")
    staging = work / "src" / f".extract-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(next(sdists.glob(f"[dD]jango-{version}.tar.gz"))) as tar:
        tar.extractall(staging, filter="data")
    (top,) = staging.iterdir()
    shutil.rmtree(target, ignore_errors=True)
    top.rename(target)
    staging.rmdir()
    return target


def python_version(python: str) -> tuple[int, ...]:
    argv = [python, "-c", "import sys; print(*sys.version_info[:3])"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        die(f"--python {python} does not run: {exc}")
    return tuple(map(int, out.split()))


def install_requirements(pip: list[str], django_dir: Path, log: Path) -> dict[str, str]:
    """Install the suite's requirements as wheels; return {requirement: why} of those left out."""
    skipped: dict[str, str] = {}
    wanted: list[str] = []
    for name in ("py3.txt", "postgres.txt"):
        for line in (django_dir / "tests" / "requirements" / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            project = re.split(r"[\s;<>=!~\[]", line, maxsplit=1)[0].lower()
            if project in NOT_INSTALLED:
                skipped[project] = NOT_INSTALLED[project]
            elif line and not line.startswith("-"):
                wanted.append(line)
    if quiet([*pip, "--only-binary", ":all:", *wanted], log, "installing them all at once"):
        return skipped
    say("installing them one by one instead")
    for line in wanted:  # pip evaluates the environment markers
        if not quiet([*pip, "--only-binary", ":all:", line], log, f"pip install {line!r}"):
            skipped[line] = "no wheel installs cleanly"
    return skipped


def ensure_venv(work: Path, version: str, python: str, django_dir: Path) -> tuple[Path, dict[str, str]]:
    """The venv's python and the requirements it lacks; built once, then reused."""
    pyver = ".".join(map(str, python_version(python)))
    major = version.partition(".")[0]
    if major.isdigit() and int(major) >= 6 and python_version(python) < (3, 12):
        die(f"Django {version} needs Python 3.12+, not {pyver}: pass "
            "--python $(pyenv root)/versions/3.12.1/bin/python")
    venv = work / "venvs" / f"django-{version}-py{pyver}"
    marker = venv / "django_suite.json"  # written last: its presence means a complete venv
    if marker.is_file():
        return venv / "bin" / "python", json.loads(marker.read_text())["skipped"]
    log = work / "setup.log"
    say(f"creating {venv} (pip's output goes to {log})")
    shutil.rmtree(venv, ignore_errors=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install"]
    for argv, what in (([python, "-m", "venv", str(venv)], "creating the venv"),
                       ([*pip, "-e", str(django_dir)], f"installing Django {version}, editable"),
                       ([*pip, "psycopg[binary,pool]"], "installing psycopg"),
                       ([*pip, "-e", str(REPO)], f"installing schemaiso from {REPO}, editable")):
        say(what)
        if not quiet(argv, log, what):
            die(f"{what} failed; see {log}")
    say("installing Django's test requirements (tests/requirements/py3.txt, postgres.txt)")
    skipped = install_requirements(pip, django_dir, log)
    marker.write_text(json.dumps({"django": version, "python": pyver, "skipped": skipped}))
    return venv / "bin" / "python", skipped


def write_settings(work: Path) -> Path:
    url = os.environ.get("DATABASE_URL")
    if not url:
        die("DATABASE_URL is not set: export DATABASE_URL=postgres://user:password@host:port/db "
            "(a role that may create databases)")
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
        die("DATABASE_URL must look like postgres://user:password@host:port/db")
    db = {"ENGINE": "django.db.backends.postgresql", "NAME": unquote(parts.path.strip("/")),
          "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
          "HOST": parts.hostname or "", "PORT": str(parts.port or "")}
    directory = work / "settings"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{SETTINGS_MODULE}.py").write_text(SETTINGS.format(db=db))
    return directory


# --- running -------------------------------------------------------------------------


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End runtests.py's process group: the main process and any worker left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def supervise(proc: subprocess.Popen[bytes], run: Run, timeout: int) -> None:
    """Wait for the run, saying how far it got every 30 s; stop it after timeout."""
    started = last = time.monotonic()
    while proc.poll() is None:
        time.sleep(1)
        if time.monotonic() - started > timeout:
            say(f"{run.runner}: TIMEOUT after {timeout} s; stopping the run")
            run.timed_out = True
            return
        if time.monotonic() - last >= 30:
            last = time.monotonic()
            text = run.log.read_text(errors="replace")
            found = FOUND_RE.search(text)
            say(f"{run.runner}: {len(DONE_RE.findall(text))}/{found.group(1) if found else '?'} "
                f"tests done, {minutes(last - started)} elapsed")


def run_suite(runner: str, args: argparse.Namespace, python: Path, tests_dir: Path,
              settings_dir: Path, log: Path) -> Run:
    argv = [str(python), "runtests.py", f"--settings={SETTINGS_MODULE}", "--parallel",
            str(args.parallel), *(["--keepdb"] if args.keepdb else []), "-v", "2", "--noinput"]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # Test databases per runner and version, so that --keepdb never mixes them up.
    env.update(PYTHONPATH=str(settings_dir), PYTHONUNBUFFERED="1", SCHEMAISO_SUITE_RUNNER=runner,
               SCHEMAISO_SUITE_DBTAG=f"{runner}_{args.django.replace('.', '_')}")
    labels = " ".join(args.labels) if args.labels != DEFAULT_LABELS else "<default labels>"
    say(f"{runner}: in {tests_dir}: python {' '.join(argv[1:])} {labels}")
    say(f"{runner}: log {log}")
    run, started = Run(runner, log), time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen([*argv, *args.labels], cwd=tests_dir, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            supervise(proc, run, args.timeout)
        finally:
            stop(proc)
    run.wall = time.monotonic() - started
    say(f"{runner}: finished in {minutes(run.wall)} (exit {proc.returncode})")
    return parse(run)


# --- parsing -------------------------------------------------------------------------


def test_key(name: str, dotted: str) -> str:
    """`mod.Class.test_x`; for class and module fixtures `mod.Class (setUpClass)`."""
    return dotted if dotted.rsplit(".", 1)[-1] == name else f"{dotted} ({name})"


def record(run: Run, key: str, status: str) -> None:
    """Keep a test's worst outcome: one failing subtest fails the test."""
    status = "skipped" if status.startswith("skipped") else status
    status = "unexpected success" if status == "UNEXPECTED SUCCESS" else status
    if key not in run.outcomes or RANK[status] >= RANK[run.outcomes[key]]:
        run.outcomes[key] = status


def parse(run: Run) -> Run:
    """Outcomes from the `-v 2` lines (`test_x (mod.Class.test_x) ... ok`, a docstring or
    the test's output may come before the status) and from the failure report."""
    text = run.log.read_text(errors="replace")
    lines = text.splitlines()
    header: str | None = None
    for line in lines:
        head, status = HEAD_RE.match(line), STATUS_RE.search(line)
        if head:
            header = test_key(head.group(1), head.group(2))
        if status and header:
            record(run, header, status.group(1))
            header = None
    parse_failure_report(run, lines)
    ran, summary = RAN_RE.search(text), SUMMARY_RE.findall(text)
    run.ran = int(ran.group(1)) if ran else None
    for item in filter(None, (summary[-1] if summary else "").split(", ")):
        name, _, value = item.partition("=")
        run.counts[name] = int(value)
    run.used_schemaiso = bool(SCHEMAISO_LINE_RE.search(text))
    return run


def parse_failure_report(run: Run, lines: list[str]) -> None:
    """The FAIL:/ERROR: blocks at the end: the reliable list of failures, with tracebacks."""
    key, body, current = None, False, list[str]()
    for i, line in enumerate(lines):
        report = REPORT_RE.match(line)
        if report and i and lines[i - 1] == "=" * 70:
            key, body, current = test_key(report.group(2), report.group(3)), False, []
            record(run, key, report.group(1))
            run.tracebacks.setdefault(key, current)  # the first block (subtests make more)
        elif key and (line in ("=" * 70, "-" * 70) or RAN_RE.match(line)):
            key, body = (None, False) if body else (key, True)
            while current and not current[-1].strip():
                current.pop()
        elif key and body and (current or line.strip()):
            current.append(line)


# --- report --------------------------------------------------------------------------


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def summarize(run: Run) -> None:
    c = run.counts
    state = "TIMED OUT" if run.timed_out else "CRASHED" if run.ran is None else "completed"
    say(f"{run.runner:9} {state}: ran {'?' if run.ran is None else run.ran}, failures "
        f"{c.get('failures', 0)}, errors {c.get('errors', 0)}, skipped {c.get('skipped', 0)}, "
        f"wall {minutes(run.wall)}  ({run.log})")
    if run.ran is None:
        say(f"!!! {run.runner}: the run ended without 'Ran N tests': it crashed or was stopped, "
            "and its results are partial. The log ends with:")
        for line in run.log.read_text(errors="replace").splitlines()[-15:]:
            say(f"!!!     {line}")
    elif run.runner == "schemaiso" and not run.used_schemaiso:
        say("!!! schemaiso: no 'schemaiso: alias ...' line in the log: runtests.py did not use "
            "schemaiso.Runner")


def without_unittest_frames(traceback: list[str]) -> list[str]:
    """The traceback without unittest's frames (kept by tblib in parallel runs) and carets."""
    kept, skipping = [], False
    for line in traceback:
        if line.startswith("  File "):
            skipping = f"{os.sep}unittest{os.sep}" in line
        elif not line.startswith("    "):
            skipping = False
        if not skipping and not (line.strip() and set(line.strip()) <= {"^", "~"}):
            kept.append(line)
    return kept


def show(title: str, keys: list[str], runs: list[Run], traceback_of: Run | None = None,
         limit: int = 60) -> None:
    say(f"--- {title}: {len(keys)}")
    for key in keys[:limit]:
        outcomes = (f"{r.runner}: {r.outcomes.get(key, 'did not run')}" for r in runs)
        say(f"  {key}  ({', '.join(outcomes)})")
        lines = without_unittest_frames(traceback_of.tracebacks.get(key, []) if traceback_of else [])
        for line in lines if len(lines) <= 10 else [*lines[:4], "...", *lines[-5:]]:
            say(f"      {line}")
    if len(keys) > limit:
        say(f"  ... and {len(keys) - limit} more (see the logs)")


def compare(stock: Run, iso: Run) -> list[str]:
    """Print the differences; return the problems that fail the verdict."""
    ignored = sorted(k for k in stock.outcomes.keys() | iso.outcomes.keys() if IGNORED.match(k))
    for key in ignored:
        say(f"ignored (timing-flaky): {key}  (stock: {stock.outcomes.get(key, '-')}, "
            f"schemaiso: {iso.outcomes.get(key, '-')})")
    s, i = ({k: v for k, v in r.outcomes.items() if k not in ignored} for r in (stock, iso))
    both = sorted(s.keys() & i.keys())
    # A class or module fixture that errors only under schemaiso fails the tests it holds.
    regressed = [k for k in both if s[k] in GOOD and i[k] not in GOOD]
    regressed += sorted(k for k in i.keys() - s.keys() if i[k] not in GOOD)
    stock_only = sorted(s.keys() - i.keys())
    runs = [stock, iso]
    say("=== differences")
    show("passed (or skipped) under stock, FAILED under schemaiso", regressed, runs, iso)
    show("failed under stock, passed under schemaiso", [
        k for k in both if s[k] not in GOOD and i[k] in GOOD], runs, stock)
    show("ran under stock only", stock_only, runs, limit=20)
    show("ran under schemaiso only", sorted(i.keys() - s.keys() - set(regressed)), runs, limit=20)
    show("passed under both, outcome changed (ok/skipped/expected failure)", [
        k for k in both if s[k] in GOOD and i[k] in GOOD and s[k] != i[k]], runs)
    failed = [k for k in both if s[k] not in GOOD and i[k] not in GOOD]
    say(f"--- failed under both (not a difference): {len(failed)}"
        + (f": {', '.join(failed[:20])}" if failed else ""))
    lost = [k for k in stock_only if s[k] in GOOD]
    problems = [f"{len(regressed) + len(lost)} test(s) pass under stock and fail or do not run "
                "under schemaiso"] if regressed or lost else []
    return problems + ([] if iso.used_schemaiso else ["the schemaiso run did not use schemaiso"])


def report(runs: list[Run], args: argparse.Namespace, pyver: str, skipped: dict[str, str]) -> int:
    say(f"=== report: Django {args.django}, Python {pyver}, --parallel {args.parallel}"
        f"{' --keepdb' if args.keepdb else ''}, {len(args.labels)} label(s); requirements "
        f"not installed: {', '.join(skipped) or 'none'}")
    for run in runs:
        summarize(run)
    problems = [f"the {r.runner} run crashed or timed out" for r in runs if r.ran is None]
    if len(runs) == 2:
        problems = compare(*runs) + problems
    else:
        bad = sorted(k for k, v in runs[0].outcomes.items() if v not in GOOD and not IGNORED.match(k))
        show(f"failed under {runs[0].runner}", bad, runs, runs[0])
        problems = [f"{len(bad)} test(s) failed"] * bool(bad) + problems
    if problems:
        say(f"VERDICT: FAIL: {'; '.join(problems)}")
        return 1
    say("VERDICT: OK: every test that passes under the stock runner passes under schemaiso"
        if len(runs) == 2 else f"VERDICT: OK: no test failed under {runs[0].runner}")
    return 0


# --- main ----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    try:
        installed: str | None = importlib.metadata.version("django")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--django", default=installed, required=installed is None,
                   help=f"Django version to test (default: this interpreter's, {installed})"
                   if installed else "Django version to test (required: no Django installed here)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the venv")
    p.add_argument("--parallel", type=int, default=2, help="default 2")
    p.add_argument("--keepdb", action="store_true", help="passed to runtests.py")
    p.add_argument("--runner", choices=(*RUNNERS, "both"), default="both")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per runner (default 3600)")
    p.add_argument("--work", type=Path, default=Path("~/.cache/schemaiso-django-suite"),
                   help="cache: sdists, venvs, settings, logs (default %(default)s)")
    p.add_argument("labels", nargs="*", default=DEFAULT_LABELS,
                   help="runtests.py labels (default: about 40 database-heavy ones)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    work = args.work.expanduser().resolve()
    settings_dir = write_settings(work)
    django_dir = fetch_django(args.django, work)
    # settings.TEST_RUNNER only counts if runtests.py asks get_runner(settings) for it.
    if "get_runner(settings)" not in (django_dir / "tests" / "runtests.py").read_text():
        die(f"{django_dir}/tests/runtests.py does not call get_runner(settings): "
            "it would ignore TEST_RUNNER")
    python, skipped = ensure_venv(work, args.django, args.python, django_dir)
    for name, why in skipped.items():
        say(f"requirement not installed: {name} ({why})")
    pyver = ".".join(map(str, python_version(str(python))))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = []
    for runner in RUNNERS if args.runner == "both" else (args.runner,):
        log = work / "logs" / f"django-{args.django}-py{pyver}-{runner}-{stamp}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        runs.append(run_suite(runner, args, python, django_dir / "tests", settings_dir, log))
    return report(runs, args, pyver, skipped)


if __name__ == "__main__":
    sys.exit(main())
