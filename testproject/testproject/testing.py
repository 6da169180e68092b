"""Test helpers shared by the project's apps."""

from django import test
from django.apps import apps
from django.db import connections


class TransactionTestCase(test.TransactionTestCase):
    """TransactionTestCase that puts the data-migration seed rows back.

    Each test's flush deletes the rows migration library.0002 created. The
    test runner orders TestCase before TransactionTestCase, so within one run
    that is harmless, but with --keepdb the next run would start without
    them (Django ticket #25251). After its last flush, the class restores
    them in every database it flushed (when library is installed: not under
    TESTPROJECT_WITHOUT_EXTENSIONS).
    """

    @classmethod
    def tearDownClass(cls):
        if not apps.is_installed("library"):
            super().tearDownClass()
            return
        from library.models import Author, Tag
        from library.seed import create_seed_rows

        for alias in sorted(cls.databases):
            if not connections[alias].settings_dict["TEST"]["MIRROR"]:
                create_seed_rows(Tag, Author, using=alias)
        super().tearDownClass()
