"""Clones of table inheritance: multiple parents, merged and local columns, inherited CHECKs, rows.

A child created with INHERITS has columns that are inherited and not local
(attislocal false); one attached later with ALTER TABLE ... INHERIT keeps
them local.  The clone must reproduce both, copy each table's own rows once,
and refuse a layout no DDL can reproduce.
"""

from __future__ import annotations

from typing import Any

import pytest

from schemaiso.clone import read_template
from schemaiso.errors import CloneError

from . import clone_support
from .clone_support import assert_faithful, build_template, clone_into, run
from .support.describe import describe_schema, diff_descriptions

database = clone_support.database  # a scratch database for this module
conn = clone_support.conn

INHERITANCE = """
CREATE TABLE item (
    id serial PRIMARY KEY,
    name text NOT NULL DEFAULT 'unnamed',
    price numeric(10, 2) CONSTRAINT item_price_check CHECK (price >= 0),
    CONSTRAINT item_name_check CHECK (name <> '') NO INHERIT
);
CREATE TABLE taggable (tags text[] NOT NULL DEFAULT '{{}}', name text);
-- Two parents ("name" merged from both), a local column, a column both inherited and local,
-- a constraint both inherited and local, and an own NO INHERIT constraint.
CREATE TABLE book (
    isbn text UNIQUE,
    price numeric(10, 2) DEFAULT 9.99,
    CONSTRAINT item_price_check CHECK (price >= 0),
    CONSTRAINT book_isbn_check CHECK (isbn <> '') NO INHERIT
) INHERITS (item, taggable);
-- The child's own changes to inherited columns.
ALTER TABLE book ALTER COLUMN name SET DEFAULT 'untitled';
ALTER TABLE book ALTER COLUMN tags DROP NOT NULL;
ALTER TABLE book ALTER COLUMN name SET STORAGE MAIN;
-- A grandchild.
CREATE TABLE ebook (url text NOT NULL) INHERITS (book);
-- A child created first and attached later keeps all its columns local.
CREATE TABLE gadget (id integer NOT NULL DEFAULT nextval('item_id_seq'), name text NOT NULL, price numeric(10, 2),
    volts integer, CONSTRAINT item_price_check CHECK (price >= 0));
ALTER TABLE gadget INHERIT item;
-- Added to the parent afterwards: inherited by every child.
ALTER TABLE item ADD CONSTRAINT item_price_cap CHECK (price < 1000);
CREATE INDEX book_tags ON book USING gin (tags);

INSERT INTO item (name, price) VALUES ('plain', 1);
INSERT INTO book (name, price, isbn, tags) VALUES ('novel', 12, '978', '{{fiction}}');
INSERT INTO ebook (name, price, isbn, url) VALUES ('e-novel', 5, '979', 'https://example.com');
INSERT INTO gadget (name, price, volts) VALUES ('lamp', 30, 230);
"""


@pytest.fixture
def inheritance(conn: Any) -> str:
    return build_template(conn, INHERITANCE)


def test_inheritance_clones_faithfully_and_independently(conn: Any, inheritance: str) -> None:
    described: dict[str, Any] = describe_schema(conn, inheritance)
    plan, (target, _) = assert_faithful(conn, inheritance)
    assert plan.warnings == ()

    relations, columns = described["relations"], described["columns"]
    assert relations["book"]["inherits"] == ["item", "taggable"]
    assert relations["ebook"]["inherits"] == ["book"]
    assert columns["book"]["name"] | {"local": False, "inherit_count": 2} == columns["book"]["name"]
    assert columns["book"]["price"]["local"] is True
    assert columns["book"]["price"]["inherit_count"] == 1
    assert columns["gadget"]["volts"]["local"] is True
    assert columns["gadget"]["name"]["local"] is True
    constraints = described["constraints"]
    assert constraints["book.item_price_check"]["local"] is True
    assert constraints["book.item_price_cap"]["local"] is False
    assert "book.item_name_check" not in constraints  # NO INHERIT
    # Each table's own rows, copied once.
    assert {name: described["data"][name][0] for name in ("item", "book", "ebook", "gadget")} == {
        "item": 1,
        "book": 1,
        "ebook": 1,
        "gadget": 1,
    }
    assert run(conn, f"SELECT count(*) FROM {target}.item") == [(4,)]
    assert run(conn, f"SELECT count(*) FROM ONLY {target}.item") == [(1,)]


def test_inherited_checks_and_sequences_apply_in_the_clone(conn: Any, inheritance: str) -> None:
    target = clone_into(conn, read_template(conn, inheritance))
    with pytest.raises(Exception, match="item_price_cap"):
        run(conn, f"INSERT INTO {target}.ebook (price, url) VALUES (5000, 'x')")
    assert run(
        conn, f"INSERT INTO {target}.ebook (url) VALUES ('x') RETURNING id, name, tags"
    ) == [(6, "untitled", [])]  # 5 went to the failed insert
    assert run(conn, f"SELECT last_value FROM {inheritance}.item_id_seq") == [(4,)]


@pytest.mark.parametrize(
    "sabotage",
    [
        "ALTER TABLE {clone}.ebook NO INHERIT {clone}.book",
        "ALTER TABLE {clone}.book ALTER COLUMN name DROP DEFAULT",
        "ALTER TABLE ONLY {clone}.item DROP CONSTRAINT item_price_cap;"
        " ALTER TABLE {clone}.book DROP CONSTRAINT item_price_cap",
        "INSERT INTO {clone}.item (id, name, price) SELECT id, name, price FROM ONLY {clone}.book",
    ],
    ids=["not-inherited", "child-default", "check-local-only", "row-in-parent"],
)
def test_describe_exposes_a_wrong_inheritance_clone(conn: Any, inheritance: str, sabotage: str) -> None:
    target = clone_into(conn, read_template(conn, inheritance))
    run(conn, f"BEGIN; {sabotage.format(clone=target)}; COMMIT")
    assert diff_descriptions(describe_schema(conn, inheritance), describe_schema(conn, target)) != []


def test_a_child_layout_no_ddl_reproduces_is_refused(conn: Any) -> None:
    template = build_template(
        conn,
        "CREATE TABLE parent (a int); CREATE TABLE child (b int) INHERITS (parent);"
        " ALTER TABLE parent ADD COLUMN c int",
    )
    with pytest.raises(CloneError, match=f"cannot clone inherited table {template}.child"):
        read_template(conn, template)
