"""Executors: where chunks run. ``local`` (default) or ``celery`` (when VERTICALS_BROKER_URL is set)."""

from __future__ import annotations

from typing import Any

from verticals.core.models import ModelHost
from verticals.core.store import Store
from verticals.plugins import Registry


def get_executor(store: Store, registry: Registry, host: ModelHost | None = None, name: str | None = None) -> Any:
    from verticals.config import broker_url

    name = name or ("celery" if broker_url() else "local")
    if name == "local":
        from verticals.workers.local import LocalExecutor

        return LocalExecutor(store, registry, host)
    if name == "celery":
        from verticals.workers.celery_executor import CeleryExecutor  # added with the Celery executor

        return CeleryExecutor(store, registry)
    raise ValueError(f"unknown executor {name!r}: use local or celery")
