"""What a run tells every alias's setup, decided once, before ``setup_databases``.

The runner (``manage.py test``) and the pytest plugin know things about the run
that setup needs: whether the runner waits for background clones, whether the
main process runs tests itself, how many workers will ask for schemas, whether
failed schemas are kept. They build one :class:`RunOptions` from what they know
(``--parallel``, the serial tests, their own flags) and hand it to every
isolated alias with :func:`~schemaiso.backends.creation.hand_over`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunMembership:
    """This process is one of several processes of one run that another step ends
    (pytest-xdist workers, or pytest's only process): they share one template, and
    a member's teardown only leaves the run (pytest_support/membership.py)."""

    #: The worker schema number this process works in (xdist worker gwN: N + 1),
    #: or None for the main schema.
    worker_number: int | None = None
    #: How many processes of the run may clone at once: each takes that share of
    #: the server's lock budget.
    concurrent_setups: int = 1


@dataclass(frozen=True)
class RunOptions:
    """One run's options for setup; the defaults are what Django's own runner gets
    (an explicit ENGINE without schemaiso's runner): every clone is done before
    ``_clone_test_db`` returns and the main process enters its schema at once."""

    #: The runner waits for background clones before any worker starts, so
    #: clones run in threads, and the main process moves into its own schema only
    #: when it runs tests (``use_main_schema``), never when it runs none.
    background_clones: bool = False
    #: The main process runs tests after the parallel phase (serial tests, or no
    #: workers): its schema is cloned in the background with the workers'.
    main_schema_early: bool = False
    #: ``--parallel`` when workers will run, else 0: a warm run claims their
    #: schemas as soon as it has chosen its template.
    expected_workers: int = 0
    #: ``--keep-failed-schemas``.
    keep_failed: bool = False
    #: Snapshots of new templates are restored and written (``--no-snapshot``: off).
    snapshots: bool = True
    #: Django's TimeKeeper (``--timing``), or None.
    time_keeper: Any = None
    #: Set under pytest: see :class:`RunMembership`.
    membership: RunMembership | None = None

    @classmethod
    def for_runner(
        cls, *, parallel: int, serial_tests: int, keep_failed: bool, time_keeper: Any,
        snapshots: bool = True,
    ) -> RunOptions:
        """``manage.py test``: derived from ``--parallel`` (after ``build_suite``
        capped it) and the number of serial tests."""
        return cls(
            background_clones=True,
            main_schema_early=serial_tests > 0 or parallel <= 1,
            expected_workers=parallel if parallel > 1 else 0,
            keep_failed=keep_failed,
            snapshots=snapshots,
            time_keeper=time_keeper,
        )

    @classmethod
    def for_pytest(
        cls, *, worker_id: str | None, worker_count: int, keep_failed: bool,
        snapshots: bool = True,
    ) -> RunOptions:
        """The pytest plugin: one member of the run, worker ``gwN`` or the only process."""
        suffix = (worker_id or "")[2:]
        return cls(
            keep_failed=keep_failed,
            snapshots=snapshots,
            membership=RunMembership(
                worker_number=int(suffix) + 1 if worker_id and suffix.isdigit() else None,
                concurrent_setups=max(1, worker_count),
            ),
        )

    @property
    def concurrent_setups(self) -> int:
        return self.membership.concurrent_setups if self.membership else 1

    @contextmanager
    def timed(self, label: str) -> Iterator[None]:
        """Time a step for ``--timing`` (Django prints it in the order steps begin)."""
        if self.time_keeper is None:
            yield
            return
        with self.time_keeper.timed(label):
            yield

    def record_time(self, label: str, seconds: float) -> None:
        """Record a step timed elsewhere (background clones) for ``--timing``."""
        records = getattr(self.time_keeper, "records", None)
        if records is not None:
            records[label].append(seconds)
