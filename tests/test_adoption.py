"""What real projects' tests do, under ``manage.py test --parallel``: tests that
migrate or flush, connections made around Django, Django's SerializeMixin
(testproject's ``adoption`` app; its docstring says what each test checks)."""

from __future__ import annotations

from dataclasses import dataclass

from .conftest import Project
from .test_e2e import ran

ADOPTION_TESTS = 10  # testproject/adoption/tests.py


@dataclass(frozen=True)
class Entry:
    """One line of the adoption app's log."""

    event: str
    test: str
    pid: int
    time: float
    schema: str


def test_tests_that_migrate_flush_connect_raw_and_serialize_work_in_workers(
    project: Project,
) -> None:
    log = project.tmp_path / "adoption.log"
    # isolation and library run beside adoption: their tests use the tables that
    # adoption's tests migrate away and back, in the other worker's schema.
    run = project.manage(
        "test", "adoption", "isolation", "library", "--parallel", "2", "--noinput",
        ADOPTION_LOG=str(log),
    )
    assert run.returncode == 0, run.explain()
    assert ran(run) > ADOPTION_TESTS
    entries = []
    for line in log.read_text().splitlines():
        event, test, pid, when, schema = line.split()
        entries.append(Entry(event, test, int(pid), float(when), schema))

    # migrate, flush and the raw connection ran in worker schemas.
    for event in ("migrate", "flush", "raw"):
        schemas = {e.schema for e in entries if e.event == event}
        assert schemas and all(s.endswith(("_w1", "_w2")) for s in schemas), entries

    # SerializeMixin: the three classes ran in more than one worker, never two at once.
    held = sorted(
        (e for e in entries if e.event.startswith("lock-")), key=lambda e: e.time
    )
    assert len(held) == 6, entries
    assert [e.event for e in held] == ["lock-start", "lock-end"] * 3, held
    assert len({e.pid for e in held}) > 1, "the classes all ran in one worker: nothing proven"
    assert project.leftovers() == {}
