#!/usr/bin/env python3
"""Generate a synthetic Django project with a given number of models, for bench/.

    python3 bench/generate.py --tables 300 [--transactional N] [--projects DIR]  # prints its dir

The project is a pure function of ``--tables`` and of this file: it is written
once into ``<projects>/<tables>-<hash of this file>/`` (default
``bench/.projects/``, gitignored) and reused by later runs; editing this file
changes the hash, so a stale project is never reused.

What it holds (model ``i`` = ``M<i>`` in app ``a<i // 25>``):
- 25 models per app, each app with its own ``0001_initial`` migration, so no
  single migration (one transaction) creates more tables than PostgreSQL's
  default lock table can take;
- every model: a BigAutoField key, ``name`` (``db_index`` on every third),
  ``code``, ``value``, ``note`` (text, so it has a TOAST table);
- a FK to the previous model of its app, a FK to a model of an earlier app on
  every fifth model, a M2M to the previous model on every seventh;
- an ``Index`` on (value, name) on every third model, a ``UniqueConstraint``
  on every other model;
- a data migration (``0002_seed``, RunPython) per app inserting three rows;
- tests: per app a TestCase class writing one row into each model and checking
  counts, enough extra TestCase classes for 12 in all, and 4
  TransactionTestCase classes (last app) that commit rows with the same unique
  codes and check counts: they fail if two workers ever share tables.
- with ``--transactional N``: N more TransactionTestCase tests (classes of
  TX_PER_CLASS, round-robin over the apps, so that every worker gets some), each
  writing a few rows into the first models of its app (a FK chain) and checking
  them; no ``available_apps``, so each flush covers the whole project, as in most
  real projects. Such a project lives in ``<tables>-t<N>-<hash>/``.
- a ``pytest.ini`` (settings module, test files named ``tests.py``) for
  ``bench/compare.py --pytest``, which runs the same suite with pytest-django.

Migrations are written directly from the same spec as the models (running
``makemigrations`` for 1000 models is slow); tests/test_bench.py checks with
``makemigrations --check`` that they match. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DEFAULT_PROJECTS = BENCH / ".projects"
APP_SIZE = 25
MIN_TESTCASE_CLASSES = 12
TX_CLASSES = 4
SEED_ROWS = 3
TX_ROWS = 5
TX_PER_CLASS = 5
#: --transactional: models each test writes into, and rows into each.
WRITES_MODELS = 3
WRITES_ROWS = 2


def generator_hash() -> str:
    """Changes whenever this file does; part of the project's directory name."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


# --- the spec ------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    index: int

    @property
    def app(self) -> int:
        return self.index // APP_SIZE

    @property
    def label(self) -> str:
        return app_label(self.app)

    @property
    def name(self) -> str:
        return f"M{self.index:04d}"

    @property
    def first_in_app(self) -> bool:
        return self.index % APP_SIZE == 0

    @property
    def parent(self) -> Model | None:
        """FK to the previous model of the same app."""
        return None if self.first_in_app else Model(self.index - 1)

    @property
    def other(self) -> Model | None:
        """FK to a model of an earlier app (so apps depend on earlier apps only)."""
        if self.app == 0 or self.index % 5 != 2:
            return None
        return Model((self.index * 7) % (self.app * APP_SIZE))

    @property
    def links(self) -> Model | None:
        """M2M to the previous model of the same app."""
        return self.parent if self.index % 7 == 3 else None

    @property
    def name_indexed(self) -> bool:
        return self.index % 3 == 0

    @property
    def index_name(self) -> str | None:
        return f"m{self.index:04d}_value_name_idx" if self.index % 3 == 1 else None

    @property
    def unique(self) -> tuple[str, tuple[str, ...]] | None:
        """(name, fields) of its UniqueConstraint; the first model of an app (which
        gets the seed rows and the TransactionTestCase rows) always has one on code."""
        if self.first_in_app or self.index % 4 == 0:
            return f"m{self.index:04d}_code_uniq", ("code",)
        if self.index % 4 == 2:
            fields = ("parent", "code") if self.parent else ("name", "code")
            return f"m{self.index:04d}_pair_uniq", fields
        return None


def app_label(app: int) -> str:
    return f"a{app:02d}"


def apps_of(tables: int) -> list[list[Model]]:
    models = [Model(i) for i in range(tables)]
    return [models[start:start + APP_SIZE] for start in range(0, tables, APP_SIZE)]


# --- models.py -----------------------------------------------------------------------


def _ref(model: Model) -> str:
    return f"{model.label}.{model.name}"


