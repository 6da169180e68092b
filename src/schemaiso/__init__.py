"""schemaiso: parallel Django tests on PostgreSQL, one schema per worker.

``TEST_RUNNER = "schemaiso.Runner"`` is the only change a project needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Runner", "SchemaIsolationMixin", "SchemaIsoError", "__version__", "libpq_options",
    "search_path",
]

if TYPE_CHECKING:
    from .errors import SchemaIsoError
    from .raw_connections import libpq_options, search_path
    from .runner import Runner, SchemaIsolationMixin


def __getattr__(name: str) -> Any:
    # Imported lazily: the runner imports django.test, which needs settings.
    if name in ("Runner", "SchemaIsolationMixin"):
        from . import runner

        return getattr(runner, name)
    if name in ("search_path", "libpq_options"):
        from . import raw_connections

        return getattr(raw_connections, name)
    if name == "SchemaIsoError":
        from .errors import SchemaIsoError

        return SchemaIsoError
    raise AttributeError(f"module 'schemaiso' has no attribute {name!r}")
