#!/usr/bin/env python3
"""Micro-benchmark: one copy of a migrated schema, four ways.

    python3 bench/micro.py --tables 300 [--repeat 5]

With the project bench/generate.py makes for ``--tables`` migrated (by
``manage.py migrate``) into a schema ``tpl`` of a scratch database, it times,
``--repeat`` times, interleaved, each step after an untimed CHECKPOINT:

- clone: schemaiso's engine, ``clone_schema(conn, read_template(conn, "tpl"), new)``
  (``read_template`` runs once per test run; it is timed apart);
- DDL: the same migrations' SQL (``sqlmigrate`` for the whole plan, see
  bench/_ddl.py) run straight into a fresh schema, in as few transactions as
  the lock table allows (one up to a few hundred models): the physical limit of
  any path that creates the objects by DDL;
- CREATE DATABASE ... TEMPLATE of a database holding just that schema (what
  Django's stock runner does per worker);
- restore: a snapshot of the template (written once, untimed, as a run writes
  it) read from its file and restored into a fresh schema, as a run on a fresh
  server does instead of ``migrate`` (snapshot/restore.py): the DDL of the clone
  plan plus ``COPY FROM`` of the template's rows.

Plus what dropping each copy costs (DROP SCHEMA, batched like schemaiso's
cleanup, vs DROP DATABASE). Prints medians and ratios. Same bootstrap, server
and cleanup rules as bench/compare.py. Standard library only at the top level.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "tools"), str(BENCH)]  # neither is a package

import _bootstrap  # noqa: E402
from common import Scratch, Stats, connect, scalar, server_url  # noqa: E402
from generate import DEFAULT_PROJECTS, ensure_project  # noqa: E402

T = TypeVar("T")
PROG = "micro"
TEMPLATE = "tpl"
# Lock table entries a CREATE TABLE takes here: the table, its primary key index, its
# identity sequence, its TOAST table and TOAST index. Every other index is one more.
_LOCKS_PER_TABLE = 5


def _project_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=url, PYTHONPATH=_bootstrap.child_pythonpath(), **extra)
    return env


def _run(argv: Sequence[str], project: Path, env: dict[str, str], what: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(list(argv), cwd=project, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", check=False)
    if result.returncode != 0:
        print(_bootstrap.tail(result.stdout), file=sys.stderr)
        _bootstrap.die(PROG, f"{what} failed (exit {result.returncode}); output above")
    return time.perf_counter() - start


def _transactions(entries: list[dict[str, str]], budget: int) -> list[str]:
    """Migrations' SQL packed, in order, into transactions whose estimated lock
    table entries stay within ``budget``."""
    batches: list[list[str]] = []
    weight = budget + 1
    for entry in entries:
        sql = entry["sql"]
        cost = (_LOCKS_PER_TABLE * len(re.findall(r"^CREATE TABLE ", sql, re.M))
                + len(re.findall(r"^CREATE (?:UNIQUE )?INDEX ", sql, re.M))
                + len(re.findall(r" UNIQUE \(", sql)))
        if weight + cost > budget:
            batches.append([])
            weight = 0
        batches[-1].append(sql)
        weight += cost
    return ["\n".join(batch) for batch in batches]


def _run_ddl(conn: Any, scripts: list[str], target: str) -> None:
    from psycopg import sql

    path = sql.SQL("SET LOCAL search_path TO {}, public").format(
        sql.Identifier(target)).as_string(conn)
    for script in scripts:
        with conn.transaction():
            conn.execute(f"{path};\n{script}")


def _drop_schema(conn: Any, schema: str, budget: int) -> None:
    """DROP SCHEMA ... CASCADE after dropping its tables in lock-sized batches,
    as schemaiso's cleanup does (one DROP of a big schema runs out of lock slots)."""
    from psycopg import sql

    tables = [row[0] for row in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r' "
        "ORDER BY oid DESC", [schema]).fetchall()]
    step = max(1, budget // (_LOCKS_PER_TABLE + 2))
    for start in range(0, len(tables), step):
        names = sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables[start:start + step])
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(names))
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _relations(conn: Any, schema: str) -> tuple[int, int]:
    """(tables, relations of any kind) in ``schema``, TOAST included."""
    tables = scalar(conn, "SELECT count(*) FROM pg_class WHERE relnamespace = %s::regnamespace "
                    "AND relkind IN ('r', 'p')", [schema])
    relations = scalar(conn, """
        SELECT count(*) FROM pg_class c WHERE c.relnamespace = %s::regnamespace
        OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = %s::regnamespace)
        OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (
            SELECT reltoastrelid FROM pg_class WHERE relnamespace = %s::regnamespace))
    """, [schema, schema, schema])
    return int(tables), int(relations)


