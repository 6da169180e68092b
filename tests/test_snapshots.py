"""Template snapshots end to end: a cold run writes one, a run on a brand-new server
restores it instead of migrating, new migrations apply on top, and anything doubtful
falls back to ``migrate``.

A "brand-new server" is another throwaway PostgreSQL (tools/pgserver.py), as a CI
job gets a fresh database service while its cache step brings the snapshot
directory back. Each test's project has a snapshot directory of its own
(conftest.Project.snapshot_dir).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemaiso.clone import ClonePlan
from schemaiso.snapshot import capture, fileformat

from .conftest import ROOT, AdminConnection, Project, Run, admin_connect, with_database
from .support.describe import describe_schema, diff_descriptions
from .support.evolving import Evolving

TEMPLATE = "schemaiso_template"
LABELS = ["library", "shop", "isolation"]  # isolation's tests collide without a schema each
ALIASES = ("default", "reports")
GIS = {"TESTPROJECT_GIS": "1", "TESTPROJECT_ENGINE": "schemaiso.backends.postgis"}


def _pgserver() -> Any:
    spec = importlib.util.spec_from_file_location("pgserver", ROOT / "tools" / "pgserver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pgserver", module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh_server() -> Iterator[str]:
    """The URL of another throwaway PostgreSQL server, gone after the test."""
    with _pgserver().ThrowawayPostgres(fast=True) as server:
        yield str(server.url)


def on(server: str, project: Project) -> dict[str, str]:
    """The environment that points ``project`` at ``server``."""
    return {"DATABASE_URL": with_database(server, project.name)}


def restored(alias: str) -> str:
    return rf"^schemaiso: alias '{alias}': restored template '{TEMPLATE}' from snapshot [0-9a-f]{{8}} \(\d+ tables, [\d.]+ s\)"


WROTE = r"; wrote snapshot [0-9a-f]{8} \(\d+ tables, \d+ KiB, [\d.]+ s\) to "


def ran(run: Run) -> int:
    found = re.search(r"^Ran (\d+) tests? in", run.stderr, re.M)
    assert found, run.explain()
    return int(found[1])


def applying(run: Run) -> list[str]:
    return re.findall(r"^\s*Applying (\S+)\.\.\.", run.output, re.M)


def test_a_fresh_server_restores_the_snapshot_a_cold_run_wrote(
    project: Project, fresh_server: str
) -> None:
    cold = project.manage("test", *LABELS, "--parallel", "2", "--noinput")
    assert cold.returncode == 0, cold.explain()
    for alias in ALIASES:
        assert re.search(
            rf"^schemaiso: alias '{alias}': migrated template '{TEMPLATE}' \(no snapshot for "
            rf"alias '{alias}' in {re.escape(str(project.snapshot_dir))}\){WROTE}",
            cold.output, re.M,
        ), cold.explain()
    assert len(list(project.snapshot_dir.glob("*.snapshot"))) == 2

    warm = project.manage("test", *LABELS, "--parallel", "2", "--noinput", "-v", "2",
                          **on(fresh_server, project))
    assert warm.returncode == 0, warm.explain()
    for alias in ALIASES:
        assert re.search(restored(alias) + "; migrate skipped$", warm.output, re.M), warm.explain()
    assert applying(warm) == [] and ran(warm) == ran(cold)
    assert "schemaiso: warning" not in warm.output
    assert len(list(project.snapshot_dir.glob("*.snapshot"))) == 2  # nothing new to write


def test_a_restored_template_describes_exactly_like_the_migrated_one(
    project: Project, fresh_server: str
) -> None:
    """testproject's full template with PostGIS: extensions, a collation, an enum, a
    domain, a partitioned table with rows, the RunSQL view, trigger and ``SET
    search_path`` function, data migrations and post_migrate rows."""
    args = ("test", "library.tests.test_connections", "--noinput", "--keepdb")
    cold = project.manage(*args, **GIS)
    assert cold.returncode == 0, cold.explain()
    warm = project.manage(*args, **GIS, **on(fresh_server, project))
    assert warm.returncode == 0, warm.explain()
    assert re.search(restored("default"), warm.output, re.M), warm.explain()

    database = f"test_{project.name}"
    with admin_connect(database) as migrated_conn, \
            AdminConnection(with_database(fresh_server, database)) as restored_conn:
        for conn in (migrated_conn, restored_conn):  # the servers' default zones differ
            conn.execute("SET TIME ZONE 'UTC'")
        migrated = describe_schema(migrated_conn.raw, TEMPLATE)
        assert diff_descriptions(migrated, describe_schema(restored_conn.raw, TEMPLATE)) == []
        # The restore kept the migrated rows as they were, timestamps included.
        applied = "SELECT app, name, applied FROM schemaiso_template.django_migrations ORDER BY id"
        assert migrated_conn.execute(applied) == restored_conn.execute(applied)
        extensions = "SELECT extname, extversion FROM pg_extension ORDER BY 1"
        assert migrated_conn.execute(extensions) == restored_conn.execute(extensions)
    relations = migrated["relations"]
    assert isinstance(relations, dict)
    assert {"library_book_stats", "shop_ledger", "shop_ledger_2025", "places_city", "places_route"} <= set(relations)
    assert migrated["collations"] and migrated["types"] and migrated["triggers"]
    data = migrated["data"]
    assert isinstance(data, dict) and data["shop_ledger_2025"][0] == 2


def test_added_migrations_apply_on_top_and_an_edited_one_forces_a_full_migrate(
    project: Project, tmp_path: Path, fresh_server: str
) -> None:
    (tmp_path / "evolving").mkdir()
    evolving = Evolving(project, tmp_path / "evolving")
    cold = evolving.run()
    assert cold.returncode == 0, cold.explain()

    evolving.add_column("0002_added", "0001_initial", "added")
    added = evolving.run("-v", "2", **on(fresh_server, project))
    assert added.returncode == 0, added.explain()
    assert re.search(
        restored("default") + r", then applied 1 new migration\(s\)" + WROTE,
        added.output, re.M,
    ), added.explain()
    assert applying(added) == ["evolving.0002_added"], added.explain()

    # 0001 edited: no snapshot holds what it makes now; the kept template on the
    # fresh server is stale too, so the run rebuilds it with a full migrate.
    evolving.write("0001_initial", [], "CREATE TABLE evolving_probe (id bigint)",
                   "DROP TABLE evolving_probe")
    edited = evolving.run("-v", "2", **on(fresh_server, project))
    assert edited.returncode == 0, edited.explain()
    assert re.search(
        rf"^schemaiso: alias 'default': migrated template '{TEMPLATE}' \(none of 2 snapshot\(s\) "
        r".* fits \(newest [0-9a-f]{8}: migration file evolving/0001_initial.py was edited since\)\)",
        edited.output, re.M,
    ), edited.explain()
    full = applying(edited)
    assert "auth.0001_initial" in full, edited.explain()
    assert [name for name in full if name.startswith("evolving.")] == [
        "evolving.0001_initial", "evolving.0002_added"]


@pytest.mark.heavy
def test_a_corrupt_snapshot_is_a_warning_naming_it_and_the_run_migrates(project: Project) -> None:
    cold = project.manage("test", "isolation", "--noinput")
    assert cold.returncode == 0, cold.explain()
    snapshots = sorted(project.snapshot_dir.glob("*.snapshot"))
    assert len(snapshots) == 1  # isolation's tests use the default alias alone
    for path in snapshots:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    again = project.manage("test", "isolation", "--noinput", "-v", "2")
    assert again.returncode == 0, again.explain()
    for path in snapshots:
        assert re.search(
            rf"^schemaiso: warning: alias '\w+': snapshot file {re.escape(str(path))} is not "
            r"used: it ends early", again.output, re.M,
        ), again.explain()
    assert "auth.0001_initial" in applying(again)
    # The run wrote the snapshots again, whole.
    for path in snapshots:
        assert fileformat.read(path).manifest["key"] == path.name


@pytest.mark.heavy
def test_no_snapshot_turns_them_off_for_one_run(project: Project) -> None:
    run = project.manage("test", "isolation", "--noinput", "--no-snapshot")
    assert run.returncode == 0, run.explain()
    assert "snapshot" not in run.output and not project.snapshot_dir.exists()


@pytest.mark.heavy
def test_two_runs_writing_the_same_snapshots_at_once_both_succeed(project: Project) -> None:
    other = Project(name=f"e2e_{uuid.uuid4().hex[:10]}", tmp_path=project.tmp_path)
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{other.name}"')
    try:
        runs = [each.start("test", "isolation", "--noinput") for each in (project, other)]
        finished = [started.finish() for started in runs]
    finally:
        other.drop_everything()
    for run in finished:
        assert run.returncode == 0, run.explain()
        assert "schemaiso: warning" not in run.output
    snapshots = sorted(project.snapshot_dir.glob("*.snapshot"))
    assert len(snapshots) == 1 and all(fileformat.read(path).rows for path in snapshots)
    assert sorted(p.name for p in project.snapshot_dir.iterdir()) == [p.name for p in snapshots]


def test_the_pytest_plugin_restores_under_xdist(project: Project, fresh_server: str) -> None:
    args = ("-n", "2", "--reuse-db", "isolation")
    first = project.pytest(*args)
    assert first.returncode == 0, first.explain()
    second = project.pytest(*args, **on(fresh_server, project))
    assert second.returncode == 0, second.explain()
    # Restored, not migrated: the migration rows carry the first server's timestamps.
    applied = "SELECT app, name, applied FROM schemaiso_template.django_migrations ORDER BY id"
    database = f"test_{project.name}"
    with admin_connect(database) as migrated_conn, \
            AdminConnection(with_database(fresh_server, database)) as restored_conn:
        assert migrated_conn.execute(applied) == restored_conn.execute(applied)


@pytest.mark.heavy
def test_objects_migrate_put_into_the_shared_schema_travel_with_the_snapshot(
    project: Project, fresh_server: str
) -> None:
    """testproject's ``sharedobjects`` app creates a collation (which its column
    uses), an enum and a function in the shared schema, explicitly."""
    labels = ("test", "sharedobjects", "isolation", "--parallel", "2", "--noinput")
    cold = project.manage(*labels, TESTPROJECT_SHARED_OBJECTS="1")
    assert cold.returncode == 0, cold.explain()
    assert re.search(WROTE, cold.output), cold.explain()
    warm = project.manage(*labels, TESTPROJECT_SHARED_OBJECTS="1", **on(fresh_server, project))
    assert warm.returncode == 0, warm.explain()
    assert re.search(restored("default") + "; migrate skipped$", warm.output, re.M), warm.explain()


def test_objects_migrate_put_elsewhere_keep_a_snapshot_from_being_written(
    project: Project,
) -> None:
    """Outside the shared schema a snapshot would have to create schemas and objects
    that are not schemaiso's: it is not written, and the run says why."""
    with admin_connect(project.name) as conn:
        before = capture.outside_objects(conn.raw, "public")
        conn.execute(
            "CREATE SCHEMA reporting; CREATE TABLE reporting.totals (n int);"
            "CREATE FUNCTION public.double(n int) RETURNS int LANGUAGE sql AS 'SELECT 2 * n';"
            "CREATE OPERATOR public.#~# (FUNCTION = int4pl, LEFTARG = int, RIGHTARG = int)"
        )
        made = capture.made_by_migrate(capture.outside_objects(conn.raw, "public"), before,
                                       "public")
    assert {(kind, name) for kind, _schema, name in made} >= {
        ("schema", ""), ("relation", "totals"), ("function", "double(n integer)"),
        ("operator", "#~#"),
    }
    why = capture.refusal(ClonePlan("t", "public", 0, ()), made, [])
    assert why is not None
    assert "schema reporting" in why and "relation reporting.totals" in why
    assert "operator public.#~#" in why and "double" not in why  # a function is captured


