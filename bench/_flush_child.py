"""Time flushes in a migrated schema, Django's and schemaiso's, and post_migrate.

    cd <project> && python <repo>/bench/_flush_child.py SCHEMA REPEAT OUT.json

Run by bench/flush.py with the project's settings and DATABASE_URL; the project
is migrated into SCHEMA. Each repetition, for each way, writes what a typical
TransactionTestCase writes (WRITES_ROWS rows into each of the first WRITES_MODELS
models of the first app, a FK chain, committed), then times Django's flush command
as a TransactionTestCase without ``available_apps`` runs it, but with
``post_migrate`` inhibited, then ``post_migrate`` apart. "schemaiso" is the same
connection isolated as a worker's (activation.install and a worker's state).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
sys.path.insert(0, os.getcwd())

import django  # noqa: E402

django.setup()

from django.apps import apps  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.sql import emit_post_migrate_signal  # noqa: E402
from django.db import connection  # noqa: E402

from schemaiso import activation  # noqa: E402
from schemaiso.backends.state import STATE_KEY  # noqa: E402

WRITES_MODELS = 3
WRITES_ROWS = 2


def write_rows() -> None:
    models = list(apps.get_app_config("a00").get_models())[:WRITES_MODELS]
    previous = None
    for model in models:
        for i in range(WRITES_ROWS):
            fields = {"name": "w", "code": f"w-{i}", "value": i}
            if previous is not None and hasattr(model, "parent_id"):
                fields["parent"] = previous
            row = model.objects.create(**fields)
        previous = row


def timed(step) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def flush() -> None:
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False,
                 allow_cascade=False, inhibit_post_migrate=True)


def main(schema: str, repeat: int, out: str) -> int:
    worker_state = {"alias": "default", "prefix": "bench", "run_id": "0", "shared": "public",
                    "template": "none", "schema": schema, "role": "worker", "mirror": False}
    times: dict[str, list[float]] = {"stock": [], "schemaiso": [], "post_migrate": []}
    emit_post_migrate_signal(0, False, "default")
    for _ in range(repeat):
        for kind in ("stock", "schemaiso"):
            connection.close()
            if kind == "schemaiso":
                activation.install()
                connection.settings_dict[STATE_KEY] = worker_state
            write_rows()
            times[kind].append(timed(flush))
            times["post_migrate"].append(timed(
                lambda: emit_post_migrate_signal(0, False, "default")))
            if kind == "schemaiso":
                connection.settings_dict.pop(STATE_KEY)
                activation.uninstall()
    with open(out, "w", encoding="utf-8") as f:
        json.dump(times, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
