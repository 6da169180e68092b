"""The mixin in front, and the runner's own parallel suite, which isolates nothing."""

from django.test.runner import DiscoverRunner

from schemaiso import SchemaIsolationMixin

from . import ProjectParallelTestSuite


class ForeignSuiteRunner(SchemaIsolationMixin, DiscoverRunner):
    parallel_test_suite = ProjectParallelTestSuite
