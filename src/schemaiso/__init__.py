"""schemaiso: parallel Django tests on PostgreSQL, one schema per worker.

``TEST_RUNNER = "schemaiso.Runner"`` is the only change a project needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Runner", "SchemaIsolationMixin", "SchemaIsoError", "__version__"]

if TYPE_CHECKING:
    from .errors import SchemaIsoError
    from .runner import Runner, SchemaIsolationMixin


def __getattr__(name: str) -> Any:
    # Imported lazily: the runner imports django.test, which needs settings.
    if name in ("Runner", "SchemaIsolationMixin"):
        from . import runner

        return getattr(runner, name)
    if name == "SchemaIsoError":
        from .errors import SchemaIsoError

        return SchemaIsoError
    raise AttributeError(f"module 'schemaiso' has no attribute {name!r}")
