"""Write the SQL of every migration of a generated project, in order, as JSON.

    cd <project> && python <repo>/bench/_ddl.py OUT.json

Run by bench/micro.py with the project's settings (DJANGO_SETTINGS_MODULE) and
DATABASE_URL pointing at the database the project was just migrated into (with
BENCH_SEARCH_PATH set to the template schema): this is ``manage.py sqlmigrate``
for the whole plan, the statements ``migrate`` ran, without the Python. The
first entry creates Django's own ``django_migrations`` table, which ``migrate``
creates outside of any migration.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
sys.path.insert(0, os.getcwd())

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.db.migrations.recorder import MigrationRecorder  # noqa: E402


def main(out: str) -> int:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    with connection.schema_editor(collect_sql=True) as editor:
        editor.create_model(MigrationRecorder.Migration)
    entries = [{"migration": "django_migrations", "sql": "\n".join(editor.collected_sql)}]
    # What executor.collect_sql does for a whole plan, with the boundaries kept.
    state = None
    for migration, _backwards in plan:
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            if state is None:
                state = executor.loader.project_state(
                    (migration.app_label, migration.name), at_end=False)
            state = migration.apply(state, editor, collect_sql=True)
        entries.append({"migration": f"{migration.app_label}.{migration.name}",
                        "sql": "\n".join(editor.collected_sql)})
    with open(out, "w", encoding="utf-8") as f:
        json.dump(entries, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
