"""SCHEMAISO['EXISTING_DATABASE'] and the shared schema it implies, and FAST_FLUSH, as read
from settings."""

from __future__ import annotations

import pytest
from django.test import override_settings

from schemaiso.conf import get_config
from schemaiso.errors import SchemaIsoError


def test_the_shared_schema_is_public_unless_inside_an_existing_database() -> None:
    with override_settings(SCHEMAISO={}):
        config = get_config()
    assert not config.in_existing_database("default")
    assert config.shared_schema_for("default") == "public"
    with override_settings(SCHEMAISO={"EXISTING_DATABASE": True, "PREFIX": "si"}):
        config = get_config()
    assert config.in_existing_database("other")
    assert config.shared_schema_for("default") == "si_shared"


def test_existing_database_can_name_aliases() -> None:
    with override_settings(SCHEMAISO={"EXISTING_DATABASE": ["reports"]}):
        config = get_config()
    assert config.in_existing_database("reports")
    assert not config.in_existing_database("default")
    assert config.shared_schema_for("default") == "public"
    assert config.shared_schema_for("reports") == "schemaiso_shared"


@pytest.mark.parametrize("value", ["yes", 1, [], [""], None])
def test_existing_database_must_be_a_bool_or_aliases(value: object) -> None:
    with override_settings(SCHEMAISO={"EXISTING_DATABASE": value}):
        with pytest.raises(SchemaIsoError, match=r"EXISTING_DATABASE'\] must be True, False"):
            get_config()


def test_public_cannot_be_the_shared_schema_inside_an_existing_database() -> None:
    settings = {"EXISTING_DATABASE": True, "SHARED_SCHEMA": "public"}
    with override_settings(SCHEMAISO=settings):
        with pytest.raises(SchemaIsoError, match="never on a worker's search_path"):
            get_config()


def test_fast_flush_is_on_unless_turned_off() -> None:
    with override_settings(SCHEMAISO={}):
        assert get_config().fast_flush
    with override_settings(SCHEMAISO={"FAST_FLUSH": False}):
        assert not get_config().fast_flush


@pytest.mark.parametrize("value", ["no", 0, None])
def test_fast_flush_must_be_a_bool(value: object) -> None:
    with override_settings(SCHEMAISO={"FAST_FLUSH": value}):
        with pytest.raises(SchemaIsoError, match=r"FAST_FLUSH'\] must be True .* or False"):
            get_config()
