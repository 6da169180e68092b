"""testproject's ``evolving`` app, whose migrations a test writes and changes
between runs (``TESTPROJECT_EVOLVING``); its tests fail in any worker whose schema
does not have the columns the latest migrations give ``evolving_probe``."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..conftest import Project, Run, admin_connect

TEMPLATE = "schemaiso_template"

MIGRATION = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = {dependencies}
    operations = [migrations.RunSQL({sql!r}, {reverse!r})]
"""


class Evolving:
    """The ``evolving_migrations`` package of one test, and runs of the app with it."""

    def __init__(self, project: Project, root: Path) -> None:
        self.project = project
        self.root = root
        self.package = root / "evolving_migrations"
        self.package.mkdir()
        (self.package / "__init__.py").write_text("")
        self.columns = ["id"]
        self.write("0001_initial", [], "CREATE TABLE evolving_probe (id integer)",
                   "DROP TABLE evolving_probe")

    def write(self, name: str, dependencies: list[str], sql: str, reverse: str) -> None:
        deps = [("evolving", dep) for dep in dependencies]
        (self.package / f"{name}.py").write_text(
            textwrap.dedent(MIGRATION.format(dependencies=deps, sql=sql, reverse=reverse))
        )

    def add_column(self, name: str, after: str, column: str) -> None:
        self.write(name, [after], f"ALTER TABLE evolving_probe ADD COLUMN {column} integer",
                   f"ALTER TABLE evolving_probe DROP COLUMN {column}")
        self.columns.append(column)

    def run(self, *extra: str, **env: str) -> Run:
        return self.project.manage(
            "test", "evolving", "--parallel", "2", "--noinput", "--keepdb", *extra,
            TESTPROJECT_EVOLVING=str(self.root),
            TESTPROJECT_EVOLVING_COLUMNS=",".join(self.columns), **env,
        )

    def template_columns(self) -> list[str]:
        with admin_connect(f"test_{self.project.name}") as conn:
            rows = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                [f"{TEMPLATE}.evolving_probe"],
            )
        return [row[0] for row in rows]
