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


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own data dir and SQLite database."""
    monkeypatch.setenv("VERTICALS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VERTICALS_DATABASE_URL", f"sqlite:///{tmp_path / 'verticals.db'}")
    monkeypatch.delenv("VERTICALS_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("VERTICALS_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("VERTICALS_MODELS", raising=False)
    monkeypatch.delenv("VERTICALS_BROKER_URL", raising=False)
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
        import verticals.plugins

        monkeypatch.setattr(verticals.plugins, "_registry", None)
        return pythonpath

    return install


@pytest.fixture
def registry(use_plugins):
    use_plugins("good")
    from verticals.plugins import get_registry

    return get_registry(refresh=True)


@pytest.fixture
def store(isolated_home):
    from verticals.core.store import open_store

    return open_store(f"sqlite:///{isolated_home / 'jobs.db'}")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600):
    """Run the real CLI in a subprocess (the way a user does)."""
    import subprocess

    command = [sys.executable, "-m", "verticals.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=REPO)
