"""schemaiso: parallel Django tests on PostgreSQL, one schema per worker.

``TEST_RUNNER = "schemaiso.Runner"`` is the only change a project needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "CloneError", "Runner", "SchemaIsoError", "SchemaIsolatedParallelTestSuite",
    "SchemaIsolationMixin", "__version__", "libpq_options", "search_path",
]

#: Where each public name lives. Imported on first use: the runner and the suite
#: import django.test, which needs settings, and the errors import Django too.
_HOMES = {
    "Runner": "runner",
    "SchemaIsolationMixin": "runner",
    "SchemaIsolatedParallelTestSuite": "parallel",
    "search_path": "raw_connections",
    "libpq_options": "raw_connections",
    "SchemaIsoError": "errors",
    "CloneError": "errors",
}
#: ``__version__`` when schemaiso runs from a source tree that is not installed.
_UNKNOWN_VERSION = "0+unknown"

if TYPE_CHECKING:
    from .errors import CloneError, SchemaIsoError
    from .parallel import SchemaIsolatedParallelTestSuite
    from .raw_connections import libpq_options, search_path
    from .runner import Runner, SchemaIsolationMixin

    __version__: str


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'schemaiso' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)


def _version() -> str:
    """The installed distribution's version: pyproject.toml is its one source.

    Read on first use, as importlib.metadata costs more than the rest of
    ``import schemaiso``; then kept as a plain attribute.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("schemaiso")
    except PackageNotFoundError:
        found = _UNKNOWN_VERSION
    globals()["__version__"] = found
    return found
