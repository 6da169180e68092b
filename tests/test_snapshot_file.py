"""The snapshot file, its manifest's trust rules and the directory, without a server.

A snapshot is trusted whole or not at all: a truncated, corrupt, foreign or
newer-format file is refused before anything is restored, and a snapshot fits a
run only exactly or when migration files were added since (never edited or
removed). Writers replace files atomically, so concurrent writers and readers
never see half a file.
"""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pytest

from schemaiso.snapshot import fileformat, manifest, store

FINGERPRINT = {
    "django": "5.2", "schemaiso": "0.1.0", "settings": "s1",
    "apps": {"auth": "migrations:a1", "shop": "migrations:s1", "legacy": "models:m1"},
}
FILES = {"auth": {"0001_initial.py": "h1", "__init__.py": "i"},
         "shop": {"0001_initial.py": "h2", "0002_more.py": "h3", "__init__.py": "i"}}


def facts(**changes: object) -> manifest.RunFacts:
    values: dict[str, object] = {"alias": "default", "fingerprint": FINGERPRINT,
                                 "migrations": FILES, "postgresql": 15}
    values.update(changes)
    return manifest.RunFacts(**values)  # type: ignore[arg-type]


def write(path: Path, run: manifest.RunFacts | None = None, rows: bytes = b"1\tone\n") -> None:
    made = manifest.build(run or facts(), tables=1)
    fileformat.write(path, made, {"steps": []}, [(3, rows), (7, b"")])


def test_a_written_file_reads_back_whole(tmp_path: Path) -> None:
    path = tmp_path / facts().key
    write(path, rows=b"1\tZebra\n2\ttab\\there\n")
    read = fileformat.read(path)
    assert read.manifest["fingerprint"] == FINGERPRINT and read.manifest["tables"] == 1
    assert read.plan == {"steps": []}
    assert read.rows == {3: b"1\tZebra\n2\ttab\\there\n", 7: b""}
    assert fileformat.read_manifest(path) == read.manifest
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("damage", ["truncated", "flipped", "foreign", "newer", "plain", "empty"])
def test_a_damaged_or_foreign_file_is_refused_whole(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "x.snapshot"
    write(path)
    data = gzip.decompress(path.read_bytes())
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "flipped":  # a changed byte in the rows, gzip's CRC recomputed
        path.write_bytes(gzip.compress(data.replace(b"one", b"onf")))
    elif damage == "foreign":
        path.write_bytes(gzip.compress(b"PGDMP custom dump\n" + data))
    elif damage == "newer":
        path.write_bytes(gzip.compress(data.replace(
            b"schemaiso-snapshot %d\n" % fileformat.FORMAT,
            b"schemaiso-snapshot %d\n" % (fileformat.FORMAT + 1))))
    elif damage == "plain":
        path.write_text("not even gzip")
    else:
        path.write_bytes(b"")
    with pytest.raises(fileformat.SnapshotFileError) as refused:
        fileformat.read(path)
    expected = {"truncated": "truncated?", "flipped": "checksum", "foreign": "not a schemaiso snapshot",
                "newer": "newer format", "plain": "cannot be read", "empty": "not a schemaiso"}
    assert expected[damage] in str(refused.value)


def test_concurrent_writers_of_one_snapshot_all_succeed_and_readers_never_see_half(
    tmp_path: Path,
) -> None:
    path = tmp_path / facts().key
    big = b"".join(b"%d\trow number %d\n" % (i, i) for i in range(20000))
    write(path, rows=big)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for _ in range(10):
                write(path, rows=big)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            try:
                assert fileformat.read(path).rows[3] == big
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer) for _ in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_snapshot_fits_exactly_or_when_only_migrations_were_added() -> None:
    made = manifest.build(facts())
    assert manifest.fit(made, facts()) == ("exact", "")
    added_files = {**FILES, "shop": {**FILES["shop"], "0003_new.py": "h4"}}
    added = facts(fingerprint={**FINGERPRINT, "apps": {**FINGERPRINT["apps"],
                                                       "shop": "migrations:s2"}},
                  migrations=added_files)
    assert manifest.fit(made, added) == ("incremental", "")
    assert manifest.added_migrations(made, added) == ["shop/0003_new.py"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"shop": {**FILES["shop"], "0002_more.py": "edited"}}, "shop/0002_more.py was edited"),
        ({"shop": {"0001_initial.py": "h2", "__init__.py": "i"}}, "shop/0002_more.py was removed"),
    ],
)
def test_an_edited_or_removed_migration_makes_a_snapshot_unusable(
    change: dict[str, dict[str, str]], why: str
) -> None:
    made = manifest.build(facts())
    changed = facts(fingerprint={**FINGERPRINT, "apps": {**FINGERPRINT["apps"],
                                                         "shop": "migrations:s2"}},
                    migrations={**FILES, **change})
    kind, reason = manifest.fit(made, changed)
    assert kind is None and why in reason


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"postgresql": 16}, "PostgreSQL 15"),
        ({"fingerprint": {**FINGERPRINT, "django": "6.0"}}, "Django 5.2"),
        ({"fingerprint": {**FINGERPRINT, "schemaiso": "0.2.0"}}, "schemaiso 0.1.0"),
        ({"fingerprint": {**FINGERPRINT, "settings": "s2"}}, "settings"),
        ({"fingerprint": {**FINGERPRINT, "apps": {**FINGERPRINT["apps"], "legacy": "models:m2"}}},
         "app 'legacy' changed and is not made by migrations alone"),
    ],
)
def test_anything_else_that_changed_makes_a_snapshot_unusable(
    changes: dict[str, object], why: str
) -> None:
    kind, reason = manifest.fit(manifest.build(facts()), facts(**changes))
    assert kind is None and why in reason


