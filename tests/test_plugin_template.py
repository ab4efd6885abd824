"""The plugin template (examples/plugin-template) is a working plugin: copied, built and installed by pip, loaded by
the registry, its task run and scored by the CLI, and its own tests pass against the installed copy."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli

TEMPLATE = REPO / "examples" / "plugin-template"


@pytest.mark.slow
def test_the_template_installs_loads_runs_and_scores(tmp_path):
    copy = tmp_path / "my-plugin"  # what a plugin author starts from
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    site = tmp_path / "site-packages"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                                "--no-index", "--target", str(site), str(copy)], capture_output=True, text=True,
                               timeout=600)
    assert installed.returncode == 0, installed.stderr
    assert (site / "verticals_template" / "golden" / "topic.jsonl").is_file()  # the golden set ships with it

    env = {"PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "VERTICALS_LOAD_PLUGINS": "template", "VERTICALS_STRICT_PLUGINS": "1"}
    listed = run_cli("plugins", "list", env=env)
    assert listed.returncode == 0 and "template" in listed.stdout, listed.stderr

    out = tmp_path / "topics.csv"
    ran = run_cli("run", "template.topic", str(copy / "messages.csv"), "-o", str(out), env=env)
    assert ran.returncode == 0, ran.stderr
    with out.open(encoding="utf-8", newline="") as handle:
        labels = [row["label"] for row in csv.DictReader(handle)]
    assert labels == ["shipping", "account"]

    scored = run_cli("eval", "template.topic", "--json", env=env)
    assert scored.returncode == 0, scored.stderr
    run = json.loads(scored.stdout)
    assert run["data"] == "golden:topic.jsonl" and run["metrics"]["n"] == 24
    assert 0 < run["metrics"]["accuracy"] <= 1 and run["models"][0]["model"] == "template.encoder"

    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(copy / "tests")],
                         capture_output=True, text=True, timeout=900, cwd=copy,
                         env={**os.environ, **env, "HF_HUB_OFFLINE": "1"})
    assert own.returncode == 0, own.stdout + own.stderr
    assert "2 passed" in own.stdout
