"""Alembic migrations: the only way the schema is created and changed.

:func:`target_metadata` is the schema the code expects: every table of every module listed in
:data:`TABLE_MODULES`, all declared on one ``MetaData`` (``verticals.core.store.tables.Base``). ``env.py``
gives it to Alembic, so ``alembic revision --autogenerate`` compares the database with every table, and
``tests/test_migrations.py`` fails when a migrated database differs from it or when a module declares a
table without being listed here.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

# Every module that declares tables on ``Base`` (the core's job tables, stored evaluation runs, the REST
# API's tenancy tables). The migrations package sits outside the layers: listing a front end's tables here
# does not make the core depend on it.
TABLE_MODULES = (
    "verticals.core.store.tables",
    "verticals.core.evaluation.runs",
    "verticals.tenancy.tenants",
)


def target_metadata() -> MetaData:
    """The one ``MetaData`` holding every table of :data:`TABLE_MODULES`."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    from verticals.core.store.tables import Base

    return Base.metadata
