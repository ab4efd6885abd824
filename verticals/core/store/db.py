"""Engines and migrations.

The schema exists only through Alembic migrations shipped in the wheel
(``verticals/migrations``). The embedded SQLite default is upgraded to head
automatically on first use (zero setup); any other database must be upgraded
explicitly with ``verticals db upgrade`` and is refused until it is.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class DatabaseNotReady(RuntimeError):
    """The database schema is not at the revision this code expects."""


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_heads()
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@functools.cache
def make_engine(url: str) -> Engine:
    """One engine per URL per process. SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA secure_delete=ON")  # purged inputs (PHI) must not linger in free pages
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def ensure_ready(engine: Engine) -> None:
    """Upgrade an embedded SQLite database; refuse any other database not at head."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if engine.url.get_backend_name() == "sqlite":
        upgrade(engine)
        return
    raise DatabaseNotReady(
        f"database {engine.url.render_as_string(hide_password=True)} is at revision {current or 'none (empty)'}, "
        f"this verticals expects {head}. Run: verticals db upgrade"
    )
