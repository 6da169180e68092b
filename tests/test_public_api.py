"""What ``import schemaiso`` offers: every name in ``__all__``, the version from the package metadata."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import schemaiso
from schemaiso.errors import CloneError, SchemaIsoError
from schemaiso.parallel import SchemaIsolatedParallelTestSuite
from schemaiso.raw_connections import libpq_options, search_path
from schemaiso.runner import Runner, SchemaIsolationMixin


def test_every_public_name_is_the_object_from_its_home_module() -> None:
    homes = {
        "CloneError": CloneError,
        "Runner": Runner,
        "SchemaIsoError": SchemaIsoError,
        "SchemaIsolatedParallelTestSuite": SchemaIsolatedParallelTestSuite,
        "SchemaIsolationMixin": SchemaIsolationMixin,
        "libpq_options": libpq_options,
        "search_path": search_path,
    }
    assert sorted(schemaiso.__all__) == sorted([*homes, "__version__"])
    for name, expected in homes.items():
        assert getattr(schemaiso, name) is expected, name
    namespace: dict[str, object] = {}
    exec("from schemaiso import *", namespace)
    assert set(schemaiso.__all__) <= set(namespace)


def test_version_is_the_installed_distributions() -> None:
    assert schemaiso.__version__ == importlib.metadata.version("schemaiso")


def test_version_from_a_source_tree_that_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    assert schemaiso.__version__  # read once, so that the undo below restores the real one
    monkeypatch.delitem(vars(schemaiso), "__version__")
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert schemaiso.__version__ == "0+unknown"


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        schemaiso.no_such_name  # noqa: B018


def test_import_schemaiso_imports_no_django() -> None:
    """The runner and suite import django.test, which needs settings: they load on first use."""
    code = "import sys, schemaiso; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
