"""Runners that get schemaiso's mixin wrong, for ``tests/test_custom_runner.py``.

One module each: schemaiso may refuse such a class as soon as it is defined, which
must not stop another from importing. No test modules here (discovery loads
``test*.py`` only). This package holds what they share: a project's own parallel
suite, and a project runner that uses it.
"""

from django.test.runner import DiscoverRunner, ParallelTestSuite


class ProjectParallelTestSuite(ParallelTestSuite):
    """A project's own parallel suite, which knows nothing of schemas."""


class SuiteBaseRunner(DiscoverRunner):
    """A project's runner, without schemaiso, that brings its own parallel suite."""

    parallel_test_suite = ProjectParallelTestSuite