def models_py(models: list[Model]) -> str:
    out = ["from django.db import models"]
    for m in models:
        out += ["", "", f"class {m.name}(models.Model):"]
        index = ", db_index=True" if m.name_indexed else ""
        out.append(f"    name = models.CharField(max_length=100{index})")
        out.append("    code = models.CharField(max_length=40)")
        out.append("    value = models.IntegerField(default=0)")
        out.append('    note = models.TextField(blank=True, default="")')
        if m.parent:
            out.append(f'    parent = models.ForeignKey("{_ref(m.parent)}", models.CASCADE, '
                       'null=True, related_name="+")')
        if m.other:
            out.append(f'    other = models.ForeignKey("{_ref(m.other)}", models.SET_NULL, '
                       'null=True, related_name="+")')
        if m.links:
            out.append(f'    links = models.ManyToManyField("{_ref(m.links)}", related_name="+")')
        meta: list[str] = []
        if m.index_name:
            meta.append(f'        indexes = [models.Index(fields=["value", "name"], '
                        f'name="{m.index_name}")]')
        if m.unique:
            name, fields = m.unique
            meta.append(f"        constraints = [models.UniqueConstraint(fields={list(fields)!r}, "
                        f'name="{name}")]')
        if meta:
            out += ["", "    class Meta:", *meta]
    return "\n".join(out) + "\n"


# --- migrations -----------------------------------------------------------------------


def initial_migration_py(models: list[Model]) -> str:
    label = models[0].label
    depends = sorted({m.other.label for m in models if m.other and m.other.label != label})
    out = [
        "from django.db import migrations, models",
        "import django.db.models.deletion",
        "",
        "",
        "class Migration(migrations.Migration):",
        "    initial = True",
        "",
        "    dependencies = [",
        *[f'        ("{dep}", "0001_initial"),' for dep in depends],
        "    ]",
        "",
        "    operations = [",
    ]
    for m in models:
        out += [
            "        migrations.CreateModel(",
            f'            name="{m.name}",',
            "            fields=[",
            '                ("id", models.BigAutoField(auto_created=True, primary_key=True, '
            'serialize=False, verbose_name="ID")),',
            '                ("name", models.CharField(max_length=100'
            f'{", db_index=True" if m.name_indexed else ""})),',
            '                ("code", models.CharField(max_length=40)),',
            '                ("value", models.IntegerField(default=0)),',
            '                ("note", models.TextField(blank=True, default="")),',
        ]
        if m.parent:
            out.append('                ("parent", models.ForeignKey(null=True, '
                       'on_delete=django.db.models.deletion.CASCADE, related_name="+", '
                       f'to="{_ref(m.parent)}")),')
        if m.other:
            out.append('                ("other", models.ForeignKey(null=True, '
                       'on_delete=django.db.models.deletion.SET_NULL, related_name="+", '
                       f'to="{_ref(m.other)}")),')
        if m.links:
            out.append(f'                ("links", models.ManyToManyField(related_name="+", '
                       f'to="{_ref(m.links)}")),')
        out.append("            ],")
        options: list[str] = []
        if m.index_name:
            options.append(f'                "indexes": [models.Index(fields=["value", "name"], '
                           f'name="{m.index_name}")],')
        if m.unique:
            name, fields = m.unique
            options.append('                "constraints": [models.UniqueConstraint('
                           f'fields={fields!r}, name="{name}")],')
        if options:
            out += ["            options={", *options, "            },"]
        out.append("        ),")
    out += ["    ]", ""]
    return "\n".join(out)


def seed_migration_py(models: list[Model]) -> str:
    first = models[0]
    return f'''"""Data migration: the rows every test database starts with."""

from django.db import migrations


def seed(apps, schema_editor):
    model = apps.get_model("{first.label}", "{first.name}")
    model.objects.using(schema_editor.connection.alias).bulk_create(
        model(name=f"seed {{n}}", code=f"seed-{{n}}", value=n) for n in range({SEED_ROWS})
    )


def unseed(apps, schema_editor):
    model = apps.get_model("{first.label}", "{first.name}")
    model.objects.using(schema_editor.connection.alias).filter(code__startswith="seed-").delete()


class Migration(migrations.Migration):
    dependencies = [("{first.label}", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
'''


# --- tests ------------------------------------------------------------------------------


