"""``ENGINE = "schemaiso.backends.postgresql"``: Django's PostgreSQL backend, isolated."""

from __future__ import annotations

from django.db.backends.postgresql import base

from ...activation import isolated_class

DatabaseWrapper = isolated_class(base.DatabaseWrapper)
