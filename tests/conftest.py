from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

FIXTURE_PLUGINS = Path(__file__).parent / "fixture_plugins"
REPO = Path(__file__).resolve().parents[1]

# No test may reach a model hub; packaged weights serve every model.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items):
    """``integration`` on every test that uses a real PostgreSQL server: through ``postgres_url`` (directly or
    through a fixture built on it, e.g. the Celery tests' ``celery_env``), or as the ``postgresql`` case of a
    parametrized store (``store``, test_api's ``api_store``). Tests starting other services (redis-server,
    workers, `verticals serve`, Chromium) carry the marker themselves."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if "postgres_url" in getattr(item, "fixturenames", ()) or any(
                isinstance(value, str) and value == "postgresql" for value in params):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own data dir and SQLite database."""
    monkeypatch.setenv("VERTICALS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VERTICALS_DATABASE_URL", f"sqlite:///{tmp_path / 'verticals.db'}")
    monkeypatch.delenv("VERTICALS_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("VERTICALS_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("VERTICALS_MODELS", raising=False)
    monkeypatch.delenv("VERTICALS_BROKER_URL", raising=False)
    monkeypatch.setenv("VERTICALS_WEBHOOK_ALLOW_PRIVATE", "1")  # test receivers listen on loopback
    yield tmp_path


@pytest.fixture
def use_plugins(monkeypatch):
    """Make test plugins discoverable (as if pip-installed) for this process and its children."""

    def install(*names: str) -> str:
        paths = [str(FIXTURE_PLUGINS / name) for name in names]
        for path in paths:
            monkeypatch.syspath_prepend(path)
        pythonpath = os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p])
        monkeypatch.setenv("PYTHONPATH", pythonpath)
        import verticals.registry

        monkeypatch.setattr(verticals.registry, "_registry", None)
        return pythonpath

    return install


@pytest.fixture
def fixtures_only_registry(use_plugins, monkeypatch):
    """A registry of the model-free fixture plugin alone (no domain plugin is imported)."""
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    use_plugins("good")
    from verticals.registry import get_registry

    return get_registry(refresh=True)


@pytest.fixture
def registry(use_plugins):
    use_plugins("good")
    from verticals.registry import get_registry

    return get_registry(refresh=True)


# PostgreSQL: a server with trust auth (scripts/ensure-services.sh starts one); each test gets its own database.
@pytest.fixture
def tiny(use_plugins, monkeypatch, tmp_path):
    """The registry of the fixture plugins `fixtures` (no model) and `tinymodel` (tiny.embed -> tiny-encoder)."""
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures,tinymodel")
    use_plugins("good", "tinymodel")
    from verticals_tinymodel import write_tiny_encoder

    monkeypatch.setenv("VERTICALS_TINY_MODEL", str(write_tiny_encoder(tmp_path / "tiny-encoder")))
    from verticals.registry import get_registry

    return get_registry(refresh=True)


POSTGRES_ADMIN_URL = os.environ.get("VERTICALS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_admin():
    from sqlalchemy import create_engine

    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture
def postgres_url():
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = _postgres_admin()
    name = f"vt_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({type(error).__name__}): "
                    "run scripts/ensure-services.sh or set VERTICALS_TEST_POSTGRES_URL")
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from verticals.core.store.db import make_engine

        make_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, isolated_home):
    """A migrated store on SQLite and, as a second parameter, on a fresh PostgreSQL database."""
    from verticals.core.store import open_store
    from verticals.core.store.db import make_engine, upgrade

    if request.param == "sqlite":
        return open_store(f"sqlite:///{isolated_home / 'jobs.db'}")
    url = request.getfixturevalue("postgres_url")
    upgrade(make_engine(url))
    return open_store(url)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600):
    """Run the real CLI in a subprocess (the way a user does)."""
    import subprocess

    command = [sys.executable, "-m", "verticals.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=REPO)
