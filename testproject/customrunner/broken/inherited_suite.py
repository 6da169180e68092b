"""The mixin composed onto a runner with its own parallel suite: the mixin's class
attribute comes first in the MRO and would drop the base's suite without a word."""

from schemaiso import SchemaIsolationMixin

from . import SuiteBaseRunner


class InheritedSuiteRunner(SchemaIsolationMixin, SuiteBaseRunner):
    pass
