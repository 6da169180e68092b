"""What bench/compare.py and bench/micro.py share: the server, scratch databases
named after one prefix (all dropped at the end), and server-side counters.

Standard library at import time; psycopg is imported inside the functions, after
``_bootstrap.ensure_dependencies`` made sure it is there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for _path in (REPO / "tools", BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import _bootstrap  # noqa: E402  (tools/ is not a package)


def server_url(prog: str, stack: contextlib.ExitStack) -> tuple[str, str]:
    """(admin URL, description): DATABASE_URL, or a throwaway server with fsync on
    (tools/pgserver.py without --fast) stopped when ``stack`` closes."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url, f"DATABASE_URL {_bootstrap.redacted(url)}"
    from pgserver import PgServerError, ThrowawayPostgres

    _bootstrap.say(prog, "DATABASE_URL is not set: starting a throwaway PostgreSQL "
                         "(tools/pgserver.py, fsync on)...")
    server = ThrowawayPostgres(fast=False)
    try:
        stack.enter_context(server)
    except PgServerError as exc:
        _bootstrap.die(prog, str(exc))
    return server.url, server.describe()


def connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def scalar(conn: Any, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


class Scratch:
    """Databases named ``bench_<hex>`` and ``bench_<hex>_*`` on the server at
    ``admin_url``; ``drop_all`` removes every one of them, whoever created it (the
    test runners' test databases and clones are given names under the prefix)."""

    def __init__(self, prog: str, admin_url: str) -> None:
        self.prog = prog
        self.admin_url = admin_url
        self.prefix = f"bench_{secrets.token_hex(4)}"
        self._used = False

    def name(self, suffix: str = "") -> str:
        return f"{self.prefix}_{suffix}" if suffix else self.prefix

    def url(self, name: str) -> str:
        return _bootstrap.with_database(self.admin_url, name)

    def create(self, name: str, template: str | None = None) -> None:
        from psycopg import sql

        self._used = True
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with connect(self.admin_url) as conn:
            conn.execute(query)

    def leftovers(self) -> list[str]:
        with connect(self.admin_url) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname = %s OR starts_with(datname, %s) "
                "ORDER BY datname", [self.prefix, self.prefix + "_"],
            ).fetchall()
        return [row[0] for row in rows]

    def drop_all(self) -> None:
        """Drop every database under the prefix; never raises (it runs on the way out)."""
        if not self._used:
            return
        import psycopg
        from psycopg import sql

        with _bootstrap.signals_ignored():
            try:
                names = self.leftovers()
                with connect(self.admin_url) as conn:
                    for name in names:
                        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)))
            except psycopg.Error as exc:
                print(f"{self.prog}: warning: could not drop the {self.prefix}* databases: {exc}",
                      file=sys.stderr, flush=True)


# --- server-side counters -----------------------------------------------------------


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class Counters:
    """Cluster-wide counters at one moment."""

    wal: int  # bytes, from pg_current_wal_lsn()
    written: int | None  # bytes written to data files by checkpointer, bgwriter and backends
    #: CPU seconds of every server process, exited ones included; None unless the
    #: server runs on this machine and its processes can be read (see ServerCpu).
    cpu: float | None = None

    def __sub__(self, other: Counters) -> Counters:
        return Counters(self.wal - other.wal, _minus(self.written, other.written),
                        _minus(self.cpu, other.cpu))


def _minus(a: Any, b: Any) -> Any:
    return None if a is None or b is None else a - b


class ServerCpu:
    """CPU time the server spent, read from /proc: the postmaster's own time, that of
    its live children, and what it reaped from exited ones (cutime/cstime), so the
    backends of a finished test run still count.

    Only for a server on this Linux machine whose ``postmaster.pid`` we can read (a
    throwaway server, or a local one as superuser); otherwise ``read()`` is None.
    """

    def __init__(self, data_directory: str | None) -> None:
        self.pid: int | None = None
        if not data_directory or not Path("/proc/self/stat").exists():
            return
        try:
            pid = int(Path(data_directory, "postmaster.pid").read_text().split()[0])
            if b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes():
                self.pid = pid
        except (OSError, ValueError, IndexError):
            pass

    @staticmethod
    def _fields(pid: str | int) -> list[str]:
        # After the ")" that closes the command name: state, ppid, ..., utime (11),
        # stime (12), cutime (13), cstime (14), in clock ticks.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    def read(self) -> float | None:
        if self.pid is None:
            return None
        try:
            own = self._fields(self.pid)
        except OSError:
            return None
        ticks = sum(int(own[i]) for i in (11, 12, 13, 14))
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = self._fields(entry.name)
            except OSError:
                continue  # gone meanwhile: its time is in the postmaster's cutime now
            if fields[1] == str(self.pid):
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


class Stats:
    """Reads ``Counters`` on a connection to the maintenance database.

    ``around()`` brackets a measured step with CHECKPOINTs (untimed): every step
    starts with no dirty buffers, and the blocks it dirtied are written, and
    counted, before the second reading. Without the right to CHECKPOINT (not
    superuser, no pg_checkpoint role) "data written" is left out.
    """

    def __init__(self, admin_url: str) -> None:
        import psycopg

        self.conn = connect(admin_url)
        self.version = int(scalar(self.conn, "SHOW server_version_num"))
        self.can_checkpoint = True
        self.note = ""
        try:
            data_directory = scalar(self.conn, "SHOW data_directory")  # superuser only
        except psycopg.errors.InsufficientPrivilege:
            data_directory = None
        self.server_cpu = ServerCpu(data_directory)

    def close(self) -> None:
        self.conn.close()

    def checkpoint(self) -> None:
        import psycopg

        if not self.can_checkpoint:
            return
        try:
            self.conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            self.can_checkpoint = False
            self.note = "no right to CHECKPOINT on this server: data written not measured"

    def _written(self) -> int | None:
        if not self.can_checkpoint:
            return None
        if self.version >= 180000:
            query = "SELECT sum(write_bytes) FROM pg_stat_io"
        elif self.version >= 160000:
            query = "SELECT sum(writes * op_bytes) FROM pg_stat_io"
        else:
            query = ("SELECT (buffers_checkpoint + buffers_clean + buffers_backend) "
                     "* current_setting('block_size')::int8 FROM pg_stat_bgwriter")
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        value = scalar(self.conn, query)
        return None if value is None else int(value)

    def read(self) -> Counters:
        return Counters(_lsn(scalar(self.conn, "SELECT pg_current_wal_lsn()::text")),
                        self._written(), self.server_cpu.read())

    def before(self) -> Counters:
        self.checkpoint()
        return self.read()

    def after(self, start: Counters) -> Counters:
        self.checkpoint()
        # The checkpointer publishes its counters just after CHECKPOINT returns, and
        # exiting backends flush theirs on the way out: give both a moment.
        time.sleep(0.3)
        return self.read() - start


def megabytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.1f}MB"
