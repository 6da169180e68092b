#!/usr/bin/env python3
"""Start a throwaway PostgreSQL server for tests, CI and the demo.

The test suite needs a real PostgreSQL; this gives every run its own
server in a temp dir, on a free loopback port, and removes it afterwards, so
nothing depends on (or disturbs) a server that happens to be installed.
Standard library only: it runs before any dependency is installed.

    python tools/pgserver.py run [--fast] -- CMD ARGS...
        Run CMD with DATABASE_URL pointing at a fresh server, then stop it,
        also when CMD fails or on Ctrl-C/SIGTERM; exit with CMD's code.
        If DATABASE_URL is already set, just run CMD with it.
    python tools/pgserver.py start [--fast]
        Print the URL and leave the server running (for manual use).
    python tools/pgserver.py stop DIR
        Stop a server left running by ``start`` and remove its temp dir.

``--fast`` turns off fsync, synchronous_commit and full_page_writes: safe
because the data is thrown away anyway. Every other setting is left at its
default on purpose, since tests rely on defaults (e.g. max_locks_per_transaction).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import locale
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

SUPERUSER = "postgres"
HOST = "127.0.0.1"
_MARKER = "pgserver.url"  # proves a temp dir is ours before `stop` deletes it
_LOG = "postgres.log"
_PREFIX = "pgserver-"
_START_ATTEMPTS = 3  # the free port can be taken between probing and binding
_START_TIMEOUT = 60.0
_STOP_TIMEOUTS = (("fast", 60), ("immediate", 15))
_TRAPPED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class PgServerError(RuntimeError):
    """The server could not be started; the message says why, with the log tail."""


@dataclasses.dataclass(frozen=True)
class _OsUser:
    """The account the server runs as when we are root: PostgreSQL refuses uid 0."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def of(cls, entry: pwd.struct_passwd) -> _OsUser:
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def popen_kwargs(self) -> dict[str, Any]:
        """Drop to this user (groups included) in the child, without runuser/su."""
        groups = os.getgrouplist(self.name, self.gid)
        return {"user": self.uid, "group": self.gid, "extra_groups": groups}


def _server_user() -> _OsUser | None:
    """None means run as ourselves; as root, the ``postgres`` OS user."""
    if os.geteuid() != 0:
        return None
    try:
        return _OsUser.of(pwd.getpwnam("postgres"))
    except KeyError:
        raise PgServerError(
            "running as root, but there is no 'postgres' OS user to run the "
            "server as (PostgreSQL refuses to run as root)"
        ) from None


def _server_env(user: _OsUser | None) -> dict[str, str]:
    """Our environment minus PG* variables, so PGPORT/PGDATA etc. cannot leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if user is not None:
        env.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
    return env


def _find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres of one and the same version."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    def major(bindir: Path) -> int:
        return int(bindir.parent.name) if bindir.parent.name.isdigit() else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PgServerError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH "
        "or under /usr/lib/postgresql/*/bin"
    )


def _server_version(bindir: Path) -> str:
    """E.g. "15.18", for the one-line report of which server is used."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"\)\s*(\d+(?:\.\d+)*)", out)
    return match.group(1) if match else out.strip() or "(unknown version)"


def _pick_locale() -> str:
    """C.UTF-8 when the C library has it (UTF-8 aware yet deterministic), else C."""
    previous = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
    except locale.Error:
        return "C"
    else:
        return "C.UTF-8"
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)


def _traversable(path: Path, user: _OsUser) -> bool:
    """Whether ``user`` can reach ``path`` (e.g. TMPDIR=/root/tmp would not do)."""
    groups = set(os.getgrouplist(user.name, user.gid))
    for part in (path, *path.parents):
        st = part.stat()
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _temp_base(user: _OsUser | None) -> str:
    """Where the temp dir goes: the usual one unless the server user cannot reach it
    or it is too long for a unix socket path (about 107 bytes)."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > 60 or (user is not None and not _traversable(base, user)):
        return "/tmp"
    return str(base)


def _free_port() -> int:
    """A currently free loopback port; the kernel picks it, we only ask."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read_pidfile(datadir: Path) -> list[str]:
    """postmaster.pid lines (pid, ..., status on line 8), or [] if absent."""
    try:
        return (datadir / "postmaster.pid").read_text(errors="replace").splitlines()
    except OSError:
        return []


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "server log (tail):\n" + "\n".join("    " + line for line in tail)


