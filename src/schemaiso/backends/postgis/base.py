"""``ENGINE = "schemaiso.backends.postgis"``: Django's PostGIS backend, isolated."""

from __future__ import annotations

from django.contrib.gis.db.backends.postgis import base

from ...activation import isolated_class

DatabaseWrapper = isolated_class(base.DatabaseWrapper)
