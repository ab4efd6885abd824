"""Alembic environment: runs against the connection or URL that verticals.core.store.db passes in; the
target schema is every table of ``verticals.migrations.TABLE_MODULES``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from verticals.migrations import target_metadata as _every_table

config = context.config
target_metadata = _every_table()  # every table module: the core's, eval runs', the tenancy tables


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
