"""Which tests are serial: one rule for ``manage.py test`` (runner.py) and pytest
(pytest_support/serial.py).

A test is serial when its class or its method carries one of the run's serial tags
(``SCHEMAISO["SERIAL_TAGS"]`` or ``--serial-tag``, read in conf.py) as a Django
``@tag``; under pytest, a marker of that name counts too.
"""

from __future__ import annotations

import unittest


def django_tags(owner: object, method: object) -> set[str]:
    """The ``@tag`` names of a test: its class's (read through the class or an
    instance) and its method's, as Django's ``--tag`` reads them (``test_match_tags``)."""
    return set(getattr(owner, "tags", ()) or ()) | set(getattr(method, "tags", ()) or ())


def is_serial(test: unittest.TestCase, serial_tags: frozenset[str]) -> bool:
    """True when the test or its class carries one of the serial tags."""
    method = getattr(test, getattr(test, "_testMethodName", ""), None)
    return bool(django_tags(test, method) & serial_tags)
