"""Schema names: safe, unique per run and worker, never longer than PostgreSQL keeps."""

from __future__ import annotations

import pytest

from schemaiso.errors import SchemaIsoError
from schemaiso.markers import marker, parse_marker
from schemaiso.naming import (
    SchemaNames,
    fit_name,
    like_escape,
    quote_ident,
    quote_literal,
    validate_schema_name,
)


def test_worker_names_carry_run_id_and_worker_number() -> None:
    names = SchemaNames(prefix="schemaiso", run_id="ab12cd34")
    assert names.worker(1) == "schemaiso_ab12cd34_w1"
    assert names.worker(12) == "schemaiso_ab12cd34_w12"
    assert names.main == "schemaiso_ab12cd34_main"
    assert names.template == "schemaiso_template"


def test_two_runs_never_share_worker_names() -> None:
    first, second = SchemaNames("schemaiso", "00000001"), SchemaNames("schemaiso", "00000002")
    assert {first.worker(i) for i in range(1, 9)}.isdisjoint(
        {second.worker(i) for i in range(1, 9)}
    )


def test_long_names_are_shortened_deterministically_with_a_hash() -> None:
    long_a = "x" * 70 + "_a"
    long_b = "x" * 70 + "_b"
    assert len(fit_name(long_a).encode()) == 63
    assert fit_name(long_a) == fit_name(long_a)
    assert fit_name(long_a) != fit_name(long_b)
    assert fit_name("short") == "short"


def test_long_prefix_still_gives_distinct_valid_worker_names() -> None:
    names = SchemaNames(prefix="p" * 60, run_id="ab12cd34")
    workers = [names.worker(i) for i in range(1, 20)]
    assert len(set(workers)) == 19
    assert all(len(w.encode()) <= 63 for w in workers)
    assert all(validate_schema_name(w) for w in workers)


@pytest.mark.parametrize(
    "bad", ["has space", "semi;colon", 'quo"te', "1starts_with_digit", "pg_reserved", "", "é"]
)
def test_unsafe_names_are_rejected_with_the_setting_named(bad: str) -> None:
    with pytest.raises(SchemaIsoError, match="SCHEMAISO\\['PREFIX'\\]"):
        validate_schema_name(bad, setting="SCHEMAISO['PREFIX']")


def test_name_over_63_bytes_is_rejected_when_given_directly() -> None:
    with pytest.raises(SchemaIsoError, match="63 bytes"):
        validate_schema_name("a" * 64)


def test_quote_ident_doubles_quotes() -> None:
    assert quote_ident('we"ird') == '"we""ird"'


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "it's",
        "back\\slash",
        "ends with a backslash\\",
        "\\'",
        # A marker: json.dumps escapes quotes and non-ASCII with backslashes.
        marker("worker", "ab12cd34", failed="test_caf\u00e9 \"quoted\""),
    ],
)
def test_quote_literal_reads_back_the_same_whatever_standard_conforming_strings_says(
    value: str,
) -> None:
    """Markers and the clone engine's labels, comments and options may hold backslashes."""
    from .conftest import admin_connect

    with admin_connect() as conn:
        for setting in ("on", "off"):
            conn.execute(f"SET standard_conforming_strings = {setting}")
            assert conn.execute(f"SELECT {quote_literal(value)}") == [(value,)], setting


def test_quote_literal_refuses_nul() -> None:
    """libpq would cut the statement at the NUL; the clone engine's placeholders use it."""
    with pytest.raises(ValueError, match="NUL"):
        quote_literal("a\0b")


def test_marker_round_trips_and_foreign_comments_are_not_ours() -> None:
    payload = parse_marker(marker("worker", "ab12cd34"))
    assert payload is not None
    assert payload["run"] == "ab12cd34" and payload["role"] == "worker"
    assert {"host", "pid", "created"} <= set(payload)
    assert parse_marker("a schema someone else made") is None
    assert parse_marker(None) is None
    assert parse_marker("schemaiso:not json") is None


@pytest.mark.parametrize(
    ("name", "other"),
    [("schemaiso_ab12_w1", "schemaisoXab12Xw1"), ("a%b", "aXYZb"), ("a\\_b", "a\\xb")],
)
def test_like_escape_matches_the_name_only(name: str, other: str) -> None:
    from .conftest import admin_connect

    with admin_connect() as conn:
        rows = conn.execute(
            "SELECT %s LIKE %s, %s LIKE %s", [name, like_escape(name), other, like_escape(name)]
        )
    assert rows == [(True, False)]
