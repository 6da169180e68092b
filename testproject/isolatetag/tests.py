"""Tests tagged "isolate", a serial tag name of the project's own choosing.

They are serial only when "isolate" is one of the run's serial tags
(``SCHEMAISO["SERIAL_TAGS"]``, ``TESTPROJECT_SERIAL_TAGS`` here, or
``--serial-tag isolate``). With SCHEMAISO_PHASE_LOG set, the tagged ones assert
that they run alone, after the parallel phase (serialproof's phase log), so a run
where "isolate" is not serial fails here. Not an installed app: run it by label
(``manage.py test isolatetag``, ``pytest isolatetag``).
"""

from django.test import TestCase, tag
from serialproof.tests import PhaseLogMixin
from testproject.testing import TransactionTestCase

ISOLATE_TESTS = 4
ORDINARY_TESTS = 5


class OrdinaryOne(PhaseLogMixin, TestCase):
    def test_a(self):
        self.run_parallel_step()

    def test_b(self):
        self.run_parallel_step()


class OrdinaryTwo(PhaseLogMixin, TransactionTestCase):
    def test_a(self):
        self.run_parallel_step()

    def test_b(self):
        self.run_parallel_step()


@tag("isolate")
class IsolatedClass(PhaseLogMixin, TransactionTestCase):
    """Tagged at class level: all three tests are serial."""

    def test_a(self):
        self.run_serial_step()

    def test_b(self):
        self.run_serial_step()

    def test_c(self):
        self.run_serial_step()


class MixedClass(PhaseLogMixin, TestCase):
    """One method tagged "isolate"; the other is ordinary."""

    @tag("isolate")
    def test_isolated_method(self):
        self.run_serial_step()

    def test_ordinary_method(self):
        self.run_parallel_step()
