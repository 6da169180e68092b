"""Tests run under testproject.runners' ProjectRunner and ComposedRunner
(``tests/test_custom_runner.py``).

Each test checks, in the process that runs it, that what the project's runner set up
holds there (MD5 hasher, in-memory mail, logging off, its own option, its test
environment hook) and that the process's connection is in a schema of its own: a
worker schema in the parallel phase, the main schema in the serial phase. Under a
runner without schemaiso's mixin they fail. With SCHEMAISO_PHASE_LOG set they log
like serialproof's, which proves the serial test ran last and alone.
"""

import logging
import os
import re

from django.conf import settings
from django.contrib.auth.hashers import get_hasher, make_password
from django.core import mail
from django.test import TestCase, tag
from serialproof.tests import PhaseLogMixin, current_schema
from testproject.testing import TransactionTestCase

WORKER_SCHEMA = re.compile(r"schemaiso_[0-9a-f]{8}_w\d+")
MAIN_SCHEMA = re.compile(r"schemaiso_[0-9a-f]{8}_main")


class RunnerSetupMixin(PhaseLogMixin):
    def assertRunnerSetupHolds(self):
        self.assertEqual(get_hasher().algorithm, "md5")
        self.assertTrue(make_password("secret").startswith("md5$"))
        mail.send_mail("subject", "body", "from@example.com", ["to@example.com"])
        self.assertEqual([m.subject for m in mail.outbox], ["subject"])
        self.assertFalse(logging.getLogger("django").isEnabledFor(logging.CRITICAL))
        # The option arrives both ways: settings (inherited by a forked worker) and
        # the environment; the e2e test says which value it passed.
        expected = os.environ["CUSTOMRUNNER_EXPECTED_MARK"]
        self.assertEqual(getattr(settings, "CUSTOMRUNNER_MARK", None), expected)
        self.assertEqual(os.environ.get("CUSTOMRUNNER_MARK"), expected)
        self.assertEqual(
            getattr(settings, "CUSTOMRUNNER_ENVIRONMENT", None),
            os.environ["CUSTOMRUNNER_EXPECTED_RUNNER"],
        )

    def check_in_worker(self):
        self.assertRegex(current_schema(), WORKER_SCHEMA.pattern + "$")
        self.assertRunnerSetupHolds()
        self.run_parallel_step()

    def check_in_main_process(self):
        self.assertRegex(current_schema(), MAIN_SCHEMA.pattern + "$")
        self.assertRunnerSetupHolds()
        self.run_serial_step()


class WorkerOne(RunnerSetupMixin, TestCase):
    def test_a(self):
        self.check_in_worker()

    def test_b(self):
        self.check_in_worker()


class WorkerTwo(RunnerSetupMixin, TransactionTestCase):
    def test_a(self):
        self.check_in_worker()

    def test_b(self):
        self.check_in_worker()


@tag("serial")
class SerialLast(RunnerSetupMixin, TransactionTestCase):
    def test_serial(self):
        self.check_in_main_process()
