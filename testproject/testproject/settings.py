"""Settings for the schemaiso test project.

Environment:
    DATABASE_URL         postgres://user:password@host:port/name (required)
    TESTPROJECT_RUNNER   TEST_RUNNER (default "schemaiso.Runner")
    TESTPROJECT_ENGINE   database ENGINE (default "django.db.backends.postgresql")
    TESTPROJECT_POOL     "1" enables psycopg 3 connection pooling
    TESTPROJECT_SCHEMAISO_PREFIX  sets SCHEMAISO["PREFIX"]
    TESTPROJECT_EXISTING_DATABASE "1" sets SCHEMAISO["EXISTING_DATABASE"] = True
    TESTPROJECT_SERIAL_TAGS  comma-separated names, e.g. "isolate,serial": sets
                         SCHEMAISO["SERIAL_TAGS"] (empty: an empty list)
    TESTPROJECT_WIDE_TABLES  installs the "wide" app, whose migration creates that
                         many tables by SQL (a big schema for lock-table tests)
    TESTPROJECT_DB_CACHE a table name: Django's database cache in that table, and the
                         "dbcache" app, whose tests use it
    TESTPROJECT_GIS      "1" installs django.contrib.gis and the "places" app;
                         set TESTPROJECT_ENGINE to a PostGIS engine with it
    TESTPROJECT_EVOLVING a directory holding an "evolving_migrations" package:
                         installs the "evolving" app with those migrations (tests
                         change them between --keepdb runs)
    TESTPROJECT_SHARED_OBJECTS  "1" installs the "sharedobjects" app, whose migration
                         creates a collation, an enum and a function in the shared
                         schema (explicitly, as NetBox does), which snapshots must carry
    TESTPROJECT_FLUSH_CHECK  "1" installs the "flushcheck" app: tables that make a
                         flush hard, and scenarios that dump the database after each
                         flush into $FLUSHCHECK_DUMP (tests/test_flush.py)
    TESTPROJECT_FAST_FLUSH  "0" sets SCHEMAISO["FAST_FLUSH"] = False (Django's flush)
    TESTPROJECT_WITHOUT_EXTENSIONS  "1" leaves out the apps whose tables need an
                         extension (library: hstore; shop), for pytest-django's
                         --no-migrations, which creates tables without migrations
"""

import os
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def parse_database_url(url):
    """Turn postgres://user:password@host:port/name into a DATABASES entry."""
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if parts.scheme not in {"postgres", "postgresql"} or not name:
        raise ImproperlyConfigured(
            f"DATABASE_URL must look like postgres://user:password@host:port/name, "
            f"got {url!r}"
        )
    return {
        "ENGINE": os.environ.get("TESTPROJECT_ENGINE", "django.db.backends.postgresql"),
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"pool": True} if os.environ.get("TESTPROJECT_POOL") == "1" else {},
    }


try:
    DATABASE_URL = os.environ["DATABASE_URL"]
except KeyError:
    raise ImproperlyConfigured(
        "Set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/testproject"
    ) from None

_default = parse_database_url(DATABASE_URL)
DATABASES = {
    "default": _default,
    # A replica of the same database; in tests it mirrors "default".
    "replica": {**parse_database_url(DATABASE_URL), "TEST": {"MIRROR": "default"}},
    # A second real database on the same server.
    "reports": {
        **parse_database_url(DATABASE_URL),
        "NAME": _default["NAME"] + "_reports",
    },
}

TEST_RUNNER = os.environ.get("TESTPROJECT_RUNNER", "schemaiso.Runner")
SCHEMAISO = {}
if "TESTPROJECT_SCHEMAISO_PREFIX" in os.environ:
    SCHEMAISO["PREFIX"] = os.environ["TESTPROJECT_SCHEMAISO_PREFIX"]
if os.environ.get("TESTPROJECT_EXISTING_DATABASE") == "1":
    SCHEMAISO["EXISTING_DATABASE"] = True
if "TESTPROJECT_SERIAL_TAGS" in os.environ:
    _tags = os.environ["TESTPROJECT_SERIAL_TAGS"]
    SCHEMAISO["SERIAL_TAGS"] = _tags.split(",") if _tags else []

SECRET_KEY = "testproject-insecure-key-for-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "library",
    "shop",
    "isolation",
    "serialproof",
    "demo_failures",
    "schemaiso",  # for `manage.py schemaiso list|prune`; the runner does not need it
]
if os.environ.get("TESTPROJECT_WITHOUT_EXTENSIONS") == "1":
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in ("library", "shop")]
if os.environ.get("TESTPROJECT_GIS") == "1":
    INSTALLED_APPS += ["django.contrib.gis", "places"]
if int(os.environ.get("TESTPROJECT_WIDE_TABLES", "0")):
    INSTALLED_APPS.append("wide")
if os.environ.get("TESTPROJECT_SHARED_OBJECTS") == "1":
    INSTALLED_APPS.append("sharedobjects")
if os.environ.get("TESTPROJECT_FLUSH_CHECK") == "1":
    INSTALLED_APPS.append("flushcheck")
if os.environ.get("TESTPROJECT_FAST_FLUSH") == "0":
    SCHEMAISO["FAST_FLUSH"] = False
if os.environ.get("TESTPROJECT_DB_CACHE"):
    INSTALLED_APPS.append("dbcache")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": os.environ["TESTPROJECT_DB_CACHE"],
        }
    }
if os.environ.get("TESTPROJECT_EVOLVING"):
    import sys

    sys.path.insert(0, os.environ["TESTPROJECT_EVOLVING"])
    INSTALLED_APPS.append("evolving")
    MIGRATION_MODULES = {"evolving": "evolving_migrations"}

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
