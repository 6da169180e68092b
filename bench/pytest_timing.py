"""Bench-only pytest plugin: database setup and teardown times under pytest-django,
which prints none (``manage.py test --timing`` does, for bench/compare.py's other mode).

``bench/compare.py --pytest`` loads it with ``-p pytest_timing`` (bench/ on the
run's PYTHONPATH) into the stock and the schemaiso run alike, so both are measured
the same way:

- setup: the ``django_db_setup`` fixture's own setup (the fixtures it requests
  are ready before its timer starts) in every process that runs tests, each xdist
  worker or the one process without xdist; the slowest process counts, as the
  tests wait for it;
- teardown: that fixture's teardown plus the worker's own ``pytest_sessionfinish``
  up to the moment xdist sends its results (schemaiso's workers leave the run
  there, which is their teardown under ``--reuse-db``), again the slowest worker;
  plus the whole ``pytest_sessionfinish`` of the main process (the xdist
  controller), timed by an outermost wrapper: schemaiso drops its test database
  there, once, after every worker is done. For stock pytest-django that holds
  only xdist's shutdown of the workers and the terminal summary, which both runs
  pay alike.

Workers send their figures to the controller in ``config.workeroutput``. The main
process prints one line after everything else, which compare.py parses::

    bench-timing: setup=12.345678 teardown=0.234567 workers=4 sessionfinish=0.012345

(``n/a`` for setup and teardown when no process set up the databases). Imports
pytest at the top: only pytest imports it, in the run's own process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

FIXTURE = "django_db_setup"
KEY = "bench_timing"  # in config.workeroutput
TAG = "bench-timing:"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(DatabaseTiming(config), "bench_database_timing")


class DatabaseTiming:
    """The figures of this process and, in the controller, those of its workers."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: This process's seconds in the fixture's setup and teardown; sent as is
        #: (a dict of floats and None) to the controller.
        self.figures: dict[str, float | None] = {"setup": None, "teardown": None}
        self._teardown_started: dict[int, float] = {}
        self._sessionfinish_started: float | None = None
        #: Per xdist worker id, what it sent.
        self.workers: dict[str, dict[str, float | None]] = {}

    def _add(self, name: str, seconds: float) -> None:
        self.figures[name] = (self.figures[name] or 0.0) + seconds

    # --- every process that runs tests ---------------------------------------------

    @pytest.hookimpl(tryfirst=True, wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any],
                             request: pytest.FixtureRequest) -> Generator[None, Any, Any]:
        if fixturedef.argname != FIXTURE:
            return (yield)
        start = time.perf_counter()
        result = yield
        self._add("setup", time.perf_counter() - start)
        # Finalizers run last in, first out: this one runs before the fixture's own
        # teardown (added while it set up), pytest_fixture_post_finalizer after it.
        fixturedef.addfinalizer(self._teardown_starts(fixturedef))
        return result

    def _teardown_starts(self, fixturedef: pytest.FixtureDef[Any]) -> Callable[[], None]:
        def starts() -> None:
            self._teardown_started[id(fixturedef)] = time.perf_counter()
        return starts

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        started = self._teardown_started.pop(id(fixturedef), None)
        if fixturedef.argname == FIXTURE and started is not None:
            self._add("teardown", time.perf_counter() - started)

    # --- the controller ---------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """xdist: a worker is done; what it put in its workeroutput arrives here."""
        figures = getattr(node, "workeroutput", {}).get(KEY)
        if figures is not None:
            self.workers[node.gateway.id] = figures

    @pytest.hookimpl(tryfirst=True, wrapper=True)
    def pytest_sessionfinish(self) -> Generator[None, None, None]:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            # An xdist worker: xdist sends workeroutput once every sessionfinish
            # implementation ran (after its own wrapper's yield), so what
            # pytest_sessionfinish_last adds to this dict still goes.
            workeroutput[KEY] = self.figures
            self._sessionfinish_started = time.perf_counter()
            return (yield)
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            self._report(time.perf_counter() - start)

    @pytest.hookimpl(trylast=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_last(self) -> None:
        """After every other (not wrapping) sessionfinish of a worker, schemaiso's
        included, and before xdist sends the figures."""
        if self._sessionfinish_started is not None:
            self._add("teardown", time.perf_counter() - self._sessionfinish_started)
            self._sessionfinish_started = None

    def _report(self, sessionfinish: float) -> None:
        processes = list(self.workers.values()) or [self.figures]
        setups = [s for f in processes if (s := f.get("setup")) is not None]
        teardowns = [t for f in processes if (t := f.get("teardown")) is not None]
        setup = f"{max(setups):.6f}" if setups else "n/a"
        teardown = f"{max(teardowns, default=0.0) + sessionfinish:.6f}" if setups else "n/a"
        # After the terminal summary (which runs inside sessionfinish): the last line.
        print(f"{TAG} setup={setup} teardown={teardown} workers={len(setups)} "
              f"sessionfinish={sessionfinish:.6f}", flush=True)