def writes_py(models: list[Model], counts: list[int]) -> list[str]:
    """TransactionTestCase classes of --transactional: ``counts[k]`` tests in class k."""
    written = models[:WRITES_MODELS]
    out: list[str] = []
    for k, count in enumerate(counts):
        out += ["", "", f"class {models[0].label.upper()}WritesTx{k}Tests(TransactionTestCase):",
                '    """Commits a few rows into a few models; the flush after each test',
                '    covers the whole project (no available_apps)."""']
        for n in range(count):
            out += [
                "",
                f"    def test_writes_{n}(self):",
                "        previous = None",
                f"        for model in [{', '.join(m.name for m in written)}]:",
                f"            for i in range({WRITES_ROWS}):",
                '                fields = {"name": "w", "code": f"w-{i}", "value": i}',
                '                if previous is not None and hasattr(model, "parent_id"):',
                '                    fields["parent"] = previous',
                "                row = model.objects.create(**fields)",
                "            previous = row",
                f'            self.assertEqual(model.objects.filter(code__startswith="w-").count(), '
                f'{WRITES_ROWS})',
            ]
    return out


def writes_per_app(apps: int, transactional: int) -> list[list[int]]:
    """How many --transactional tests each class of each app holds: classes of
    TX_PER_CLASS, dealt round-robin over the apps."""
    classes = [min(TX_PER_CLASS, transactional - start)
               for start in range(0, transactional, TX_PER_CLASS)]
    dealt: list[list[int]] = [[] for _ in range(apps)]
    for k, count in enumerate(classes):
        dealt[k % apps].append(count)
    return dealt


def tests_py(models: list[Model], extra_classes: int, last_app: bool,
             writes: list[int] | None = None) -> str:
    label, first = models[0].label, models[0]
    names = ", ".join(m.name for m in models)
    out = [
        '"""Generated by bench/generate.py."""',
        "",
        "import os",
        "import unittest",
        "",
        "from django.test import TestCase, TransactionTestCase",
        "",
        f"from .models import {names}",
        "",
        f"MODELS = [{names}]",
        "",
        "",
        "def write_chain(tag):",
        '    """One row per model, each pointing at the previous one where there is a FK."""',
        "    previous = None",
        "    for model in MODELS:",
        '        fields = {"name": tag, "code": tag, "value": 1}',
        '        if previous is not None and hasattr(model, "parent_id"):',
        '            fields["parent"] = previous',
        "        row = model.objects.create(**fields)",
        '        if previous is not None and hasattr(model, "links"):',
        "            row.links.add(previous)",
        "        previous = row",
        "",
        "",
        f"class {label.upper()}Tests(TestCase):",
        "    # Stock Django's --keepdb (and pytest-django's --reuse-db, which compare.py",
        "    # runs with the stock BENCH_RUNNER) reuses its worker databases unchecked: a",
        "    # TransactionTestCase's flush in an earlier run removed these rows there.",
        '    @unittest.skipIf(os.environ.get("BENCH_KEEPDB") == "1" and "DiscoverRunner" in '
        'os.environ.get("BENCH_RUNNER", ""), "stock --keepdb: stale kept clones")',
        "    def test_data_migration_rows_are_there(self):",
        f'        self.assertEqual({first.name}.objects.filter(code__startswith="seed-").count(), '
        f"{SEED_ROWS})",
        "",
        "    def test_writes_are_seen_and_counted(self):",
        '        write_chain("t-chain")',
        "        for model in MODELS:",
        '            self.assertEqual(model.objects.filter(code="t-chain").count(), 1)',
        "",
        "    def test_unique_constraint_holds(self):",
        f'        {first.name}.objects.create(name="u", code="t-unique")',
        f'        self.assertEqual({first.name}.objects.filter(code="t-unique").count(), 1)',
    ]
    for k in range(extra_classes):
        out += [
            "",
            "",
            f"class {label.upper()}MoreTests{k}(TestCase):",
            "    def test_rows(self):",
            f'        write_chain("t-more-{k}")',
            f'        self.assertEqual({models[-1].name}.objects.filter(code="t-more-{k}").count(), 1)',
        ]
    if last_app:
        for k in range(TX_CLASSES):
            out += [
                "",
                "",
                f"class IsolationTx{k}Tests(TransactionTestCase):",
                '    """Commits rows with the same unique codes as its siblings: they see one',
                '    another (or collide) if two workers ever share a table."""',
                "",
                f'    available_apps = ["{label}"]  # flush truncates this app only',
                "",
                "    def test_committed_rows_are_only_ours(self):",
                f"        for n in range({TX_ROWS}):",
                f'            {first.name}.objects.create(name="tx", code=f"tx-{{n}}", value={k})',
                f'        self.assertEqual({first.name}.objects.filter(code__startswith="tx-").count(), '
                f"{TX_ROWS})",
                f'        self.assertEqual(set({first.name}.objects.filter(code__startswith="tx-")'
                f'.values_list("value", flat=True)), {{{k}}})',
            ]
    out += writes_py(models, writes or [])
    return "\n".join(out) + "\n"


