"""Storage of jobs, items and artifacts (SQLAlchemy 2.x, Alembic migrations)."""

from verticals.core.store.db import DatabaseNotReady, ensure_ready, make_engine, storage_problem, upgrade
from verticals.core.store.repo import ItemResult, Store, open_store

__all__ = ["DatabaseNotReady", "ItemResult", "Store", "ensure_ready", "make_engine", "open_store", "storage_problem",
           "upgrade"]
