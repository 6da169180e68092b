"""The fast flush: a ``TransactionTestCase`` reset that empties only the tables a
test left rows in, in the worker's own schema (catalog.py reads, plan.py decides,
backends/flush.py runs it at Django's seams)."""