def test_the_directory_comes_from_the_environment_then_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(store.ENVIRONMENT, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.snapshot_dir(...) == tmp_path / "xdg" / "schemaiso"
    assert store.snapshot_dir(None) is None
    assert store.snapshot_dir(str(tmp_path / "set")) == tmp_path / "set"
    assert store.snapshot_dir(str(tmp_path / "set"), turned_off=True) is None
    monkeypatch.setenv(store.ENVIRONMENT, str(tmp_path / "env"))
    assert store.snapshot_dir(None) == tmp_path / "env"  # the environment wins, for CI
    monkeypatch.setenv(store.ENVIRONMENT, "")
    assert store.snapshot_dir(str(tmp_path / "set")) is None


def test_choosing_prefers_the_exact_file_then_the_newest_that_fits(tmp_path: Path) -> None:
    old = facts(fingerprint={**FINGERPRINT, "apps": {**FINGERPRINT["apps"], "shop": "migrations:s0"}},
                migrations={**FILES, "shop": {"0001_initial.py": "h2", "__init__.py": "i"}})
    write(tmp_path / old.key, old)
    assert store.choose(tmp_path, facts()).kind == "incremental"
    write(tmp_path / facts().key, facts())
    os.utime(tmp_path / facts().key, (1, 1))  # older than the incremental one: exact still wins
    chosen = store.choose(tmp_path, facts())
    assert (chosen.kind, chosen.path) == ("exact", tmp_path / facts().key)
    none = store.choose(tmp_path, facts(alias="other"))
    assert none.path is None and "no snapshot for alias 'other'" in none.why_none


def test_a_broken_file_of_this_runs_key_is_reported(tmp_path: Path) -> None:
    (tmp_path / facts().key).write_bytes(b"junk")
    chosen = store.choose(tmp_path, facts())
    assert chosen.path is None
    assert [path.name for path, _ in chosen.unreadable] == [facts().key]


def test_pruning_keeps_the_newest(tmp_path: Path) -> None:
    for number in range(5):
        run = facts(fingerprint={**FINGERPRINT, "settings": f"s{number}"})
        write(tmp_path / run.key, run)
        os.utime(tmp_path / run.key, (1000 + number, 1000 + number))
    (tmp_path / "broken.snapshot").write_bytes(b"junk")
    removed = store.prune(tmp_path, 2)
    left = store.listing(tmp_path)
    assert len(removed) == 3 and [e.mtime for e in left if e.manifest] == [1004, 1003]
    assert (tmp_path / "broken.snapshot").exists()  # kept unless asked: maybe a newer format's
    store.prune(tmp_path, 2, unreadable=True)
    assert not (tmp_path / "broken.snapshot").exists()
