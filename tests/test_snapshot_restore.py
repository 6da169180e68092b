"""A snapshot restored into a schema describes exactly like the template it was
taken from: structure, every row and every sequence value, with the writer's and
the restorer's sessions set to different date, time zone, interval and float
styles (COPY's text follows them unless the snapshot pins them), on psycopg 3 and,
where tox installs it alone, psycopg2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemaiso.clone import read_template, server_lock_budget, structure_signature
from schemaiso.clone.plan_json import plan_from_json, plan_to_json
from schemaiso.snapshot import capture, fileformat, restore

from . import clone_support
from .clone_support import build_template, new_name, run
from .support.describe import describe_schema, diff_descriptions
from .test_clone_reset import TEMPLATE_SQL

database = clone_support.database
conn = clone_support.conn

# Braces doubled: build_template formats the SQL.
VALUES_SQL = """
CREATE TYPE mood2 AS ENUM ('calm', 'busy');
CREATE TABLE awkward (
    id int PRIMARY KEY,
    at timestamptz, day date, span interval, ratio float8, blob bytea, amount numeric(20, 10),
    doc jsonb, words text[], note text, feeling mood2
);
INSERT INTO awkward VALUES
  (1, '2024-02-03 04:05:06.789+05:30', '2024-02-03', '1 year 2 mons 3 days 04:05:06.5',
   0.1 + 0.2, '\\x00ff5c0a', 12345.0123456789, '{{"a": [1, "\\t"]}}', '{{"x,y", NULL, "\\"q\\""}}',
   E'tab\\there\\nnewline \\\\ backslash \\u00e9\\u4e2d', 'busy'),
  (2, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL, NULL, NULL),
  (3, '-infinity', '0044-03-15 BC', '-5 minutes', 1e-300, '\\x', -0.0000000001, 'null', '{{}}', '', 'calm');
"""


def test_a_restored_snapshot_is_the_template_whatever_the_sessions_styles(
    conn: Any, tmp_path: Path
) -> None:
    template = build_template(conn, TEMPLATE_SQL + VALUES_SQL)
    plan = read_template(conn, template)
    run(conn, "SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'; "
              "SET IntervalStyle = 'sql_standard'; SET extra_float_digits = -10")
    path = tmp_path / "t.snapshot"
    fileformat.write(path, {"key": path.name}, plan_to_json(plan), capture.rows(conn, plan))
    run(conn, "SET DateStyle = 'German'; SET TimeZone = 'America/Anchorage'; "
              "SET IntervalStyle = 'iso_8601'; SET extra_float_digits = -15")

    contents = fileformat.read(path)
    target = new_name("restored")
    run(conn, f"CREATE SCHEMA {target}")
    restore.restore(conn, contents, plan_from_json(contents.plan), target,
                    lock_budget=server_lock_budget(conn))
    restore.check_structure(conn, target, structure_signature(conn, template))

    run(conn, "RESET ALL")
    assert diff_descriptions(describe_schema(conn, template), describe_schema(conn, target)) == []
    rows = "SELECT t::text FROM {}.awkward AS t ORDER BY id"
    assert run(conn, rows.format(target)) == run(conn, rows.format(template))


def test_a_file_without_a_tables_rows_is_refused_before_anything_runs(
    conn: Any, tmp_path: Path
) -> None:
    template = build_template(conn, TEMPLATE_SQL)
    plan = read_template(conn, template)
    rows = capture.rows(conn, plan)[1:]  # one table's rows missing
    path = tmp_path / "t.snapshot"
    fileformat.write(path, {"key": path.name}, plan_to_json(plan), rows)
    target = new_name("restored")
    run(conn, f"CREATE SCHEMA {target}")
    contents = fileformat.read(path)
    with pytest.raises(restore.RestoreError, match=r"lacks the rows of 1 table"):
        restore.restore(conn, contents, plan_from_json(contents.plan), target, lock_budget=4000)
    assert run(conn, f"SELECT count(*) FROM pg_class WHERE relnamespace = '{target}'::regnamespace") == [(0,)]