def _timed(stats: Stats, step: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of ``step``, run after an untimed CHECKPOINT."""
    stats.checkpoint()
    start = time.perf_counter()
    result = step()
    return time.perf_counter() - start, result


def _time(stats: Stats, step: Callable[[], object]) -> float:
    return _timed(stats, step)[0]


def micro(args: argparse.Namespace) -> int:
    from psycopg import sql

    from schemaiso.clone import clone_schema, read_template, server_lock_budget

    with contextlib.ExitStack() as stack:
        try:
            admin_url, described = server_url(PROG, stack)
            project = ensure_project(args.tables, args.projects.resolve())
            scratch = Scratch(PROG, admin_url)
            stack.callback(scratch.drop_all)
            stats = Stats(admin_url)
            stack.callback(stats.close)
            _bootstrap.say(PROG, f"server: {described} (server_version_num {stats.version})")
            _bootstrap.say(PROG, f"project: {project} ({args.tables} models); databases "
                                 f"{scratch.prefix}* are dropped at the end")

            work, pristine = scratch.name("work"), scratch.name("tpl")
            scratch.create(work)
            url = scratch.url(work)
            with connect(url) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(TEMPLATE)))
            _bootstrap.say(PROG, f"migrating the project into schema {TEMPLATE!r}...")
            env = _project_env(url, BENCH_SEARCH_PATH=TEMPLATE)
            migrate = _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                           project, env, "manage.py migrate")
            ddl_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "ddl.json"
            _run([sys.executable, str(BENCH / "_ddl.py"), str(ddl_file)], project, env,
                 "collecting the migrations' SQL (bench/_ddl.py)")
            entries = json.loads(ddl_file.read_text())
            # The database CREATE DATABASE copies holds the template schema and nothing else.
            scratch.create(pristine, template=work)

            conn = stack.enter_context(connect(url))
            tables, relations = _relations(conn, TEMPLATE)
            budget = server_lock_budget(conn)
            ddl = _transactions(entries, 2 * budget)  # half the lock table: we run alone
            clone_transactions = len(read_template(conn, TEMPLATE).scripts(
                "x", lock_budget=budget))
            _bootstrap.say(PROG, f"template: {tables} tables, {relations} relations (TOAST and "
                                 f"indexes included); migrate took {migrate:.2f}s; clone in "
                                 f"{clone_transactions}, DDL in {len(ddl)} transaction(s)")

            snapshot = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "tpl.snapshot"
            _write_snapshot(conn, snapshot)
            times: dict[str, list[float]] = {key: [] for key in (
                "read", "clone", "ddl", "createdb", "restore", "dropschema", "dropdb")}
            for rep in range(1, args.repeat + 1):
                print(f"{PROG}: repetition {rep}/{args.repeat} ... ", end="", flush=True)
                clone_target, ddl_target = f"clone_{rep}", f"ddl_{rep}"
                restore_target = f"restore_{rep}"
                db_copy = scratch.name(f"copy_{rep}")
                conn.execute(sql.SQL("CREATE SCHEMA {}; CREATE SCHEMA {}; CREATE SCHEMA {}").format(
                    sql.Identifier(clone_target), sql.Identifier(ddl_target),
                    sql.Identifier(restore_target)))

                seconds, plan = _timed(stats, lambda: read_template(conn, TEMPLATE))
                times["read"].append(seconds)
                times["clone"].append(_time(stats, partial(
                    clone_schema, conn, plan, clone_target, lock_budget=budget)))
                times["ddl"].append(_time(stats, partial(_run_ddl, conn, ddl, ddl_target)))
                times["createdb"].append(_time(stats, partial(
                    scratch.create, db_copy, template=pristine)))
                times["restore"].append(_time(stats, partial(
                    _restore_snapshot, conn, snapshot, restore_target, budget)))

                copies = {t: _relations(conn, t) for t in (clone_target, ddl_target, restore_target)}
                with connect(scratch.url(db_copy)) as other:
                    copies[db_copy] = _relations(other, TEMPLATE)
                wrong = {k: v for k, v in copies.items() if v[0] != tables}
                if wrong:
                    _bootstrap.die(PROG, f"a copy does not have the template's {tables} tables: "
                                         f"{wrong}")

                times["dropschema"].append(_time(stats, partial(
                    _drop_schema, conn, clone_target, budget)))
                times["dropdb"].append(_time(stats, partial(_drop_database, admin_url, db_copy)))
                _drop_schema(conn, ddl_target, budget)
                _drop_schema(conn, restore_target, budget)
                print(f"clone {times['clone'][-1]:.2f}s, DDL {times['ddl'][-1]:.2f}s, "
                      f"CREATE DATABASE {times['createdb'][-1]:.2f}s, "
                      f"restore {times['restore'][-1]:.2f}s", flush=True)

            report(args, tables, relations, len(ddl), times)
            return 0
        except KeyboardInterrupt:
            print(f"\n{PROG}: interrupted; cleaning up...", file=sys.stderr, flush=True)
            raise


def _write_snapshot(conn: Any, path: Path) -> None:
    """The template as a snapshot file, the way a run writes one (plan, rows)."""
    from schemaiso.clone import read_template
    from schemaiso.clone.plan_json import plan_to_json
    from schemaiso.snapshot import capture, fileformat

    plan = read_template(conn, TEMPLATE)
    fileformat.write(path, {"key": path.name}, plan_to_json(plan), capture.rows(conn, plan))


def _restore_snapshot(conn: Any, path: Path, target: str, budget: int) -> None:
    """Read the file (checksum included) and restore it into ``target``."""
    from schemaiso.clone.plan_json import plan_from_json
    from schemaiso.snapshot import fileformat, restore

    contents = fileformat.read(path)
    restore.restore(conn, contents, plan_from_json(contents.plan), target, lock_budget=budget)


def _drop_database(admin_url: str, name: str) -> None:
    from psycopg import sql

    with connect(admin_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def report(args: argparse.Namespace, tables: int, relations: int, transactions: int,
           times: dict[str, list[float]]) -> None:
    med = {key: _bootstrap.median(values) or 0.0 for key, values in times.items()}
    title = f"median of {args.repeat}" if args.repeat > 1 else "one repetition"
    print(f"\none copy of a {args.tables}-model schema ({tables} tables, {relations} relations), "
          f"{title}:")
    print(f"{'':44}{'time':>8}{'/ DDL':>8}")
    rows = [
        ("schemaiso clone_schema", med["clone"]),
        (f"same DDL, {transactions} transaction(s)", med["ddl"]),
        ("CREATE DATABASE ... TEMPLATE", med["createdb"]),
        ("schemaiso snapshot restore (file, DDL, COPY)", med["restore"]),
    ]
    for label, value in rows:
        print(f"{label:44}{value:>7.2f}s{_ratio(value, med['ddl'], 2):>8}")
    print(f"{'schemaiso read_template (once per run)':44}{med['read']:>7.2f}s")
    print(f"{'drop: DROP SCHEMA, batched':44}{med['dropschema']:>7.2f}s")
    print(f"{'drop: DROP DATABASE':44}{med['dropdb']:>7.2f}s")

    print(f"ratio clone/ddl={_ratio(med['clone'], med['ddl'])} "
          f"clone/createdb={_ratio(med['clone'], med['createdb'])} "
          f"ddl/createdb={_ratio(med['ddl'], med['createdb'])} "
          f"restore/ddl={_ratio(med['restore'], med['ddl'])}", flush=True)


def _ratio(a: float, b: float, digits: int = 3) -> str:
    return f"{a / b:.{digits}f}" if b > 0 else "n/a"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="micro.py",
        description="One copy of a migrated schema: schemaiso's clone vs the same DDL vs "
        "CREATE DATABASE ... TEMPLATE.",
    )
    parser.add_argument("--tables", type=_bootstrap.positive_int, default=300, metavar="N",
                        help="models in the generated project (default 300)")
    parser.add_argument("--repeat", type=_bootstrap.positive_int, default=5, metavar="N",
                        help="repetitions, medians reported (default 5)")
    parser.add_argument("--projects", type=Path, default=DEFAULT_PROJECTS, metavar="DIR",
                        help="where generated projects are cached (default bench/.projects)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036
        _bootstrap.die(PROG, f"Python 3.11+ is required, this is {sys.version.split()[0]}")
    args = parse_args(argv)
    try:
        _bootstrap.ensure_dependencies(PROG, __file__)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted while setting up .venv-demo", file=sys.stderr, flush=True)
        return 130
    with _bootstrap.signals_interrupt():
        try:
            return micro(args)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
