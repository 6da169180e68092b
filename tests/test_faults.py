"""Runs that are interrupted or lose a piece: Ctrl-C in the parallel phase, a worker
killed with SIGKILL, the server going away mid-run. Each ends promptly with a clear
outcome, and what the run created is cleaned up (or by the next run).

The ``evolving`` tests sleep (``TESTPROJECT_EVOLVING_SLEEP``) so that the fault
lands while both workers are inside a test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import Project, Run, Started, server_url, with_database
from .tcp_proxy import TcpProxy
from .test_keepdb import Evolving

STOCK = "django.test.runner.DiscoverRunner"
SCHEMAISO = "schemaiso.Runner"

pytestmark = pytest.mark.heavy


def start_sleeping(
    evolving: Evolving, runner: str = SCHEMAISO, sleep: str = "60", **env: str
) -> tuple[Started, Path]:
    """Start the run, and the directory where its tests say they are about to sleep."""
    ready = Path(tempfile.mkdtemp(prefix="ready-", dir=evolving.root))
    started = evolving.project.start(
        "test", "evolving", "--parallel", "2", "--noinput",
        TESTPROJECT_EVOLVING=str(evolving.root),
        TESTPROJECT_EVOLVING_COLUMNS=",".join(evolving.columns),
        TESTPROJECT_EVOLVING_SLEEP=sleep,
        TESTPROJECT_EVOLVING_READY=str(ready),
        TESTPROJECT_RUNNER=runner,
        **env,
    )
    return started, ready


def wait_until_sleeping(
    proc: subprocess.Popen[str], ready: Path, explain: Callable[[], str]
) -> list[int]:
    """The pids of the run's two pool workers, once both are inside a (sleeping) test:
    each evolving test writes a file named after its pid into ``ready`` first."""
    deadline = time.monotonic() + 120
    while len(pids := sorted(int(path.name) for path in ready.iterdir())) < 2:
        assert proc.poll() is None, explain()
        assert time.monotonic() < deadline, f"{len(pids)} of 2 workers in a test after 120 s"
        time.sleep(0.1)
    children = subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
    ).stdout.split()
    assert sorted(int(pid) for pid in children) == pids, (children, pids)
    return pids


def wait_for_workers(started: Started, ready: Path) -> list[int]:
    return wait_until_sleeping(started.proc, ready, lambda: started.finish().explain())


def finish_promptly(started: Started, limit: float = 60) -> Run:
    began = time.monotonic()
    run = started.finish(timeout=180)
    took = time.monotonic() - began
    assert took < limit, f"took {took:.0f} s after the fault\n{run.explain()}"
    return run


def summary(run: Run) -> tuple[int, str, str]:
    """Exit code, the "Ran N tests" line and the status line after it."""
    lines = run.stderr.splitlines()
    ran = next((i for i, line in enumerate(lines) if line.startswith("Ran ")), None)
    assert ran is not None, run.explain()
    status = next(line for line in lines[ran + 1:] if line.strip())
    return run.returncode, re.sub(r" in [\d.]+s$", "", lines[ran]), status


def test_ctrl_c_in_the_parallel_phase_ends_as_stock_django_does_and_cleans_up(
    project: Project, tmp_path: Path
) -> None:
    evolving = Evolving(project, tmp_path)
    outcomes = {}
    for runner in (STOCK, SCHEMAISO):
        started, ready = start_sleeping(evolving, runner)
        wait_for_workers(started, ready)
        os.killpg(started.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        run = finish_promptly(started)
        assert "Traceback" not in run.output, run.explain()
        outcomes[runner] = summary(run)
        assert project.leftovers() == {}, runner
    # Django's own handler (unittest.installHandler) stops the run gracefully.
    assert outcomes[SCHEMAISO] == outcomes[STOCK]


def test_a_worker_killed_with_sigkill_fails_the_run_naming_it_instead_of_hanging(
    project: Project, tmp_path: Path
) -> None:
    evolving = Evolving(project, tmp_path)
    started, ready = start_sleeping(evolving)
    victim = wait_for_workers(started, ready)[0]
    os.kill(victim, signal.SIGKILL)
    # Stock Django waits forever for the tests of a dead pool worker.
    run = finish_promptly(started)
    assert run.returncode == 1, run.explain()
    assert re.search(
        rf"ERROR: parallel worker \w+PoolWorker-\d+ \(pid {victim}\), killed by SIGKILL", run.stderr
    ), run.explain()
    assert "The tests it had not reported are lost" in run.stderr, run.explain()
    assert "FAILED (errors=1)" in run.stderr, run.explain()
    assert project.leftovers() == {}


def test_the_server_going_away_mid_run_is_a_clear_error_and_the_next_run_recovers(
    project: Project, tmp_path: Path
) -> None:
    evolving = Evolving(project, tmp_path)
    server = urlsplit(server_url())
    proxy = TcpProxy(server.hostname or "127.0.0.1", server.port or 5432)
    through_proxy = with_database(
        server._replace(netloc=server.netloc.replace(f":{server.port}", f":{proxy.port}")).geturl(),
        project.name,
    )
    # The workers' tests wake about 5 s after the cut and find no server.
    started, ready = start_sleeping(evolving, sleep="5", DATABASE_URL=through_proxy)
    wait_for_workers(started, ready)
    proxy.cut()  # every connection cut, new ones refused
    run = finish_promptly(started)
    assert run.returncode == 1, run.explain()
    assert (
        f"SchemaIsoError: schemaiso: PostgreSQL at 127.0.0.1:{proxy.port} failed while "
        "tearing down alias 'default'"
    ) in run.stderr, run.explain()
    assert "python manage.py schemaiso prune" in run.stderr, run.explain()
    assert f"test_{project.name}" in project.leftovers()  # nothing could be dropped

    # The server is reachable again (directly): the next run starts clean.
    again = evolving.project.manage(
        "test", "evolving", "--parallel", "2", "--noinput",
        TESTPROJECT_EVOLVING=str(evolving.root), TESTPROJECT_EVOLVING_COLUMNS="id",
    )
    assert again.returncode == 0, again.explain()
    assert project.leftovers() == {}
