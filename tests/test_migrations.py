"""Migrations that know every table (issue 25 item 4).

A database migrated to head must match the tables the code declares, exactly as Alembic's autogenerate
sees them: ``alembic revision --autogenerate`` on a migrated database proposes nothing. The target is
``verticals.migrations.target_metadata()``, what ``env.py`` gives Alembic, and a module that declares a
table without being listed in ``verticals.migrations.TABLE_MODULES`` fails here too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from verticals.core.store.db import make_engine, upgrade
from verticals.migrations import TABLE_MODULES, target_metadata

PACKAGE = Path(__file__).resolve().parents[1] / "verticals"


def _differences(url: str) -> list:
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "compare_server_default": True})
            return compare_metadata(context, target_metadata())
    finally:
        engine.dispose()


def _declaring_modules() -> dict[str, set[str]]:
    """Module -> tables declared there (classes with a ``__tablename__``), read from the source."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for statement in node.body:
                if isinstance(statement, ast.Assign) and any(
                        isinstance(target, ast.Name) and target.id == "__tablename__" for target in statement.targets):
                    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
                    found.setdefault(".".join(parts), set()).add(ast.literal_eval(statement.value))
    return found


def test_every_module_declaring_tables_is_known_to_alembic():
    declaring = _declaring_modules()
    assert set(declaring) == set(TABLE_MODULES), "list the module in verticals.migrations.TABLE_MODULES"
    # and env.py's metadata holds them all, in a fresh process that imports nothing else first
    code = ("from verticals.migrations import target_metadata; "
            "print(' '.join(sorted(target_metadata().tables)))")
    tables = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(tables) == sorted(set().union(*declaring.values()))
    assert {"jobs", "tenants", "webhooks", "webhook_deliveries", "idempotency_keys", "eval_runs"} <= set(tables)


def test_a_database_migrated_to_head_matches_every_table_on_sqlite(tmp_path):
    assert _differences(f"sqlite:///{tmp_path / 'fresh.db'}") == []


def test_a_database_migrated_to_head_matches_every_table_on_postgresql(postgres_url):
    assert _differences(postgres_url) == []


def test_the_comparison_sees_a_difference(tmp_path):
    """The check can fail: a database missing a column of the code is reported."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'drifted.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE eval_runs DROP COLUMN records"))
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), target_metadata())
    engine.dispose()
    assert [entry[0] for entry in diff] == ["add_column"]
    assert diff[0][3].name == "records"

