"""The fingerprint that decides whether ``--keepdb`` may skip ``migrate``."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from schemaiso import fingerprint
from schemaiso.errors import SchemaIsoError


def current() -> dict:
    return fingerprint.compute("default", connection.settings_dict)


def test_is_stable_and_json_able() -> None:
    import json

    first = current()
    assert first == current()
    assert json.loads(json.dumps(first)) == first
    assert first["apps"]["contenttypes"].startswith("migrations:")


def test_matching_fingerprints_have_no_differences() -> None:
    assert fingerprint.differences(copy.deepcopy(current()), current()) == []


def test_each_difference_is_named() -> None:
    kept = copy.deepcopy(current())
    kept["django"] = "1.0"
    kept["apps"]["contenttypes"] = "migrations:0000"
    kept["apps"]["gone"] = "migrations:1111"
    found = fingerprint.differences(kept, current())
    assert found[0].startswith("Django 1.0 -> ")
    assert found[1] == "migrations or models changed in contenttypes, gone"


def test_a_template_without_fingerprint_is_not_current() -> None:
    assert fingerprint.differences(None, current()) == [
        "the kept template has no fingerprint (an earlier migrate did not finish)"
    ]


def test_settings_that_change_ddl_change_it() -> None:
    before = current()
    with override_settings(MIGRATION_MODULES={"contenttypes": None}):
        after = current()
    assert after["settings"] != before["settings"]
    # Without migrations, an app is synced from its models: their source counts.
    assert after["apps"]["contenttypes"].startswith("models:")
    test = {**connection.settings_dict, "TEST": {**connection.settings_dict["TEST"],
                                                 "COLLATION": "C"}}
    assert fingerprint.compute("default", test)["settings"] != before["settings"]


class DisableMigrations:
    """The usual settings trick (and pytest-django's ``--no-migrations``): no app has
    migrations. Its repr names a memory address, different in every process."""

    def __contains__(self, item: str) -> bool:
        return True

    def __getitem__(self, item: str) -> None:
        return None


def test_an_object_in_migration_modules_gives_the_same_fingerprint_every_run() -> None:
    with override_settings(MIGRATION_MODULES=DisableMigrations()):
        first = current()
    with override_settings(MIGRATION_MODULES=DisableMigrations()):
        second = current()
    assert repr(DisableMigrations()) != repr(DisableMigrations())
    assert fingerprint.differences(first, second) == []
    # ... and it is not the fingerprint of the same apps with their migrations.
    assert fingerprint.differences(first, current())
    assert first["apps"]["contenttypes"].startswith("models:")


def test_fingerprint_extra_adds_the_files_data_migrations_read(tmp_path: Path) -> None:
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "countries.csv").write_text("de,Germany\n")
    (tmp_path / "helpers.py").write_text("RATE = 1\n")
    extra = {"FINGERPRINT_EXTRA": ["seed", "*.py"]}
    with override_settings(BASE_DIR=tmp_path, SCHEMAISO=extra):
        first = current()
        assert current() == first and first["extra"]
        (tmp_path / "helpers.py").write_text("RATE = 2\n")
        changed = current()
    assert changed["extra"] != first["extra"]
    assert fingerprint.differences(first, changed) == [
        "files named in SCHEMAISO['FINGERPRINT_EXTRA'] changed"
    ]
    assert "extra" not in current()  # nothing named: as before the setting existed


def test_settings_that_do_not_shape_migrate_do_not_change_it() -> None:
    before = current()
    with override_settings(SCHEMAISO={"SNAPSHOT_DIR": None, "SNAPSHOT_KEEP": 3,
                                      "CLONE_CONCURRENCY": 2, "SERIAL_TAGS": ["alone"],
                                      "FAST_FLUSH": False}):
        assert current() == before
    with override_settings(SCHEMAISO={"PREFIX": "other"}):
        assert current() != before


def test_a_fingerprint_extra_entry_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    with override_settings(BASE_DIR=tmp_path, SCHEMAISO={"FINGERPRINT_EXTRA": ["nope/*.csv"]}):
        with pytest.raises(SchemaIsoError, match=r"FINGERPRINT_EXTRA'\] entry 'nope/\*.csv' matches no file"):
            current()
