"""bench/: the generated project is consistent and compare.py runs end to end."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .conftest import ROOT, admin_connect, server_url

#: The bench scripts are tested in tox's first environment only (tox.ini): they
#: measure, and what they run is tested everywhere by the other tests.
pytestmark = pytest.mark.bench

BENCH = ROOT / "bench"
# bench/ is a directory of scripts, not a package: load the generator by path.
_spec = importlib.util.spec_from_file_location("bench_generate", BENCH / "generate.py")
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
sys.modules["bench_generate"] = generate  # dataclasses look their module up by name
_spec.loader.exec_module(generate)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SCHEMAISO_", "DJANGO_SETTINGS_MODULE"))}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def _bench_databases() -> set[str]:
    with admin_connect() as conn:
        return {row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'")}


def test_generated_migrations_match_the_models(tmp_path: Path) -> None:
    project = generate.ensure_project(6, tmp_path)
    assert project.name == f"6-{generate.generator_hash()}"
    assert generate.ensure_project(6, tmp_path) == project  # cached, not rewritten
    run = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=project, env=_env(DATABASE_URL=server_url()), capture_output=True, text=True,
        timeout=300, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No changes detected" in run.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["fresh", "keepdb", "snapshot", "transactional"])
def test_compare_runs_both_runners_and_prints_the_ratio_line(tmp_path: Path, mode: str) -> None:
    pytest.importorskip("psycopg", reason="bench/ uses psycopg 3 (the tox env has psycopg2 only)")
    server_url()
    before = _bench_databases()
    logs = tmp_path / "logs"
    run = subprocess.run(
        [sys.executable, str(BENCH / "compare.py"), "--tables", "6", "--parallel", "2",
         "--rounds", "1", "--projects", str(tmp_path / "projects"), "--logs", str(logs),
         *{"fresh": [], "transactional": ["--transactional", "7"]}.get(mode, [f"--{mode}"])],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "first run: creating" not in output  # this interpreter has the dependencies
    last = run.stdout.strip().splitlines()[-1]
    number = r"\d+(?:\.\d+)?"
    # A warm stock run has nothing to tear down (0 s): no ratio to give.
    teardown = rf"(?:{number}|n/a)" if mode == "keepdb" else number
    assert re.fullmatch(
        rf"ratio setup={number} teardown={teardown} total={number} tests={number}", last), output
    tests = 7 if mode == "transactional" else 0
    assert re.search(rf"^tests +OK {18 + tests} +OK {18 + tests}$", run.stdout, re.MULTILINE), output
    assert _bench_databases() == before
    schemaiso_log = (logs / "round1-schemaiso.log").read_text()
    assert ("migrate skipped" in schemaiso_log) == (mode in ("keepdb", "snapshot")), schemaiso_log
    assert ("restored template" in schemaiso_log) == (mode == "snapshot"), schemaiso_log
    # Without --snapshot a schemaiso run writes a snapshot (the default) into a
    # directory of its own, so it never restores one another round wrote.
    assert ("wrote snapshot" in schemaiso_log) == (mode in ("fresh", "transactional")), schemaiso_log
    assert ("warming up" in output) == (mode == "keepdb"), output
    assert ("making the snapshot" in output) == (mode == "snapshot"), output


@pytest.mark.e2e
@pytest.mark.parametrize("keepdb", [False, True], ids=["fresh", "reuse-db"])
def test_compare_pytest_mode_runs_both_plugins_and_prints_the_ratio_line(
        tmp_path: Path, keepdb: bool) -> None:
    pytest.importorskip("psycopg", reason="bench/ uses psycopg 3 (the tox env has psycopg2 only)")
    pytest.importorskip("xdist", reason="--pytest runs pytest-xdist")
    server_url()
    before = _bench_databases()
    logs = tmp_path / "logs"
    run = subprocess.run(
        [sys.executable, str(BENCH / "compare.py"), "--pytest", "-n", "2", "--tables", "10",
         "--rounds", "1", "--projects", str(tmp_path / "projects"), "--logs", str(logs),
         *(["--keepdb"] if keepdb else [])],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    last = run.stdout.strip().splitlines()[-1]
    number = r"\d+(?:\.\d+)?"
    assert re.fullmatch(
        rf"ratio setup={number} teardown={number} total={number} tests={number}", last), output
    assert _bench_databases() == before  # stock's _gwN databases too, kept ones included
    assert ("warming up" in output) == keepdb, output
    for kind in ("stock", "schemaiso"):
        log = (logs / f"round1-{kind}.log").read_text()
        assert "2 workers [" in log, log  # really ran under xdist
        assert re.search(rf"^bench-timing: setup={number} teardown={number} workers=2 ", log,
                         re.MULTILINE), log
        # The plugin is on in the schemaiso run only (its header and summary lines).
        assert bool(re.search(r"^schemaiso: ", log, re.MULTILINE)) == (kind == "schemaiso"), log


def test_pytest_timing_plugin_without_xdist(tmp_path: Path) -> None:
    """bench/pytest_timing.py in a single process: the process is its own only worker."""
    pytest.importorskip("pytest_django")
    project = generate.ensure_project(2, tmp_path)
    before = _bench_databases()
    env = {k: v for k, v in _env(DATABASE_URL=server_url(),
                                 BENCH_TEST_NAME=f"bench_{uuid.uuid4().hex[:8]}_single",
                                 PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(BENCH)]),
                                 ).items() if not k.startswith("PYTEST_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "pytest_timing", "-p", "no:xdist",
         "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    last = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"bench-timing: setup=(\d+\.\d+) teardown=(\d+\.\d+) workers=1 "
                        r"sessionfinish=(\d+\.\d+)", last), output
    assert _bench_databases() == before


@pytest.mark.e2e
def test_flush_bench_times_both_flushes_and_prints_the_ratio_line(tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="bench/ uses psycopg 3 (the tox env has psycopg2 only)")
    server_url()
    before = _bench_databases()
    run = subprocess.run(
        [sys.executable, str(BENCH / "flush.py"), "--tables", "6", "--repeat", "2",
         "--projects", str(tmp_path / "projects")],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    number = r"\d+(?:\.\d+)?"
    assert re.search(rf"^flush +{number} +{number}$", run.stdout, re.MULTILINE), output
    last = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"ratio flush={number} with_post_migrate={number}", last), output
    assert _bench_databases() == before