# --- the project ----------------------------------------------------------------------

SETTINGS_PY = '''"""Settings of a project generated by bench/generate.py.

Environment: DATABASE_URL (required); BENCH_RUNNER (TEST_RUNNER, default
schemaiso.Runner); BENCH_TEST_NAME (TEST NAME of the database); BENCH_SEARCH_PATH
(a search_path for every connection, used by bench/micro.py to migrate into a schema).
"""

import os
from urllib.parse import unquote, urlsplit

_url = urlsplit(os.environ["DATABASE_URL"])
_options = {{}}
if os.environ.get("BENCH_SEARCH_PATH"):
    _options["options"] = "-c search_path=" + os.environ["BENCH_SEARCH_PATH"]

DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": unquote(_url.hostname or ""),
        "PORT": str(_url.port or ""),
        "OPTIONS": _options,
        "TEST": {{"NAME": os.environ.get("BENCH_TEST_NAME") or None}},
    }},
}}

TEST_RUNNER = os.environ.get("BENCH_RUNNER", "schemaiso.Runner")
SECRET_KEY = "bench-insecure"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
{apps}
]
'''

MANAGE_PY = '''#!/usr/bin/env python3
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''


# pytest-django reads the settings module from here; the suite's test modules are
# all called tests.py, which pytest's default python_files (test_*.py) would miss.
PYTEST_INI = """[pytest]
DJANGO_SETTINGS_MODULE = benchproj.settings
python_files = tests.py
"""


def project_files(tables: int, transactional: int = 0) -> Iterator[tuple[str, str]]:
    """(relative path, content) of every file of the project."""
    apps = apps_of(tables)
    writes = writes_per_app(len(apps), transactional)
    labels = [group[0].label for group in apps]
    yield "manage.py", MANAGE_PY
    yield "pytest.ini", PYTEST_INI
    yield "benchproj/__init__.py", ""
    yield "benchproj/settings.py", SETTINGS_PY.format(
        apps="\n".join(f'    "{label}",' for label in labels))
    extra_total = max(0, MIN_TESTCASE_CLASSES - len(apps))
    for n, group in enumerate(apps):
        label = labels[n]
        extra = extra_total // len(apps) + (1 if n < extra_total % len(apps) else 0)
        yield f"{label}/__init__.py", ""
        yield f"{label}/models.py", models_py(group)
        yield f"{label}/tests.py", tests_py(group, extra, last_app=n == len(apps) - 1,
                                            writes=writes[n])
        yield f"{label}/migrations/__init__.py", ""
        yield f"{label}/migrations/0001_initial.py", initial_migration_py(group)
        yield f"{label}/migrations/0002_seed.py", seed_migration_py(group)


def project_dir(tables: int, projects: Path = DEFAULT_PROJECTS, transactional: int = 0) -> Path:
    extra = f"-t{transactional}" if transactional else ""
    return projects / f"{tables}{extra}-{generator_hash()}"


def ensure_project(tables: int, projects: Path = DEFAULT_PROJECTS, transactional: int = 0) -> Path:
    """The project's directory, written first if it is not there yet."""
    if tables < 1:
        raise ValueError(f"tables must be at least 1, got {tables}")
    if transactional < 0:
        raise ValueError(f"transactional must not be negative, got {transactional}")
    target = project_dir(tables, projects, transactional)
    if (target / "manage.py").exists():
        return target
    projects.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a run interrupted halfway, or two runs at once,
    # never leave a half-written project behind under the final name.
    scratch = Path(tempfile.mkdtemp(prefix=f".{tables}-", dir=projects))
    try:
        for relative, content in project_files(tables, transactional):
            path = scratch / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        os.chmod(scratch, 0o755)
        try:
            scratch.rename(target)
        except OSError:
            if not (target / "manage.py").exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="generate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, required=True, metavar="N",
                        help="number of models (each one table; M2Ms add join tables)")
    parser.add_argument("--transactional", type=int, default=0, metavar="N",
                        help="add N TransactionTestCase tests writing a few rows each")
    parser.add_argument("--projects", type=Path, default=DEFAULT_PROJECTS, metavar="DIR",
                        help=f"where generated projects are cached (default {DEFAULT_PROJECTS})")
    args = parser.parse_args(argv)
    print(ensure_project(args.tables, args.projects.resolve(), args.transactional))
    return 0


if __name__ == "__main__":
    sys.exit(main())
