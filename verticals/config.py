"""Settings read from the environment (one place, documented in docs/configuration.md)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    """Where verticals keeps its SQLite database by default (``VERTICALS_HOME`` overrides)."""
    home = os.environ.get("VERTICALS_HOME")
    path = Path(home).expanduser() if home else Path(platformdirs.user_data_dir("verticals", appauthor=False))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new data dir is its owner's only
    return path


def database_url() -> str:
    """``VERTICALS_DATABASE_URL``, or an SQLite file in the data dir."""
    return os.environ.get("VERTICALS_DATABASE_URL") or f"sqlite:///{data_dir() / 'verticals.db'}"


def broker_url() -> str | None:
    """``VERTICALS_BROKER_URL`` (e.g. ``redis://127.0.0.1:6379/0``): selects the Celery executor."""
    return os.environ.get("VERTICALS_BROKER_URL") or None


def max_attempts() -> int:
    """How many times an item may be started before it is failed (``VERTICALS_MAX_ATTEMPTS``, default 3)."""
    return int(os.environ.get("VERTICALS_MAX_ATTEMPTS", "3"))
