"""pytest-django's fixtures and markers under schemaiso's plugin, as functions."""

import json
import urllib.request

import pytest
from django.db import connections
from isolation.models import Slot
from library.models import Author, Tag

from pytests.helpers import current_schema, is_worker_schema, parallel_step, serial_step


def test_db_fixture_runs_in_a_worker_schema(db):
    assert is_worker_schema(current_schema())
    Slot.objects.create(key="db", value=1)
    assert Slot.objects.filter(key="db").count() == 1


def test_project_django_db_setup_ran_in_this_workers_schema(django_db_setup, db):
    assert django_db_setup == current_schema()
    assert Tag.objects.filter(name="loaded-by-django_db_setup").exists()


def test_serialized_rollback(django_db_serialized_rollback):
    Slot.objects.create(key="serialized", value=1)
    assert Slot.objects.count() == 1


def test_django_db_blocker_unblocks_into_a_worker_schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        assert is_worker_schema(current_schema())


def test_live_server_serves_this_workers_schema(live_server, transactional_db):
    Slot.objects.create(key="live", value=1)
    with urllib.request.urlopen(live_server.url + "/slots/", timeout=10) as response:
        body = json.load(response)
    assert body == {"schema": current_schema(), "keys": ["live"]}


@pytest.mark.django_db(databases=["default", "reports", "replica"])
def test_several_databases_each_in_a_worker_schema():
    Author.objects.using("reports").create(name="only in reports")
    schemas = {alias: current_schema(alias) for alias in ("default", "reports", "replica")}
    assert is_worker_schema(schemas["default"])
    # Same schema name in each test database; the mirror follows its primary.
    assert schemas["reports"] == schemas["default"] == schemas["replica"]
    assert connections["reports"].settings_dict["NAME"] != connections["default"].settings_dict["NAME"]
    assert not Author.objects.filter(name="only in reports").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step", ["a", "b", "c"])
def test_parallel_step(request, step):
    parallel_step(request.node.nodeid.replace(" ", "_"))


@pytest.mark.serial
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step", ["a", "b"])
def test_serial_marker_runs_last_and_alone(request, step):
    serial_step(request.node.nodeid.replace(" ", "_"))