def _run_tool(
    argv: Sequence[str | Path], *, user: _OsUser | None, cwd: Path, verbose: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run initdb/pg_ctl as the server user; output is shown only if verbose
    (on stderr: stdout is reserved for the URL)."""
    args = [str(a) for a in argv]
    if verbose:
        print("pgserver: $ " + shlex.join(args), file=sys.stderr, flush=True)
    extra = user.popen_kwargs() if user is not None else {}
    return subprocess.run(
        args,
        cwd=cwd,  # the server user may not be allowed into our cwd (e.g. /root)
        env=_server_env(user),
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr if verbose else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
        **extra,
    )


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold off SIGINT/SIGTERM/SIGHUP so a second signal cannot abort a stop halfway
    (which would leave a server or a temp dir behind); they are delivered after."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(_TRAPPED))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _shutdown(
    bindir: Path,
    datadir: Path,
    *,
    user: _OsUser | None,
    proc: subprocess.Popen[bytes] | None,
    verbose: bool,
) -> bool:
    """Stop the server in ``datadir``: pg_ctl fast, then immediate; signal the
    postmaster directly only if it is our own child (a pid from postmaster.pid could
    be stale and reused). Returns whether it is gone. Never raises."""

    def running() -> bool:
        if proc is not None:
            return proc.poll() is None
        lines = _read_pidfile(datadir)
        if not lines or not lines[0].strip().isdigit():
            return False
        try:
            os.kill(int(lines[0]), 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True

    def gone_within(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    if not running():
        return True
    for mode, timeout in _STOP_TIMEOUTS:
        try:
            _run_tool(
                [bindir / "pg_ctl", "stop", "-D", datadir, "-m", mode, "-w", "-t", str(timeout)],
                user=user, cwd=datadir.parent, verbose=verbose, timeout=timeout + 10,
            )
        except (OSError, subprocess.SubprocessError):
            pass
        if gone_within(5):
            return True
    if proc is None:
        return False
    for sig in (signal.SIGQUIT, signal.SIGKILL):  # SIGQUIT = immediate shutdown
        with contextlib.suppress(OSError):
            proc.send_signal(sig)
        if gone_within(5):
            return True
    return False


class ThrowawayPostgres:
    """A private PostgreSQL server in a temp dir, removed again by ``stop()``.

    Use as a context manager, or call ``start()``/``stop()``; ``start()`` also
    registers ``stop()`` with atexit so an exiting test process does not leak it.
    """

    url: str

    def __init__(self, *, fast: bool = False, verbose: bool = False) -> None:
        self.fast = fast
        self.verbose = verbose
        self.url = ""
        self.port = 0
        self.version = ""
        self.tmpdir: Path | None = None
        self._bindir: Path | None = None
        self._user: _OsUser | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False

    @property
    def datadir(self) -> Path | None:
        return None if self.tmpdir is None else self.tmpdir / "data"

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Create, configure and start the server; return its URL."""
        if self.tmpdir is not None:
            raise PgServerError(f"already started: {self.url or self.tmpdir}")
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:  # also Ctrl-C halfway: leave nothing behind
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop the server and delete its temp dir. Idempotent; a call made while a
        stop is already running (from a signal handler or atexit) returns at once."""
        if self._stopping:
            return
        self._stopping = True
        try:
            with _signals_deferred():
                atexit.unregister(self.stop)
                tmpdir, datadir, proc = self.tmpdir, self.datadir, self._proc
                if tmpdir is None or datadir is None:
                    return
                try:
                    if self._bindir is not None:
                        _shutdown(self._bindir, datadir, user=self._user, proc=proc, verbose=self.verbose)
                finally:
                    shutil.rmtree(tmpdir, ignore_errors=True)
                    self.tmpdir = None
                    self._proc = None
                    if self.verbose:
                        print(f"pgserver: stopped, removed {tmpdir}", file=sys.stderr, flush=True)
        finally:
            self._stopping = False

    def detach(self) -> Path:
        """Forget the server so it outlives this process (the ``start`` command);
        returns the temp dir to pass to ``stop``."""
        if self.tmpdir is None:
            raise PgServerError("not started")
        atexit.unregister(self.stop)
        tmpdir, self.tmpdir, self._proc = self.tmpdir, None, None
        return tmpdir

    def _start(self) -> None:
        self._bindir = bindir = _find_bindir()
        self.version = _server_version(bindir)
        self._user = user = _server_user()
        self.tmpdir = tmpdir = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=_temp_base(user)))
        (tmpdir / _MARKER).write_text("")
        if user is not None:
            os.chown(tmpdir, user.uid, user.gid)
        datadir = tmpdir / "data"

        result = _run_tool(
            [
                bindir / "initdb", "-D", datadir, f"--username={SUPERUSER}", "--auth=trust",
                "--encoding=UTF8", f"--locale={_pick_locale()}",
                "--no-sync",  # syncing a cluster that is deleted after the run buys nothing
            ],
            user=user, cwd=tmpdir, verbose=self.verbose, timeout=300,
        )
        if result.returncode != 0:
            raise PgServerError(f"initdb failed (exit {result.returncode}):\n{result.stdout or ''}")

        conf = [
            "",
            "# Added by tools/pgserver.py; everything else stays at its default.",
            f"listen_addresses = {_conf_quote(HOST)}",
            f"unix_socket_directories = {_conf_quote(str(tmpdir))}",
        ]
        if self.fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(datadir / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write("\n".join(conf) + "\n")

        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            if self._launch(port):
                break
        else:
            raise self._error(f"no free port after {_START_ATTEMPTS} attempts")
        self.port = port
        self.url = f"postgres://{SUPERUSER}@{HOST}:{port}/postgres"
        (tmpdir / _MARKER).write_text(self.url + "\n")

    def _launch(self, port: int) -> bool:
        """Start the postmaster on ``port`` and wait until it accepts connections.
        False if the port was taken meanwhile; raises on any other failure.

        The postmaster is started directly rather than by ``pg_ctl start`` so its pid
        is known at once (cleanup stays possible at any point) and in its own session
        so the terminal's Ctrl-C reaches the command under test, not the server."""
        assert self.tmpdir is not None and self._bindir is not None
        datadir, log = self.tmpdir / "data", self.tmpdir / _LOG
        offset = log.stat().st_size if log.exists() else 0
        argv = [str(self._bindir / "postgres"), "-D", str(datadir), "-p", str(port)]
        if self.verbose:
            print(f"pgserver: $ {shlex.join(argv)} >> {log}", file=sys.stderr, flush=True)
        extra = self._user.popen_kwargs() if self._user is not None else {}
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if self._user is not None:
                os.fchown(fd, self._user.uid, self._user.gid)
            self._proc = proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                cwd=self.tmpdir, env=_server_env(self._user), start_new_session=True, **extra,
            )
        finally:
            os.close(fd)

        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            code = proc.poll()
            if code is not None:
                with open(log, "rb") as f:
                    f.seek(offset)
                    new = f.read().decode(errors="replace")
                self._proc = None
                if "Address already in use" in new:
                    return False
                raise self._error(f"postgres exited with code {code} while starting")
            lines = _read_pidfile(datadir)
            if len(lines) >= 8 and lines[0].strip() == str(proc.pid) and lines[7].strip() == "ready":
                return True
            if time.monotonic() >= deadline:
                raise self._error(f"postgres not ready after {_START_TIMEOUT:.0f}s")
            time.sleep(0.05)

    def _error(self, message: str) -> PgServerError:
        assert self.tmpdir is not None
        return PgServerError(f"{message}; {_log_tail(self.tmpdir / _LOG)}")

    def describe(self) -> str:
        """The line saying which server is used."""
        return f"started PostgreSQL {self.version} on {HOST}:{self.port} (data in {self.tmpdir})"


