"""State lives under one documented home: with VERTICALS_HOME set, commands write nothing else in the user's home
(docs/configuration.md, "Where state lives"), so a project or a test can keep its state apart."""

from __future__ import annotations

import json
import os

from tests.conftest import run_cli


def test_state_follows_verticals_home_and_nothing_else_is_written(use_plugins, tmp_path, monkeypatch):
    use_plugins("good")
    monkeypatch.delenv("VERTICALS_DATABASE_URL")  # the default database: the home's
    user = tmp_path / "user"
    user.mkdir()
    home = tmp_path / "project" / ".verticals"
    env = {"HOME": str(user), "VERTICALS_HOME": str(home), "XDG_DATA_HOME": "", "XDG_CONFIG_HOME": "",
           "VERTICALS_LOAD_PLUGINS": "fixtures"}
    data = tmp_path / "in.txt"
    data.write_text("a\nb\n", encoding="utf-8")
    ran = run_cli("run", "fixtures.echo", str(data), "-q", env=env)
    assert ran.returncode == 0, ran.stderr
    assert run_cli("eval", "fixtures.keyword", env=env).returncode == 0
    assert run_cli("keys", "create", "--tenant", "t", "--name", "n", env=env).returncode == 0
    listed = json.loads(run_cli("jobs", "list", "--json", env=env).stdout)
    assert len(listed) == 2 and (home / "verticals.db").is_file()
    written = sorted(os.path.relpath(os.path.join(folder, name), user)
                     for folder, dirs, files in os.walk(user) for name in dirs + files)
    assert [path for path in written if not path.startswith(".cache")] == []  # caches only, never state
    other = tmp_path / "elsewhere"  # another project: none of this state
    assert json.loads(run_cli("jobs", "list", "--json", env={**env, "VERTICALS_HOME": str(other)}).stdout) == []
