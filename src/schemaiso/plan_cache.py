"""A kept template's clone plan and structure signature, cached in a file between
``--keepdb`` runs.

Reading a 300-table template's catalog and planning its clone takes 0.35 s, and
its structure signature 0.05 s, on every warm run, although the template has not
changed: a warm run reuses a template only while its fingerprint matches, and then
nothing writes to it (``migrate`` is skipped; the fingerprint also covers the
database cache tables, the one thing ``createcachetable`` would add). Everything
in it was made by the run that built it, whose id is the template's stamp. So the
plan is stored, as JSON (never pickle: loading it must not run code), under a key
that names the server, the test database, the template, that stamp and the clone
engine's own source. A rebuilt template has a new stamp and a changed planner a
new source digest: either misses, and the catalog is read again.

A file, not the test database: a table of ours there would be one more schema
every run, ``list`` and ``prune`` must know about, and a file per host is never
shared wrongly between hosts (each reads its own, keyed as above; a template
another host rebuilt has a new stamp). Any failure to read or write is a miss:
the cache only saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from .clone import ClonePlan
from .clone.plan_json import plan_from_json, plan_to_json

#: Files older than this mostly belong to test databases long gone (a live one
#: just misses once and is written again).
MAX_AGE_SECONDS = 14 * 24 * 3600
_FORMAT = 2


def cache_dir() -> Path:
    """``$SCHEMAISO_CACHE_DIR``, else ``$XDG_CACHE_HOME/schemaiso/plans`` (``~/.cache``)."""
    explicit = os.environ.get("SCHEMAISO_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "schemaiso" / "plans"


def _engine_digest() -> str:
    """The clone engine's source: a plan made by other code is never reused."""
    from . import clone

    hasher = hashlib.sha256()
    for path in sorted(Path(clone.__file__).parent.glob("*.py")) + [Path(__file__)]:
        hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()


def plan_key(*, server: str, database: str, template: str, shared: str,
             stamp: str) -> dict[str, str]:
    """Everything a cached plan must match to be used (see the module docstring)."""
    return {
        "format": str(_FORMAT), "engine": _engine_digest(), "server": server,
        "database": database, "template": template, "shared": shared, "stamp": stamp,
    }


def _paths(key: dict[str, str]) -> tuple[str, Path]:
    """(the file name prefix of this template, the file of this exact key)."""
    where = json.dumps([key["server"], key["database"], key["template"]])
    prefix = hashlib.sha256(where.encode()).hexdigest()[:16]
    full = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return prefix, cache_dir() / f"{prefix}-{full}.json"


def load(key: dict[str, str]) -> tuple[ClonePlan, str] | None:
    """(plan, template structure signature) stored under ``key``, or None
    (missing, unreadable, another key)."""
    try:
        data = json.loads(_paths(key)[1].read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        return plan_from_json(data["plan"]), str(data["signature"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(key: dict[str, str], plan: ClonePlan, signature: str) -> None:
    """Write the entry atomically, dropping this template's older entries and stale files."""
    prefix, path = _paths(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps({"key": key, "plan": plan_to_json(plan), "signature": signature})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _forget_others(path, prefix)
    except OSError:
        return


def _forget_others(kept: Path, prefix: str) -> None:
    """Remove this template's entries for other stamps or signatures, and old files."""
    now = time.time()
    for other in kept.parent.glob("*.json"):
        if other == kept:
            continue
        try:
            if other.name.startswith(prefix + "-") or now - other.stat().st_mtime > MAX_AGE_SECONDS:
                other.unlink()
        except OSError:
            continue
