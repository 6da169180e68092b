"""An app whose migrations a test writes and changes between ``--keepdb`` runs.

Installed only with ``TESTPROJECT_EVOLVING`` (see settings). It has no models:
its migrations create ``evolving_probe`` by SQL.
"""
