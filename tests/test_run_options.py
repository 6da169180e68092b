"""RunOptions: what the runner and the pytest plugin tell setup, derived and handed over once."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connections

from schemaiso import activation
from schemaiso.backends.creation import hand_over, isolated_creations
from schemaiso.run_options import RunMembership, RunOptions


def test_the_default_is_what_djangos_own_runner_gets() -> None:
    options = RunOptions()
    assert not options.background_clones and not options.main_schema_early
    assert options.expected_workers == 0 and options.membership is None
    assert options.concurrent_setups == 1


@pytest.mark.parametrize(
    ("parallel", "serial_tests", "main_schema_early", "expected_workers"),
    [
        (4, 0, False, 4),  # everything in workers: the main schema is never cloned
        (4, 3, True, 4),  # serial tests after the parallel phase run in the main schema
        (1, 0, True, 0),  # no workers: the main process runs every test
        (0, 0, True, 0),
    ],
)
def test_the_runners_options_follow_parallel_and_the_serial_tests(
    parallel: int, serial_tests: int, main_schema_early: bool, expected_workers: int
) -> None:
    options = RunOptions.for_runner(
        parallel=parallel, serial_tests=serial_tests, keep_failed=True, time_keeper=None
    )
    assert options.background_clones
    assert options.main_schema_early is main_schema_early
    assert options.expected_workers == expected_workers
    assert options.keep_failed and options.membership is None


@pytest.mark.parametrize(
    ("worker_id", "worker_count", "membership"),
    [
        ("gw0", 4, RunMembership(worker_number=1, concurrent_setups=4)),
        ("gw11", 12, RunMembership(worker_number=12, concurrent_setups=12)),
        (None, 0, RunMembership(worker_number=None, concurrent_setups=1)),
        ("master", 0, RunMembership(worker_number=None, concurrent_setups=1)),
    ],
)
def test_a_pytest_process_is_a_member_of_its_run(
    worker_id: str | None, worker_count: int, membership: RunMembership
) -> None:
    options = RunOptions.for_pytest(worker_id=worker_id, worker_count=worker_count, keep_failed=False)
    assert options.membership == membership
    assert options.concurrent_setups == membership.concurrent_setups
    assert not options.background_clones and options.expected_workers == 0


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunOptions().keep_failed = True  # type: ignore[misc]


class _TimeKeeper:
    """Django's TimeKeeper's interface: ``timed`` and ``records``."""

    def __init__(self) -> None:
        self.records: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        yield
        self.records[name].append(0.5)


def test_timing_goes_to_the_time_keeper_when_there_is_one() -> None:
    keeper = _TimeKeeper()
    options = RunOptions(time_keeper=keeper)
    with options.timed("  Cloning"):
        pass
    options.record_time("  Background clones", 1.25)
    assert keeper.records == {"  Cloning": [0.5], "  Background clones": [1.25]}
    with RunOptions().timed("ignored"):
        RunOptions().record_time("ignored", 1.0)  # no time keeper: nothing to record


def test_hand_over_reaches_every_isolated_alias_and_their_runs(settings: Any) -> None:
    activation.install()
    options = RunOptions.for_runner(parallel=3, serial_tests=0, keep_failed=False, time_keeper=None)
    creations = isolated_creations(initialized_only=False)
    assert {c.connection.alias for c in creations} == {
        alias for alias in connections if connections[alias].vendor == "postgresql"
    }
    before = [c.run_options for c in creations]
    try:
        hand_over(options)
        for creation in creations:
            assert creation.run_options is options
            assert creation.alias_run.options is options
    finally:
        for creation, previous in zip(creations, before, strict=True):
            creation.run_options = previous