class _SignalTrap:
    """While the command runs, pass SIGINT/SIGTERM/SIGHUP on to it instead of dying,
    so that we get to stop the server after it exits. Before it runs, just remember
    the signal: the caller then stops the server and exits 128+signal."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _SignalTrap:
        for sig in _TRAPPED:
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        """From now on forward to ``child``; a signal that came while it was being
        started has not reached it yet, so pass that on now."""
        self._child = child
        if self.received is not None:
            self._forward(self.received)

    def detach(self) -> None:
        self._child = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        if signum == signal.SIGINT and _keyboard_reaches_us():
            return  # the terminal sent it to the whole foreground group, the child included
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        child = self._child
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)


def _keyboard_reaches_us() -> bool:
    """Whether we are in the terminal's foreground process group, so a Ctrl-C
    already went to the child too (forwarding would deliver it twice)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _say(message: str) -> None:
    print(f"pgserver: {message}", file=sys.stderr, flush=True)


def _exit_code(returncode: int) -> int:
    """Like a shell: a command killed by signal N exits 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def _cmd_run(cmd: list[str], *, fast: bool, verbose: bool) -> int:
    if os.environ.get("DATABASE_URL"):
        _say("using DATABASE_URL from the environment")
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; exec would pass that on
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.execvp(cmd[0], cmd)  # nothing to clean up: hand over the process
        except OSError as exc:
            _say(f"cannot run {cmd[0]}: {exc.strerror}")
            return 127
    server = ThrowawayPostgres(fast=fast, verbose=verbose)
    with _SignalTrap() as trap:
        try:
            try:
                url = server.start()
            except PgServerError as exc:
                if trap.received is not None:  # e.g. Ctrl-C killed initdb
                    return 128 + trap.received
                _say(f"error: {exc}")
                return 1
            if trap.received is not None:
                return 128 + trap.received
            _say(server.describe())
            try:
                child = subprocess.Popen(cmd, env={**os.environ, "DATABASE_URL": url})
            except OSError as exc:
                _say(f"cannot run {cmd[0]}: {exc.strerror}")
                return 127
            trap.attach(child)
            returncode = child.wait()
            trap.detach()
            return _exit_code(returncode)
        finally:
            server.stop()


def _cmd_start(*, fast: bool, verbose: bool) -> int:
    server = ThrowawayPostgres(fast=fast, verbose=verbose)
    with _SignalTrap() as trap:
        try:
            url = server.start()
        except PgServerError as exc:
            if trap.received is None:
                _say(f"error: {exc}")
            return 128 + trap.received if trap.received is not None else 1
        if trap.received is not None:
            server.stop()
            return 128 + trap.received
        described = server.describe()
        tmpdir = server.detach()
    print(url, flush=True)
    _say(described)
    stop = shlex.join([Path(sys.executable).name or "python3", sys.argv[0], "stop", str(tmpdir)])
    _say(f"stop it with: {stop}")
    return 0


def _cmd_stop(directory: str, *, verbose: bool) -> int:
    path = Path(directory).absolute()
    if (path / _MARKER).is_file():
        tmpdir = path
    elif path.name == "data" and (path.parent / _MARKER).is_file():
        tmpdir = path.parent
    elif not path.exists():
        _say(f"nothing to stop: {path} does not exist")
        return 0
    else:
        _say(f"error: {path} is not a directory made by pgserver (no {_MARKER}); not touching it")
        return 2
    datadir = tmpdir / "data"
    user: _OsUser | None = None
    if os.geteuid() == 0:
        owner = (datadir if datadir.exists() else tmpdir).stat().st_uid
        if owner != 0:
            user = _OsUser.of(pwd.getpwuid(owner))
    if (datadir / "postmaster.pid").exists():
        try:
            bindir = _find_bindir()
        except PgServerError as exc:
            _say(f"error: {exc}")
            return 1
        with _signals_deferred():
            if not _shutdown(bindir, datadir, user=user, proc=None, verbose=verbose):
                _say(f"error: the server in {datadir} did not stop; {tmpdir} left in place")
                return 1
    shutil.rmtree(tmpdir, ignore_errors=True)
    _say(f"stopped; removed {tmpdir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pgserver.py", description="Throwaway PostgreSQL server for tests, CI and the demo."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show what is run")
    server_opts = argparse.ArgumentParser(add_help=False)
    server_opts.add_argument(
        "--fast", action="store_true", help="fsync, synchronous_commit, full_page_writes off"
    )
    run = sub.add_parser(
        "run", parents=[common, server_opts], help="run a command with DATABASE_URL set",
        usage="%(prog)s [--fast] [-v] -- CMD [ARGS...]",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    sub.add_parser("start", parents=[common, server_opts], help="start a server and leave it running")
    stop = sub.add_parser("stop", parents=[common], help="stop a server made by 'start'")
    stop.add_argument("dir", help="the temp dir (or its data dir) printed by 'start'")

    args = parser.parse_args(argv)
    if args.command == "run":
        cmd: list[str] = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            run.error("no command given (put it after --)")
        return _cmd_run(cmd, fast=args.fast, verbose=args.verbose)
    if args.command == "start":
        return _cmd_start(fast=args.fast, verbose=args.verbose)
    return _cmd_stop(args.dir, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
