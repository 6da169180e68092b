"""Test runners of testproject.

SharedDatabaseRunner is a deliberately broken runner, used as a negative control:
it runs --parallel N but points every worker at the one test database (no
per-worker clones), so tests that rely on isolation between workers (the
``isolation`` app) fail under it.

ProjectRunner and ComposedRunner are the two shapes in which projects adopt
schemaiso with their own runner (``tests/test_custom_runner.py``, ``customrunner``
app): the mixin in front of ``DiscoverRunner`` in a runner with its own hooks, and
the mixin composed onto a project's existing ``DiscoverRunner`` subclass.
"""

import logging
import multiprocessing
import os
import unittest

import django
from django.conf import settings
from django.db import connections
from django.test import runner as django_runner
from django.test.runner import DiscoverRunner, ParallelTestSuite
from django.test.utils import (
    setup_databases,
    setup_test_environment,
    teardown_databases,
)

from schemaiso import SchemaIsolationMixin
from schemaiso.parallel import SchemaIsolatedParallelTestSuite


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


# --- Project runners with schemaiso's mixin -------------------------------------------


def _add_mark_option(parser):
    parser.add_argument(
        "--customrunner-mark",
        default="",
        help="A value the runner puts in settings.CUSTOMRUNNER_MARK and in the "
        "CUSTOMRUNNER_MARK environment variable, for its tests to find.",
    )


def _configure_like_a_project(mark):
    """What projects' runners commonly set before anything runs: fast hashers,
    the in-memory mailer, quiet logging, an option of their own."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CUSTOMRUNNER_MARK = mark
    os.environ["CUSTOMRUNNER_MARK"] = mark
    logging.disable(logging.CRITICAL)


def _counts(result):
    return (
        f"ran {result.testsRun}, failures {len(result.failures)}, "
        f"errors {len(result.errors)}, skipped {len(result.skipped)}"
    )


class ProjectParallelSuite(SchemaIsolatedParallelTestSuite):
    """Redo the runner's settings in spawned (and forkserver) workers.

    Such workers import settings afresh: what the runner changed at run time is
    lost there, with or without schemaiso. Django's hook for that is
    ``process_setup``; schemaiso's own sets the worker up first.
    """

    def process_setup(*args):  # noqa: N805 (Django calls the function, not a method)
        SchemaIsolatedParallelTestSuite.process_setup(*args)
        _configure_like_a_project(os.environ["CUSTOMRUNNER_MARK"])
        settings.CUSTOMRUNNER_ENVIRONMENT = ProjectRunner.__name__


class ProjectRunner(SchemaIsolationMixin, DiscoverRunner):
    """A project's runner with its own option, hooks and parallel suite, schemaiso's
    mixin in front.

    Its hooks come before the mixin's in the MRO: each calls ``super()`` into it.
    """

    parallel_test_suite = ProjectParallelSuite

    def __init__(self, *args, customrunner_mark="", **kwargs):
        super().__init__(*args, **kwargs)
        self.customrunner_mark = customrunner_mark
        _configure_like_a_project(customrunner_mark)

    @classmethod
    def add_arguments(cls, parser):
        super().add_arguments(parser)
        _add_mark_option(parser)

    def setup_test_environment(self, **kwargs):
        super().setup_test_environment(**kwargs)
        settings.CUSTOMRUNNER_ENVIRONMENT = ProjectRunner.__name__
        print(f"customrunner: {type(self).__name__}.setup_test_environment", flush=True)

    def setup_databases(self, **kwargs):
        old_config = super().setup_databases(**kwargs)
        print(
            f"customrunner: {type(self).__name__}.setup_databases: "
            f"{len(old_config)} test database(s)",
            flush=True,
        )
        return old_config

    def get_test_runner_kwargs(self):
        return {**super().get_test_runner_kwargs(), "tb_locals": True}

    def run_suite(self, suite, **kwargs):
        result = super().run_suite(suite, **kwargs)
        print(f"customrunner: {type(self).__name__}.run_suite: {_counts(result)}", flush=True)
        return result

    def teardown_test_environment(self, **kwargs):
        super().teardown_test_environment(**kwargs)
        logging.disable(logging.NOTSET)
        print(f"customrunner: {type(self).__name__}.teardown_test_environment", flush=True)


class CountingResult(unittest.TextTestResult):
    """A project's result class: counts successes (workers' results arrive as events)."""

    successes = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.successes += 1


class HookedRunner(DiscoverRunner):
    """A project's runner written without schemaiso in mind (the base of ComposedRunner)."""

    def __init__(self, *args, customrunner_mark="", **kwargs):
        super().__init__(*args, **kwargs)
        _configure_like_a_project(customrunner_mark)

    @classmethod
    def add_arguments(cls, parser):
        super().add_arguments(parser)
        _add_mark_option(parser)

    def build_suite(self, test_labels=None, **kwargs):
        suite = super().build_suite(test_labels, **kwargs)
        print(
            f"customrunner: HookedRunner.build_suite: {suite.countTestCases()} test(s)",
            flush=True,
        )
        return suite

    def setup_test_environment(self, **kwargs):
        super().setup_test_environment(**kwargs)
        settings.CUSTOMRUNNER_ENVIRONMENT = type(self).__name__
        print("customrunner: HookedRunner.setup_test_environment", flush=True)

    def get_resultclass(self):
        return super().get_resultclass() or CountingResult

    def run_suite(self, suite, **kwargs):
        result = super().run_suite(suite, **kwargs)
        print(
            f"customrunner: HookedRunner.run_suite: {_counts(result)}, "
            f"successes {getattr(result, 'successes', None)}",
            flush=True,
        )
        return result

    def teardown_test_environment(self, **kwargs):
        super().teardown_test_environment(**kwargs)
        logging.disable(logging.NOTSET)
        print("customrunner: HookedRunner.teardown_test_environment", flush=True)


class ComposedRunner(SchemaIsolationMixin, HookedRunner):
    """schemaiso composed onto the project's existing runner, with nothing else."""
