"""``manage.py schemaiso list|prune`` take Django's common options (``--settings``,
``--pythonpath``, ``-v``, ``--traceback``, ...) and ``--database`` before or after
the subcommand, as every other management command takes them anywhere on the line."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from schemaiso.management.commands.schemaiso import Command

from .conftest import ROOT, Project, admin_connect

MARKER = (
    'schemaiso:{"role": "worker", "run": "cafecafe", "host": "elsewhere", '
    '"pid": 1, "created": 0}'
)


def parse(*argv: str) -> dict[str, Any]:
    return vars(Command().create_parser("manage.py", "schemaiso").parse_args(list(argv)))


@pytest.mark.parametrize(
    ("argv", "verbosity"),
    [
        (["list"], 1),
        (["list", "-v", "2"], 2),
        (["-v", "2", "list"], 2),
        (["list", "--verbosity", "0"], 0),
        (["-v", "3", "list", "-v", "2"], 2),  # the one after the subcommand wins
        (["prune", "--dry-run", "-v", "2"], 2),
    ],
)
def test_verbosity_is_taken_before_and_after_the_subcommand(
    argv: list[str], verbosity: int
) -> None:
    assert parse(*argv)["verbosity"] == verbosity


def test_common_options_are_taken_after_the_subcommand() -> None:
    options = parse(
        "prune", "--older-than", "2h", "--settings", "x.settings", "--pythonpath", "/srv",
        "--traceback", "--no-color", "--skip-checks", "--database", "reports",
    )
    assert options["action"] == "prune" and options["older_than"] == 7200
    assert options["settings"] == "x.settings" and options["pythonpath"] == "/srv"
    assert options["traceback"] and options["no_color"] and options["skip_checks"]
    assert options["database"] == "reports"


def test_options_given_before_the_subcommand_are_kept() -> None:
    options = parse("--traceback", "--database", "reports", "--settings", "x.settings", "list")
    assert options["traceback"] and options["database"] == "reports"
    assert options["settings"] == "x.settings"
    defaults = parse("list")
    assert defaults["database"] is None and defaults["settings"] is None
    assert not defaults["traceback"] and not defaults["force_color"]


def test_call_command_passes_database_from_either_position(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str | None] = []

    def recorded(self: Command, only: str | None) -> list[Any]:
        asked.append(only)
        return []

    monkeypatch.setattr(Command, "_test_databases", recorded)
    call_command("schemaiso", "list", "--database", "reports", "-v", "2")
    call_command("schemaiso", "--database", "reports", "list")
    call_command("schemaiso", "prune", "--dry-run", database="reports")
    call_command("schemaiso", "list")
    assert asked == ["reports", "reports", "reports", None]


@pytest.fixture
def listed_project(project: Project) -> Project:
    """The project with an empty test database holding one marked schema."""
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "test_{project.name}"')
    with admin_connect(f"test_{project.name}") as conn:
        conn.execute(f"CREATE SCHEMA schemaiso_cafecafe_w1; "
                     f"COMMENT ON SCHEMA schemaiso_cafecafe_w1 IS '{MARKER}'")
    return project


def assert_listing(output: str, name: str) -> None:
    lines = output.splitlines()
    assert f"default: test database 'test_{name}', 1 schemaiso schema(s)" in lines, output
    row = next(line for line in lines if line.strip().startswith("schemaiso_cafecafe_w1"))
    assert " worker " in row and " cafecafe " in row and " other host " in row, output


@pytest.mark.parametrize(
    "args",
    [
        ["schemaiso", "list", "-v", "2"],
        ["schemaiso", "list", "--settings", "testproject.settings", "-v", "2"],
        ["schemaiso", "-v", "2", "list", "--traceback", "--no-color"],
    ],
)
def test_manage_py_schemaiso_list_takes_common_options(
    listed_project: Project, args: list[str]
) -> None:
    run = listed_project.manage(*args)
    assert run.returncode == 0, run.explain()
    assert "unrecognized arguments" not in run.output, run.explain()
    assert_listing(run.stdout, listed_project.name)
    assert f"reports: no test database 'test_{listed_project.name}_reports'." in run.stdout


def test_settings_and_pythonpath_after_the_subcommand_take_effect(
    listed_project: Project,
) -> None:
    # tests.settings (importable only through --pythonpath from testproject/) has
    # no "reports" alias: its absence from the listing shows which settings ran.
    run = listed_project.manage(
        "schemaiso", "list", "--pythonpath", str(ROOT), "--settings", "tests.settings",
        "--database", "default",
    )
    assert run.returncode == 0, run.explain()
    assert_listing(run.stdout, listed_project.name)
    assert "reports" not in run.output, run.explain()


def test_an_unknown_alias_after_the_subcommand_is_a_schemaiso_error(
    listed_project: Project,
) -> None:
    run = listed_project.manage("schemaiso", "prune", "--dry-run", "--database", "nope")
    assert run.returncode == 1, run.explain()
    assert "CommandError: schemaiso: no database alias 'nope' in DATABASES." in run.stderr
