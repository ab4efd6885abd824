"""Each test gets its own verticals home and database, and only this plugin is loaded."""

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VERTICALS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VERTICALS_DATABASE_URL", f"sqlite:///{tmp_path / 'verticals.db'}")
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "template")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
