"""A project's own django_db_setup, built on pytest-django's (the recipe for
loading data once per test database): under schemaiso it runs in each worker's
schema, and what it commits is there for that worker's tests."""

import pytest
from django.apps import apps

from pytests.helpers import current_schema


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        if apps.is_installed("library"):  # not under TESTPROJECT_WITHOUT_EXTENSIONS
            from library.models import Tag

            Tag.objects.get_or_create(name="loaded-by-django_db_setup")
        yield current_schema()
