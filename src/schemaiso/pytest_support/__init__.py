"""The pieces of schemaiso's pytest plugin (``schemaiso.pytest_plugin``).

Only the plugin imports these, so schemaiso itself never needs pytest.
"""
