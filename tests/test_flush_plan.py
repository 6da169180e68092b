"""flush/plan.py on hand-made catalogs: which tables a flush empties, how, and when
it hands the flush back to Django (no database needed)."""

from __future__ import annotations

import pytest

from schemaiso.flush.catalog import (
    TRIGGER_DELETE,
    TRIGGER_TRUNCATE,
    FlushCatalog,
    ForeignKey,
    Relation,
)
from schemaiso.flush.plan import Members, members, statements


def table(oid: int, name: str, *, pages: int = 0, triggers: int = 0, rewritten: bool = False,
          parents: tuple[int, ...] = (), kind: str = "r") -> Relation:
    return Relation(oid=oid, name=name, kind=kind, pages=pages, trigger_types=triggers,
                    rewritten=rewritten, parents=parents)


def catalog(*relations: Relation, keys: tuple[tuple[int, int, bool], ...] = (),
            resolved: dict[str, int | None] | None = None) -> FlushCatalog:
    rels = {r.oid: r for r in relations}
    return FlushCatalog(
        schema="w1", relations=rels,
        resolved=resolved if resolved is not None else {r.name: r.oid for r in relations},
        foreign_keys=tuple(ForeignKey(a, b, d) for a, b, d in keys),
    )


def plan(found: Members | str, dirty: set[int]) -> tuple[set[str], list[str]]:
    assert isinstance(found, Members), found
    made = statements(found, dirty)
    names = found.catalog.relations
    return {names[m].name for m in made.truncated}, [names[m].name for m in made.deleted]


def test_only_tables_with_rows_are_emptied_referencing_tables_first() -> None:
    # book -> author (checked at once), author -> country (Django's: at commit)
    cat = catalog(table(1, "author", pages=1), table(2, "book", pages=1), table(3, "country"),
                  table(4, "shelf"), keys=((2, 1, False), (1, 3, True)))
    found = members(cat, ["author", "book", "country", "shelf"], cascade=False)
    assert isinstance(found, Members)
    assert found.maybe_holding_rows() == [1, 2]
    assert plan(found, {1, 2}) == (set(), ["book", "author"])
    made = statements(found, {1, 2})
    assert made.sql == ('DELETE FROM "w1".book;\nDELETE FROM "w1".author',)
    assert statements(found, set()).sql == ()


def test_a_delete_trigger_rule_or_row_security_means_truncate_with_every_referencing_table() -> None:
    for flags in ({"triggers": TRIGGER_DELETE}, {"rewritten": True}):
        cat = catalog(table(1, "audited", pages=1, **flags), table(2, "note"), table(3, "other", pages=1),
                      keys=((2, 1, True),))
        found = members(cat, ["audited", "note", "other"], cascade=False)
        # note is empty, but TRUNCATE refuses a referenced table without its referencers
        assert plan(found, {1, 3}) == ({"audited", "note"}, ["other"])


def test_row_security_takes_a_table_with_pages_as_holding_rows() -> None:
    found = members(catalog(table(1, "secret", pages=2, rewritten=True)), ["secret"], cascade=False)
    assert isinstance(found, Members) and found.unprobeable(1)


def test_a_cycle_of_keys_checked_at_once_is_truncated_the_rest_deleted() -> None:
    cat = catalog(table(1, "left", pages=1), table(2, "right", pages=1), table(3, "node", pages=1),
                  keys=((1, 2, False), (2, 1, False), (3, 3, False)))
    found = members(cat, ["left", "right", "node"], cascade=False)
    assert plan(found, {1, 2, 3}) == ({"left", "right"}, ["node"])


def test_a_cycle_of_keys_checked_at_commit_is_deleted() -> None:
    cat = catalog(table(1, "left", pages=1), table(2, "right", pages=1),
                  keys=((1, 2, True), (2, 1, True)))
    found = members(cat, ["left", "right"], cascade=False)
    assert plan(found, {1, 2}) == (set(), ["left", "right"])


def test_a_big_table_with_checked_keys_is_truncated_when_that_is_cheaper() -> None:
    # 1,000 pages and two referencing keys: DELETE ~3.9 s, TRUNCATE of 3 tables ~6 ms
    cat = catalog(table(1, "permission", pages=1000), table(2, "group_perms"), table(3, "user_perms"),
                  table(4, "small", pages=1), keys=((2, 1, True), (3, 1, True)))
    found = members(cat, ["permission", "group_perms", "user_perms", "small"], cascade=False)
    assert plan(found, {1, 4}) == ({"permission", "group_perms", "user_perms"}, ["small"])


def test_partitions_and_children_belong_to_their_table() -> None:
    cat = catalog(table(1, "reading", kind="p"), table(2, "reading_old", pages=3, parents=(1,)),
                  table(3, "base"), table(4, "child", pages=1, parents=(3,)))
    found = members(cat, ["reading", "base"], cascade=False)
    assert isinstance(found, Members)
    assert found.maybe_holding_rows() == [1, 3]
    assert plan(found, {1, 3}) == (set(), ["reading", "base"])


def test_cascade_adds_referencing_tables_without_it_django_decides() -> None:
    cat = catalog(table(1, "content_type", pages=1), table(2, "permission", pages=1),
                  keys=((2, 1, True),))
    assert members(cat, ["content_type"], cascade=False) == (
        "table permission references content_type and is not flushed")
    found = members(cat, ["content_type"], cascade=True)
    assert isinstance(found, Members) and found.tables == {1, 2}
    assert plan(found, {1, 2}) == (set(), ["content_type", "permission"])


@pytest.mark.parametrize(("cat", "reason"), [
    (catalog(table(1, "a"), resolved={"a": None}), "table 'a' is not in schema 'w1'"),
    (catalog(table(1, "a"), resolved={"a": 99}), "table 'a' is not in schema 'w1'"),
    (catalog(table(1, "a"), keys=((77, 1, True),)), "a table outside schema 'w1' references one of its tables"),
    (catalog(table(1, "a", kind="f")), "a foreign table is flushed"),
    (catalog(table(1, "a"), table(2, "a_part", parents=(1,), triggers=TRIGGER_TRUNCATE)),
     "a flushed table has a TRUNCATE trigger"),
])
def test_what_the_fast_flush_leaves_to_django(cat: FlushCatalog, reason: str) -> None:
    assert members(cat, ["a"], cascade=True) == reason


def test_names_that_need_quotes_stay_quoted() -> None:
    cat = catalog(table(1, '"Case Post"', pages=1), resolved={"Case Post": 1})
    found = members(cat, ["Case Post"], cascade=False)
    assert isinstance(found, Members)
    assert statements(found, {1}).sql == ('DELETE FROM "w1"."Case Post"',)
