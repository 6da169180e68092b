"""Helpers the tests share that are not fixtures: the catalog oracle that verifies clones."""
