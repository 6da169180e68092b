"""One failing and one erroring test, for exit-code and --failfast checks.

Skipped unless TESTPROJECT_RUN_FAILING=1.
"""

import os
import unittest

from django.test import SimpleTestCase


@unittest.skipUnless(
    os.environ.get("TESTPROJECT_RUN_FAILING") == "1",
    "set TESTPROJECT_RUN_FAILING=1 to run the deliberate failures",
)
class DeliberateFailureTests(SimpleTestCase):
    def test_fails(self):
        """A plain assertion failure."""
        self.assertEqual(1, 2)

    def test_errors(self):
        """An unexpected exception (an error, not a failure)."""
        raise RuntimeError("deliberate error")
