"""What the stand-alone scripts (tools/demo.py, bench/*.py) share: getting Django,
psycopg and schemaiso importable, signal handling, stopping a run for sure, URLs,
and reading Django's ``--timing`` output.

Standard library only: it runs before anything is installed. When the current
interpreter lacks a dependency, ``ensure_dependencies`` installs them once into
``<repo>/.venv-demo`` and replaces the process with the same command run by that
venv's python; when it has them (a dev venv, a tox env), nothing is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
VENV = REPO / ".venv-demo"
VENV_PYTHON = VENV / "bin" / "python"
_REEXECED = "SCHEMAISO_DEMO_REEXECED"  # set across the os.execv: stops a re-exec loop
TRAPPED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TAIL = 40
# The child's import check: the three packages, schemaiso from this checkout.
_VENV_CHECK = (
    "import sys, django, psycopg, schemaiso; from pathlib import Path; "
    "sys.exit(django.VERSION < (5, 2) or "
    f"not Path(schemaiso.__file__).resolve().is_relative_to({str(REPO / 'src')!r}))"
)


def say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", flush=True)


def die(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def tail(text: str, lines: int = TAIL) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


# --- dependencies -----------------------------------------------------------------


def missing_dependencies() -> list[str]:
    """What this interpreter cannot import (with the reason), empty if all is there."""
    missing: list[str] = []
    for name in ("django", "psycopg", "schemaiso"):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
            continue
        if name == "django" and getattr(module, "VERSION", (0,)) < (5, 2):
            missing.append(f"django>=5.2 (found {module.get_version()})")
    return missing


def run_quietly(prog: str, argv: Sequence[str | Path], what: str) -> None:
    """Run a setup step with its output captured; show the output only if it fails."""
    env = {**os.environ, "PIP_ROOT_USER_ACTION": "ignore", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run(
        [str(a) for a in argv], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", check=False,
    )
    if result.returncode != 0:
        print(tail(result.stdout), file=sys.stderr)
        die(prog, f"{what} failed (exit {result.returncode}); output above")


def works(argv: Sequence[str | Path]) -> bool:
    try:
        return subprocess.run(
            [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, check=False,
        ).returncode == 0
    except OSError:
        return False


def ensure_dependencies(prog: str, script: str | Path) -> None:
    """Return if Django, psycopg and schemaiso import; else set up .venv-demo (once)
    and replace this process with ``script`` (same arguments) run by the venv's python."""
    missing = missing_dependencies()
    if not missing:
        os.environ.pop(_REEXECED, None)  # not for the test runs
        return
    if os.environ.get(_REEXECED):  # we are the re-executed process: do not loop
        die(prog, f"{sys.executable} still cannot import {'; '.join(missing)}. "
                  f"Remove {VENV} and run again.")
    if not works([VENV_PYTHON, "-c", _VENV_CHECK]):
        inside = Path(sys.prefix).resolve() == VENV.resolve()
        if not works([VENV_PYTHON, "-m", "pip", "--version"]):
            if inside:
                die(prog, f"{VENV} is broken; remove it and run again with python3")
            say(prog, f"first run: creating {VENV.name} and installing Django, psycopg and "
                      "schemaiso (editable) into it; this takes a minute...")
            run_quietly(prog, [sys.executable, "-m", "venv", "--clear", VENV], "creating the venv")
        else:
            say(prog, f"installing Django, psycopg and schemaiso (editable) into {VENV.name}...")
        run_quietly(prog, [VENV_PYTHON, "-m", "pip", "install", "--quiet", "-e", f"{REPO}[test]"],
                    f"pip install -e '{REPO}[test]'")
    os.environ[_REEXECED] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    # VENV_PYTHON unresolved on purpose: the venv is found next to the path we exec.
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(Path(script).resolve()), *sys.argv[1:]])


def child_pythonpath() -> str:
    """PYTHONPATH for child processes: this checkout's schemaiso first."""
    return os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))


# --- signals ------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the script like Ctrl-C does: through the cleanup."""
    old = {sig: signal.signal(sig, _interrupt) for sig in TRAPPED}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut a cleanup short."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in TRAPPED}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def stop(proc: subprocess.Popen[str]) -> None:
    """End a run started with ``start_new_session=True`` and its workers (its own
    process group): SIGINT, as a Ctrl-C would, then SIGTERM, then SIGKILL; finally
    kill any worker left behind."""
    with signals_ignored():
        for sig, grace in ((signal.SIGINT, 15.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
                break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


# --- URLs ---------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))


# --- Django's --timing output, and medians ---------------------------------------------


def timing_seconds(output: str, name: str) -> list[float]:
    """Every "<name> took 1.234s" line of Django's --timing (TimeKeeper.print_results)."""
    pattern = rf"^{name} took (\d+(?:\.\d+)?)s\r?$"
    return [float(value) for value in re.findall(pattern, output, re.MULTILINE)]


def median(values: Sequence[float | None]) -> float | None:
    """The median, or None if any value is unknown."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) == len(values) and known else None


def positive_int(text: str) -> int:
    """argparse type for counts (--parallel, --rounds, --tables, ...): an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
