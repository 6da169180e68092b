"""The collisions of isolation/tests.py as pytest functions: they fail when two
workers share a schema (unique keys, ids restarting at 1, one test's flush or
sequence reset hitting another). Only the isolation app: they also run under
TESTPROJECT_WITHOUT_EXTENSIONS."""

import time

import pytest
from isolation.models import Slot


def fill_and_check(n, marker):
    for i in range(1, n + 1):
        Slot.objects.create(key=f"k{i}", value=marker)
    time.sleep(0.3)  # leave time for another session to interfere
    assert list(Slot.objects.order_by("id").values_list("id", "key", "value")) == [
        (i, f"k{i}", marker) for i in range(1, n + 1)
    ]
    assert Slot.objects.create(key="extra", value=marker).id == n + 1


@pytest.mark.django_db(transaction=True, reset_sequences=True)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_transactional_db_collisions(n):
    fill_and_check(n, 100 + n)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_reset_sequences_fixture_collisions(django_db_reset_sequences, n):
    fill_and_check(n, 200 + n)
