#!/usr/bin/env python3
"""Micro-benchmark: the flush that ends a TransactionTestCase, Django's and schemaiso's.

    python3 bench/flush.py --tables 300 [--repeat 5]

With the project bench/generate.py makes for ``--tables`` migrated into a schema
``tpl`` of a scratch database, and four clones of it beside (the template and the
workers of a ``--parallel 4`` run: Django's flush reads every schema's relations),
bench/_flush_child.py times, ``--repeat`` times, interleaved: what a typical
TransactionTestCase writes (two rows into each of three models), then Django's
flush command as such a test runs it (no ``available_apps``: every table), once
on a plain connection ("stock": one TRUNCATE of every table) and once on the same
connection isolated as a worker's ("schemaiso": only what holds rows, which after
``post_migrate`` includes content types and permissions); and the ``post_migrate``
that follows each flush (content types and permissions re-created), the same for
both. Prints medians and ``ratio flush=X with_post_migrate=Y``.

Leaves out the rest of a test (setup, the test's own queries, closing connections)
and the concurrency of a real run (bench/compare.py --transactional has both).
Same bootstrap, server and cleanup rules as bench/compare.py. Standard library
only at the top level.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "tools"), str(BENCH)]  # neither is a package

import _bootstrap  # noqa: E402
from common import Scratch, connect, server_url  # noqa: E402
from generate import DEFAULT_PROJECTS, ensure_project  # noqa: E402
from micro import _project_env, _run  # noqa: E402

PROG = "flush"
TEMPLATE = "tpl"
COPIES = 4


def flush_bench(args: argparse.Namespace) -> int:
    from psycopg import sql

    from schemaiso.clone import clone_schema, read_template

    with contextlib.ExitStack() as stack:
        admin_url, described = server_url(PROG, stack)
        project = ensure_project(args.tables, args.projects.resolve())
        scratch = Scratch(PROG, admin_url)
        stack.callback(scratch.drop_all)
        _bootstrap.say(PROG, f"server: {described}")
        _bootstrap.say(PROG, f"project: {project} ({args.tables} models); databases "
                             f"{scratch.prefix}* are dropped at the end")
        work = scratch.name("work")
        scratch.create(work)
        url = scratch.url(work)
        with connect(url) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(TEMPLATE)))
        _bootstrap.say(PROG, f"migrating into schema {TEMPLATE!r}, then {COPIES} clones beside it...")
        env = _project_env(url, BENCH_SEARCH_PATH=TEMPLATE)
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], project, env,
             "manage.py migrate")
        with connect(url) as conn:
            plan = read_template(conn, TEMPLATE)
            for n in range(COPIES):
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(f"w{n}")))
                clone_schema(conn, plan, f"w{n}")
        out = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "times.json"
        _bootstrap.say(PROG, f"timing {args.repeat} flush(es) each way, interleaved...")
        _run([sys.executable, str(BENCH / "_flush_child.py"), TEMPLATE, str(args.repeat),
              str(out)], project, env, "bench/_flush_child.py")
        times = {kind: statistics.median(values) * 1000
                 for kind, values in json.loads(out.read_text()).items()}
        stock, ours, post_migrate = times["stock"], times["schemaiso"], times["post_migrate"]
        print(f"\n{'':24}{'stock':>10}{'schemaiso':>12}   (median of {args.repeat}, ms)")
        print(f"{'flush':24}{stock:>10.1f}{ours:>12.1f}")
        print(f"{'post_migrate after it':24}{post_migrate:>10.1f}{post_migrate:>12.1f}")
        print(f"{'flush + post_migrate':24}{stock + post_migrate:>10.1f}{ours + post_migrate:>12.1f}")
        print(f"ratio flush={ours / stock:.3f} "
              f"with_post_migrate={(ours + post_migrate) / (stock + post_migrate):.3f}", flush=True)
        return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="flush.py", description="A TransactionTestCase's flush: Django's vs schemaiso's.")
    parser.add_argument("--tables", type=_bootstrap.positive_int, default=300, metavar="N",
                        help="models in the generated project (default 300)")
    parser.add_argument("--repeat", type=_bootstrap.positive_int, default=5, metavar="N",
                        help="repetitions, medians reported (default 5)")
    parser.add_argument("--projects", type=Path, default=DEFAULT_PROJECTS, metavar="DIR",
                        help="where generated projects are cached (default bench/.projects)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        _bootstrap.ensure_dependencies(PROG, __file__)
    except KeyboardInterrupt:
        return 130
    with _bootstrap.signals_interrupt():
        try:
            return flush_bench(args)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
