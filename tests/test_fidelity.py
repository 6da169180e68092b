"""Clones of testproject's real migrated template describe exactly like the template.

``manage.py test --keepdb`` leaves the template schema that ``migrate`` produced for
a real project (FKs, M2M, data migrations, post_migrate rows, a RunSQL view,
trigger and function with its own search_path, contrib.postgres fields and
indexes, extensions). Two fresh clones must show zero differences from it.
"""

from __future__ import annotations

from schemaiso import clone
from schemaiso.markers import marker
from schemaiso.naming import quote_ident, quote_literal

from .conftest import Project, admin_connect
from .support.describe import describe_schema, diff_descriptions

TEMPLATE = "schemaiso_template"


def test_clones_of_the_migrated_testproject_template_have_zero_differences(
    project: Project,
) -> None:
    run = project.manage("test", "library.tests.test_connections", "--noinput", "--keepdb")
    assert run.returncode == 0, run.explain()

    with admin_connect(f"test_{project.name}") as conn:
        template = describe_schema(conn.raw, TEMPLATE)
        plan = clone.read_template(conn.raw, TEMPLATE, "public")
        assert plan.warnings == ()
        for target in ("fidelity_a", "fidelity_b"):
            conn.execute(
                f"CREATE SCHEMA {quote_ident(target)}; COMMENT ON SCHEMA {quote_ident(target)} "
                f"IS {quote_literal(marker('worker', '0'))}"
            )
            clone.clone_schema(conn.raw, plan, target)
            assert diff_descriptions(template, describe_schema(conn.raw, target)) == []

        # The template really holds what the test project's migrations make.
        relations = template["relations"]
        assert isinstance(relations, dict)
        assert {"library_book", "library_book_tags", "library_book_stats", "shop_legacy_invoice",
                "django_content_type", "auth_permission", "django_migrations"} <= set(relations)
        assert template["triggers"] and template["functions"]
        counts = dict(
            conn.execute(
                "SELECT 'tags', count(*) FROM fidelity_a.library_tag UNION ALL "
                "SELECT 'invoices', count(*) FROM fidelity_a.shop_legacy_invoice UNION ALL "
                "SELECT 'content types', count(*) FROM fidelity_a.django_content_type"
            )
        )
        assert counts["tags"] >= 3 and counts["invoices"] == 3 and counts["content types"] > 10

        # Extensions live in the shared schema, never in the template.
        placed = dict(
            conn.execute(
                "SELECT extname, extnamespace::regnamespace::text FROM pg_extension "
                "WHERE extname <> 'plpgsql'"
            )
        )
        assert {"hstore", "pg_trgm", "btree_gist", "citext"} <= set(placed)
        assert set(placed.values()) == {"public"}

        # The function created with SET search_path FROM CURRENT points at each clone.
        for target in ("fidelity_a", "fidelity_b"):
            [(config,)] = conn.execute(
                "SELECT array_to_string(proconfig, ';') FROM pg_proc "
                "WHERE proname = 'library_book_count' AND pronamespace = %s::regnamespace",
                [target],
            )
            assert target in config and TEMPLATE not in config, config
