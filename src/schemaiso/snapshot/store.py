"""The snapshot directory: where it is, what it holds, which file fits a run, pruning.

Where: ``$SCHEMAISO_SNAPSHOT_DIR`` (empty turns snapshots off; it wins, for CI),
else ``SCHEMAISO["SNAPSHOT_DIR"]`` (None turns them off), else the per-user cache
(``$XDG_CACHE_HOME/schemaiso``, else ``~/.cache/schemaiso``). The directory keeps
the newest ``SCHEMAISO["SNAPSHOT_KEEP"]`` snapshots (default 10).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import fileformat, manifest
from .manifest import RunFacts

ENVIRONMENT = "SCHEMAISO_SNAPSHOT_DIR"
#: Temporary files of writers that died are removed once this old.
_STALE_TMP_SECONDS = 3600


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "schemaiso"


def snapshot_dir(setting: Any, *, turned_off: bool = False) -> Path | None:
    """The directory this run reads and writes snapshots in, or None (off).

    ``setting`` is ``SCHEMAISO["SNAPSHOT_DIR"]`` as conf.py read it (``...`` when
    the key is absent); ``turned_off`` is ``--no-snapshot``."""
    if turned_off:
        return None
    explicit = os.environ.get(ENVIRONMENT)
    if explicit is not None:
        return Path(explicit).expanduser() if explicit.strip() else None
    if setting is None:
        return None
    if setting is ...:
        return default_dir()
    return Path(os.fspath(setting)).expanduser()


@dataclass(frozen=True)
class Listed:
    """One file of the directory: its manifest, or why it cannot be read."""

    path: Path
    manifest: dict[str, Any] | None
    problem: str | None
    size: int
    mtime: float


def listing(directory: Path) -> list[Listed]:
    """Every snapshot file in ``directory``, newest first (by the time it was last
    written or used)."""
    found = []
    try:
        paths = [p for p in directory.iterdir() if p.name.endswith(fileformat.SUFFIX)
                 and not p.name.startswith(".")]
    except OSError:
        return []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        try:
            found.append(Listed(path, fileformat.read_manifest(path), None,
                                stat.st_size, stat.st_mtime))
        except fileformat.SnapshotFileError as exc:
            found.append(Listed(path, None, str(exc), stat.st_size, stat.st_mtime))
    return sorted(found, key=lambda item: item.mtime, reverse=True)


@dataclass(frozen=True)
class Choice:
    """The snapshot a run restores, or why none (``path`` None)."""

    path: Path | None
    manifest: dict[str, Any] | None
    kind: str | None  # "exact" or "incremental"
    why_none: str
    #: Files that could not be read, with why: each is worth a warning.
    unreadable: tuple[tuple[Path, str], ...] = ()


def choose(directory: Path, facts: RunFacts) -> Choice:
    """The exact snapshot when there is one, else the newest that fits incrementally."""
    entries = listing(directory)
    unreadable = tuple((e.path, e.problem) for e in entries if e.problem is not None
                       and _concerns(e.path, facts))
    exact = [e for e in entries if e.path.name == facts.key and e.manifest is not None]
    if exact and manifest.fit(exact[0].manifest or {}, facts)[0] == "exact":
        return Choice(exact[0].path, exact[0].manifest, "exact", "", unreadable)
    reasons = []
    for entry in entries:
        if entry.manifest is None or entry.manifest.get("alias") != facts.alias:
            continue
        kind, why = manifest.fit(entry.manifest, facts)
        if kind is not None:
            return Choice(entry.path, entry.manifest, kind, "", unreadable)
        reasons.append(f"{manifest.short_id(entry.manifest)}: {why}")
    if not reasons:
        why_none = f"no snapshot for alias '{facts.alias}' in {directory}"
    else:
        why_none = f"none of {len(reasons)} snapshot(s) in {directory} fits (newest {reasons[0]})"
    return Choice(None, None, None, why_none, unreadable)


def _concerns(path: Path, facts: RunFacts) -> bool:
    """A broken file is reported to the run it might have served: its exact key."""
    return path.name == facts.key


def size_text(size: int) -> str:
    """A snapshot file's size as the run's line and ``snapshots`` show it."""
    return f"{size / 1024:.0f} KiB" if size < 1 << 20 else f"{size / (1 << 20):.1f} MiB"


def touch(path: Path) -> None:
    """Mark a snapshot used, so pruning keeps the ones runs restore."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune(directory: Path, keep: int, *, unreadable: bool = False) -> list[Path]:
    """Remove all but the newest ``keep`` snapshots (with ``unreadable``, every file
    that cannot be read too), and writers' stale temporary files; return what was
    removed."""
    removed = []
    entries = listing(directory)
    readable = [entry for entry in entries if entry.manifest is not None]
    doomed = readable[keep:] + ([e for e in entries if e.manifest is None] if unreadable else [])
    for entry in doomed:
        try:
            entry.path.unlink()
            removed.append(entry.path)
        except OSError:
            continue
    try:
        now = time.time()
        for tmp in directory.glob(".tmp-*" + fileformat.SUFFIX):
            if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                tmp.unlink()
                removed.append(tmp)
    except OSError:
        pass
    return removed
