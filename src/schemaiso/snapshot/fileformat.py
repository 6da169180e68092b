"""The snapshot file: one gzip stream of sections, checked before anything is restored.

Layout (inside gzip)::

    schemaiso-snapshot <format>\\n
    manifest <length>\\n<JSON>
    plan <length>\\n<JSON>
    rows <step> <length>\\n<COPY text>      (one per table with rows)
    end <sha256 of every byte before this line>\\n

The manifest comes first so that listing, choosing and pruning read a few
kilobytes, never the rows. A restore reads the whole file and checks the digest
(and gzip its CRC) before touching the database: a truncated or corrupt file is
refused whole, never restored in part. Files are written to a temporary name in
the same directory and renamed: a reader sees the old file or the new one, and
two writers of the same snapshot both succeed (the last rename wins; both wrote
the same template).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = b"schemaiso-snapshot"
#: Bumped whenever what a file holds, or how a restore reads it, changes; a file of
#: a newer format is refused with a warning, an older one is skipped.
FORMAT = 1
SUFFIX = ".snapshot"
#: Sections longer than this are not believed (a corrupt length).
_MAX_SECTION = 1 << 40


class SnapshotFileError(Exception):
    """The file is not a snapshot this version can restore; the text says why."""


@dataclass(frozen=True)
class SnapshotContents:
    """What a snapshot file holds, read whole and checked."""

    manifest: dict[str, Any]
    plan: dict[str, Any]
    #: COPY text of each table with rows, by the plan step that copies it.
    rows: dict[int, bytes]
    #: The plan of the objects ``migrate`` put into the shared schema, if any.
    shared_objects: dict[str, Any] | None = None


def write(
    path: Path, manifest: dict[str, Any], plan: dict[str, Any], rows: Iterable[tuple[int, bytes]],
    shared_objects: dict[str, Any] | None = None,
) -> int:
    """Write the snapshot atomically (temporary file, fsync, rename); return its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3,
                                                       mtime=0) as out:
            digest = hashlib.sha256()

            def put(data: bytes) -> None:
                digest.update(data)
                out.write(data)

            put(MAGIC + b" %d\n" % FORMAT)
            _put_section(put, b"manifest", json.dumps(manifest, sort_keys=True).encode())
            _put_section(put, b"plan", json.dumps(plan).encode())
            if shared_objects is not None:
                _put_section(put, b"shared", json.dumps(shared_objects).encode())
            for step, data in rows:
                _put_section(put, b"rows %d" % step, data)
            out.write(b"end " + digest.hexdigest().encode() + b"\n")
            out.flush()
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def _put_section(put: Any, header: bytes, data: bytes) -> None:
    put(header + b" %d\n" % len(data))
    put(data)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest alone (the start of the file); the rest is checked by ``read``."""
    try:
        with gzip.open(path, "rb") as stream:
            _read_magic(stream, None)
            kind, data = _read_section(stream, None)
    except (OSError, EOFError, zlib.error) as exc:
        raise SnapshotFileError(f"it cannot be read ({exc})") from exc
    if kind != b"manifest":
        raise SnapshotFileError("it does not start with a manifest")
    return _json(data, "manifest")


def read(path: Path) -> SnapshotContents:
    """The whole file, its digest checked; SnapshotFileError when anything is off."""
    try:
        with gzip.open(path, "rb") as stream:
            digest = hashlib.sha256()
            _read_magic(stream, digest)
            manifest: dict[str, Any] | None = None
            plan: dict[str, Any] | None = None
            shared: dict[str, Any] | None = None
            rows: dict[int, bytes] = {}
            while True:
                line = stream.readline(200)
                if line.startswith(b"end "):
                    if line.strip().split(b" ", 1)[1] != digest.hexdigest().encode():
                        raise SnapshotFileError("its checksum does not match its contents")
                    if stream.read(1):
                        raise SnapshotFileError("it has data after its end")
                    break
                kind, data = _section_body(stream, line, digest)
                if kind == b"manifest":
                    manifest = _json(data, "manifest")
                elif kind == b"plan":
                    plan = _json(data, "plan")
                elif kind == b"shared":
                    shared = _json(data, "shared objects")
                elif kind.startswith(b"rows ") and kind[5:].isdigit():
                    rows[int(kind[5:])] = data
                else:
                    raise SnapshotFileError(f"it has an unknown section {kind[:40]!r}")
    except EOFError as exc:
        raise SnapshotFileError(f"it ends early: truncated? ({exc})") from exc
    except (OSError, zlib.error) as exc:
        raise SnapshotFileError(f"it cannot be read whole ({exc})") from exc
    if manifest is None or plan is None:
        raise SnapshotFileError("it lacks its manifest or its plan")
    return SnapshotContents(manifest, plan, rows, shared)


def _read_magic(stream: gzip.GzipFile, digest: Any) -> None:
    line = stream.readline(100)
    if digest is not None:
        digest.update(line)
    parts = line.split()
    if len(parts) != 2 or parts[0] != MAGIC or not parts[1].isdigit():
        raise SnapshotFileError("it is not a schemaiso snapshot")
    if int(parts[1]) != FORMAT:
        newer = "a newer" if int(parts[1]) > FORMAT else "an older"
        raise SnapshotFileError(
            f"it has {newer} format ({int(parts[1])}) than this schemaiso reads ({FORMAT})"
        )


def _read_section(stream: gzip.GzipFile, digest: Any) -> tuple[bytes, bytes]:
    return _section_body(stream, stream.readline(200), digest)


def _section_body(stream: gzip.GzipFile, header: bytes, digest: Any) -> tuple[bytes, bytes]:
    if not header.endswith(b"\n"):
        raise SnapshotFileError("it ends early, in the middle of a section: truncated?")
    kind, _, length = header[:-1].rpartition(b" ")
    if not kind or not length.isdigit() or int(length) > _MAX_SECTION:
        raise SnapshotFileError(f"it has a malformed section header {header[:60]!r}")
    data = stream.read(int(length))
    if len(data) != int(length):
        raise SnapshotFileError("it ends early, in the middle of a section: truncated?")
    if digest is not None:
        digest.update(header)
        digest.update(data)
    return kind, data


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise SnapshotFileError(f"its {what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise SnapshotFileError(f"its {what} is not an object")
    return value