@pytest.mark.heavy
@pytest.mark.parametrize("tamper", ["extension version", "structure"])
def test_a_snapshot_that_fails_to_restore_leaves_nothing_and_the_run_migrates(
    project: Project, tamper: str
) -> None:
    """A well-formed file whose restore fails: an extension at another version here
    (before anything is restored), or a restored structure unlike the recorded one
    (after the whole template was restored): the template is emptied and migrated."""
    labels = ("test", "library", "isolation", "--parallel", "2", "--noinput")
    cold = project.manage(*labels)
    assert cold.returncode == 0, cold.explain()
    for path in project.snapshot_dir.glob("*.snapshot"):
        contents = fileformat.read(path)
        made = contents.manifest
        if tamper == "extension version":
            made["extensions"] = [[name, "0.0" if name == "hstore" else version, schema]
                                  for name, version, schema in made["extensions"]]
        else:
            made["signature"] = "0 0 0"
        fileformat.write(path, made, contents.plan, sorted(contents.rows.items()),
                         contents.shared_objects)

    again = project.manage(*labels, "-v", "2")
    assert again.returncode == 0, again.explain()
    why = ("extension hstore 0.0 is not available on this server" if tamper == "extension version"
           else "the restored template's structure differs from the snapshot's record")
    assert re.search(rf"^schemaiso: warning: alias 'default': snapshot file .* is not used: it "
                     rf"could not be restored \({why}", again.output, re.M), again.explain()
    assert "auth.0001_initial" in applying(again)
    assert project.leftovers() == {}


