"""A deliberately broken runner, used as a negative control.

SharedDatabaseRunner runs --parallel N but points every worker at the one
test database (no per-worker clones), so tests that rely on isolation between
workers (the ``isolation`` app) fail under it.
"""

import multiprocessing

import django
from django.db import connections
from django.test import runner as django_runner
from django.test.runner import DiscoverRunner, ParallelTestSuite
from django.test.utils import (
    setup_databases,
    setup_test_environment,
    teardown_databases,
)


def _init_shared_worker(
    counter,
    initial_settings=None,
    serialized_contents=None,
    process_setup=None,
    process_setup_args=None,
    debug_mode=None,
    used_aliases=None,
):
    """Like django.test.runner._init_worker, minus the switch to a clone."""
    with counter.get_lock():
        counter.value += 1
        django_runner._worker_id = counter.value

    fresh_interpreter = multiprocessing.get_start_method() in {"spawn", "forkserver"}
    if fresh_interpreter:
        if process_setup and callable(process_setup):
            process_setup(*(process_setup_args or ()))
        django.setup()
        setup_test_environment(debug=debug_mode)

    for alias in used_aliases if used_aliases is not None else connections:
        connection = connections[alias]
        if fresh_interpreter:
            connection.settings_dict.update(initial_settings[alias])
            if value := serialized_contents.get(alias):
                connection._test_serialized_contents = value
        else:
            # A forked worker inherits the parent's socket and pool: forget
            # them without closing (closing would end the parent's session).
            connection.connection = None
            pools = getattr(connection, "_connection_pools", None)
            if pools:
                pools.pop(alias, None)


class SharedDatabaseParallelTestSuite(ParallelTestSuite):
    init_worker = _init_shared_worker


class SharedDatabaseRunner(DiscoverRunner):
    """--parallel N with all workers on the same test database."""

    parallel_test_suite = SharedDatabaseParallelTestSuite

    def setup_databases(self, **kwargs):
        return setup_databases(
            self.verbosity,
            self.interactive,
            time_keeper=self.time_keeper,
            keepdb=self.keepdb,
            debug_sql=self.debug_sql,
            parallel=0,
            **kwargs,
        )

    def teardown_databases(self, old_config, **kwargs):
        teardown_databases(
            old_config, verbosity=self.verbosity, parallel=0, keepdb=self.keepdb
        )
