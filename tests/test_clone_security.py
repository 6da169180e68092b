"""Clones of row-level security (flags and policies) and of rules.

Policies and rules are deparsed with the template on the path, so the tables
and functions they name bind to the clone's own; the clone must enforce them
against its own rows and keep working after the template is dropped.
"""

from __future__ import annotations

from typing import Any

import pytest

from schemaiso.clone import read_template

from . import clone_support
from .clone_support import assert_faithful, build_template, clone_into, new_name, run
from .support.describe import describe_schema, diff_descriptions

database = clone_support.database  # a scratch database for this module
conn = clone_support.conn

SECURED = """
CREATE FUNCTION current_tenant() RETURNS integer LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.tenant', true), '')::integer $$;
CREATE TABLE tenant (id integer PRIMARY KEY, active boolean NOT NULL DEFAULT true);
CREATE TABLE document (
    id serial PRIMARY KEY, tenant_id integer NOT NULL REFERENCES tenant (id), title text, secret boolean
);
ALTER TABLE document ENABLE ROW LEVEL SECURITY;
ALTER TABLE document FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON document USING (tenant_id = current_tenant());
CREATE POLICY active_tenants ON document AS RESTRICTIVE FOR INSERT TO {role}, public
    WITH CHECK (EXISTS (SELECT FROM tenant t WHERE t.id = tenant_id AND t.active));
CREATE POLICY no_secrets ON document AS PERMISSIVE FOR UPDATE TO {role}
    USING (NOT secret) WITH CHECK (title <> '');
CREATE TABLE audit_log (id serial PRIMARY KEY, note text);
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;  -- enabled, no policies: owner only
COMMENT ON POLICY tenant_rows ON document IS 'Tenant isolation';

CREATE TABLE archived (id integer PRIMARY KEY, title text);
CREATE RULE archived_no_delete AS ON DELETE TO archived DO INSTEAD NOTHING;
CREATE RULE archived_log AS ON INSERT TO archived WHERE NEW.id < 0
    DO ALSO INSERT INTO audit_log (note) VALUES ('negative ' || NEW.id);
CREATE RULE archived_update AS ON UPDATE TO archived DO INSTEAD NOTHING;
ALTER TABLE archived DISABLE RULE archived_update;
CREATE VIEW recent AS SELECT id, title FROM archived;
CREATE RULE recent_insert AS ON INSERT TO recent DO INSTEAD INSERT INTO archived VALUES (NEW.id, NEW.title);
COMMENT ON RULE archived_log ON archived IS 'Audit';

INSERT INTO tenant VALUES (1), (2);
INSERT INTO document (tenant_id, title, secret) VALUES (1, 'one', false), (2, 'two', true);
INSERT INTO archived VALUES (1, 'old');
INSERT INTO audit_log (note) VALUES ('created');
"""


@pytest.fixture
def role(conn: Any) -> str:
    name = new_name("reader")
    run(conn, f"CREATE ROLE {name}")
    return name


@pytest.fixture
def secured(conn: Any, role: str) -> str:
    return build_template(conn, SECURED.replace("{role}", role))


def test_row_level_security_and_rules_clone_faithfully_and_independently(
    conn: Any, secured: str, role: str
) -> None:
    described: dict[str, Any] = describe_schema(conn, secured)
    plan, _ = assert_faithful(conn, secured)
    assert plan.warnings == ()

    relations, policies, rules = described["relations"], described["policies"], described["rules"]
    assert relations["document"]["row_security"] is True
    assert relations["document"]["force_row_security"] is True
    assert relations["audit_log"]["force_row_security"] is False
    assert policies["document.active_tenants"] == {
        "command": "a",
        "permissive": False,
        "roles": ["public"],
        "using": None,
        "with_check": "(EXISTS ( SELECT\n   FROM tenant t\n  WHERE ((t.id = document.tenant_id) AND t.active)))",
    }
    assert policies["document.no_secrets"]["roles"] == [role]
    assert policies["document.tenant_rows"]["using"] == "(tenant_id = current_tenant())"
    assert rules["archived.archived_update"]["enabled"] == "D"
    assert rules["archived.archived_log"]["definition"].startswith(
        "CREATE RULE archived_log AS\n    ON INSERT TO archived"
    )
    assert "policy tenant_rows on table document" in described["comments"]
    assert described["data"]["document"][0] == 2


def test_policies_and_rules_of_a_clone_act_on_the_clone(conn: Any, secured: str, role: str) -> None:
    target = clone_into(conn, read_template(conn, secured))
    run(conn, f"GRANT USAGE ON SCHEMA {target} TO {role}")
    run(conn, f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {target} TO {role}")
    run(conn, f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {target} TO {role}")
    run(conn, f"UPDATE {secured}.tenant SET active = false")  # the clone's tenants stay active
    # As the role, for tenant 2: the insert passes only if the policy reads the clone's
    # (active) tenants, and only tenant 2's rows are visible.
    run(conn, "BEGIN")
    try:
        run(conn, f"SET LOCAL ROLE {role}")
        run(conn, "SET LOCAL app.tenant = '2'")
        run(conn, f"INSERT INTO {target}.document (tenant_id, title) VALUES (2, 'new')")
        visible = run(conn, f"SELECT title FROM {target}.document ORDER BY title")
    finally:
        run(conn, "COMMIT")
    assert visible == [("new",), ("two",)]
    assert run(conn, f"SELECT count(*) FROM {target}.document WHERE tenant_id = 2") == [(2,)]
    run(conn, f"DELETE FROM {target}.archived")
    run(conn, f"INSERT INTO {target}.archived VALUES (-5, 'negative')")
    run(conn, f"INSERT INTO {target}.recent VALUES (7, 'via view')")
    assert run(conn, f"SELECT count(*) FROM {target}.archived") == [(3,)]
    assert run(conn, f"SELECT note FROM {target}.audit_log ORDER BY id") == [
        ("created",),
        ("negative -5",),
    ]
    assert run(conn, f"SELECT count(*) FROM {secured}.audit_log") == [(1,)]


def test_a_policy_naming_the_template_in_a_string_is_reported(conn: Any) -> None:
    template = build_template(
        conn,
        "CREATE TABLE t (id int); ALTER TABLE t ENABLE ROW LEVEL SECURITY;"
        " CREATE POLICY by_name ON t USING (to_regclass('{schema}.t') IS NOT NULL)",
    )
    assert read_template(conn, template).warnings == (
        f'policy by_name on {template}.t names schema "{template}" in its definition;'
        " clones will still read the template",
    )


@pytest.mark.parametrize(
    "sabotage",
    [
        "DROP POLICY tenant_rows ON {clone}.document",
        "ALTER TABLE {clone}.document NO FORCE ROW LEVEL SECURITY",
        "ALTER POLICY no_secrets ON {clone}.document TO public",
        "ALTER TABLE {clone}.archived ENABLE RULE archived_update",
        "DROP RULE archived_log ON {clone}.archived",
    ],
    ids=["policy-missing", "force-flag", "policy-roles", "rule-state", "rule-missing"],
)
def test_describe_exposes_a_wrong_security_clone(conn: Any, secured: str, sabotage: str) -> None:
    target = clone_into(conn, read_template(conn, secured))
    run(conn, f"BEGIN; {sabotage.format(clone=target)}; COMMIT")
    assert diff_descriptions(describe_schema(conn, secured), describe_schema(conn, target)) != []
