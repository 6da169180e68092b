"""The mixin after DiscoverRunner: DiscoverRunner's methods shadow all of the mixin's."""

from django.test.runner import DiscoverRunner

from schemaiso import SchemaIsolationMixin


class MisorderedRunner(DiscoverRunner, SchemaIsolationMixin):
    pass