@pytest.mark.heavy
def test_the_snapshots_command_lists_what_fits_and_prunes(project: Project) -> None:
    cold = project.manage("test", "isolation", "--noinput")
    assert cold.returncode == 0, cold.explain()
    (written,) = project.snapshot_dir.glob("*.snapshot")
    (project.snapshot_dir / "broken.snapshot").write_bytes(b"junk")

    listed = project.manage("schemaiso", "snapshots")
    assert listed.returncode == 0, listed.explain()
    assert f"{project.snapshot_dir}: 2 snapshot(s)" in listed.stdout, listed.explain()
    assert re.search(rf"^  {written.name[:8]}\s+default\s.*\s\d+ KiB\s+15\s.*\sexact$",
                     listed.stdout, re.M), listed.explain()
    assert re.search(r"^  broken\.snapshot\s.*unreadable: it cannot be read", listed.stdout,
                     re.M), listed.explain()
    other = project.manage("schemaiso", "snapshots", TESTPROJECT_SHARED_OBJECTS="1")
    assert re.search(r"\sno: settings that shape migrate differ", other.stdout), other.explain()

    pruned = project.manage("schemaiso", "snapshots", "--prune", "--keep", "1")
    assert pruned.returncode == 0, pruned.explain()
    assert "removed 1 file(s)\n  broken.snapshot" in pruned.stdout, pruned.explain()
    assert [p.name for p in project.snapshot_dir.iterdir()] == [written.name]
