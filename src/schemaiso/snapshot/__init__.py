"""Template snapshots: a migrated template as a file, restored instead of ``migrate``.

``capture`` reads what a snapshot holds from a migrated template (its clone plan,
its rows, what it needs from outside), ``fileformat`` writes and checks the file,
``manifest`` says what a snapshot is and whether a run may trust it, ``store``
finds, chooses and prunes files in the snapshot directory, and ``restore`` runs
one into a new template. backends/snapshots.py decides when, for one alias.
"""
