"""``verticals db upgrade|current``: the database schema (Alembic migrations)."""

from __future__ import annotations

from typing import Annotated

import typer

from verticals.cli.common import err, out

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations to the configured database (VERTICALS_DATABASE_URL or the SQLite file)."""
    from verticals.config import database_url
    from verticals.core.store.db import current_revision, make_engine, upgrade

    engine = make_engine(database_url())
    before = current_revision(engine)
    upgrade(engine, revision)
    err.print(f"database {engine.url.render_as_string(hide_password=True)}: {before or 'empty'} -> "
              f"{current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision and the code's head."""
    from verticals.config import database_url
    from verticals.core.store.db import current_revision, head_revision, make_engine

    engine = make_engine(database_url())
    out.print(f"database: {current_revision(engine) or 'empty'}  head: {head_revision()}")
