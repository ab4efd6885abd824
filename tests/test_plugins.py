"""Plugin discovery through real entry points, quarantine, allowlist, version checks, docs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from verticals.contract import hooks as hookspecs
from verticals.registry import PluginError, UnknownTask, build_registry, close_matches


def test_installed_finance_plugin_is_discovered_through_its_entry_point():
    registry = build_registry()
    assert registry.plugins["finance"].status == "loaded"
    assert registry.plugins["finance"].distribution == "verticals-finance"
    assert "finance.sentiment" in registry.tasks
    assert registry.task_plugin["finance.sentiment"].name == "finance"
    assert "finance.sentiment" in registry.models


def test_fixture_plugin_registers_its_task(registry):
    assert registry.plugins["fixtures"].status == "loaded"
    assert registry.plugins["fixtures"].tasks == ["fixtures.echo", "fixtures.keyword"]
    assert "register_tasks" in registry.plugins["fixtures"].hooks


def test_broken_plugin_is_quarantined_and_the_rest_still_loads(use_plugins):
    use_plugins("good", "broken")
    registry = build_registry()
    broken = registry.plugins["broken"]
    assert broken.status == "quarantined"
    assert "ImportError" in broken.error and "broken on purpose" in broken.error
    assert "fixtures.echo" in registry.tasks


def test_misspelled_hook_is_rejected_loudly(use_plugins):
    use_plugins("misspelled")
    registry = build_registry()
    assert registry.plugins["misspelled"].status == "quarantined"
    assert "register_task" in registry.plugins["misspelled"].error


def test_strict_mode_raises_on_a_bad_plugin(use_plugins, monkeypatch):
    use_plugins("misspelled")
    monkeypatch.setenv("VERTICALS_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="register_task"):
        build_registry()


def test_version_mismatch_is_reported(use_plugins):
    use_plugins("incompatible")
    registry = build_registry()
    info = registry.plugins["incompatible"]
    assert info.status == "incompatible"
    assert "verticals>=9" in info.error


def test_allowlist_loads_only_named_plugins(use_plugins, monkeypatch):
    use_plugins("good", "broken")
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    registry = build_registry()
    assert registry.plugins["fixtures"].status == "loaded"
    assert registry.plugins["broken"].status == "disabled"
    assert registry.plugins["finance"].status == "disabled"
    assert "finance.sentiment" not in registry.tasks


def test_unknown_task_error_lists_installed_tasks(registry):
    with pytest.raises(PluginError, match=r"fixtures\.echo"):
        registry.task("nope.nothing")


def test_close_matches_finds_the_intended_name_and_nothing_for_noise():
    assert close_matches("finance.sentimnt", ["finance.sentiment", "medical.entities"]) == ["finance.sentiment"]
    assert close_matches("sentiment", ["finance.sentiment", "tutor.grade"]) == ["finance.sentiment"]  # last part
    assert close_matches("time-budgt", ["time_budget", "temperature", "seed"]) == ["time_budget"]
    assert close_matches("Mode", ["mode", "min_score"]) == ["mode"]
    assert close_matches("xyz", ["finance.sentiment", "tutor.grade"]) == []
    assert close_matches("anything", []) == []


def test_unknown_task_suggests_the_closest_installed_name(registry):
    with pytest.raises(UnknownTask) as caught:
        registry.task("fixtures.ecoh")
    assert caught.value.suggestions == ["fixtures.echo"]
    assert "did you mean fixtures.echo?" in str(caught.value)
    assert "verticals " not in str(caught.value)  # the same words for the API: no CLI command in them
    with pytest.raises(UnknownTask) as unrelated:
        registry.task("zzzz")
    assert unrelated.value.suggestions == [] and "did you mean" not in str(unrelated.value)


def test_unknown_parameter_suggests_the_closest_name(registry):
    from verticals.core.jobs.engine import JobError, validate_params

    echo = registry.task("fixtures.echo")
    with pytest.raises(JobError, match=r"unknown parameter 'slep' for fixtures\.echo: did you mean sleep\?"):
        validate_params(echo, {"slep": 1})
    with pytest.raises(JobError, match=r"unknown parameter 'qqq'.*parameters this task takes: sleep, reject"):
        validate_params(echo, {"qqq": 1})  # a typo is never silently ignored (EchoParams does not forbid extras)
    assert validate_params(echo, {"sleep": 0.5}).sleep == 0.5


def _did_you_mean_api(registry, tmp_path):
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app
    from verticals.core.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    return store, TestClient(create_app(store, registry, auth=False, background=False))


def test_did_you_mean_through_the_cli_the_api_and_the_sdk(fixtures_only_registry, tmp_path):
    """A misspelt task or parameter name: one message with the closest names in each front end, no job."""
    from tests.conftest import run_cli
    from verticals.client import Client, VerticalsError

    source = tmp_path / "in.txt"
    source.write_text("a\nb\n", encoding="utf-8")
    task = run_cli("run", "fixtures.ecoh", str(source))
    assert task.returncode == 2 and "did you mean fixtures.echo?" in task.stderr
    option = run_cli("run", "fixtures.echo", str(source), "--slep", "1")
    assert option.returncode == 2 and "unknown option --slep for fixtures.echo: did you mean --sleep?" in option.stderr
    own = run_cli("run", "fixtures.echo", str(source), "--text-colum", "text")
    assert own.returncode == 2 and "did you mean --text-column?" in own.stderr
    pair = run_cli("run", "fixtures.echo", str(source), "-p", "rejct=a")
    assert pair.returncode == 2 and "did you mean --reject?" in pair.stderr
    for result in (task, option, own, pair):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert run_cli("jobs", "list", "--json").stdout.strip() in ("[]", "")

    store, api = _did_you_mean_api(fixtures_only_registry, tmp_path)
    with api:
        bad_task = api.post("/v1/jobs", json={"task": "fixtures.ecoh", "items": [{"text": "a"}]})
        bad_param = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "a"}],
                                               "params": {"slep": 1}})
        predicted = api.post("/v1/predict", json={"task": "fixtures.echo", "items": [{"text": "a"}],
                                                  "params": {"rejct": "a"}})
        for response, expected in ((bad_task, "did you mean fixtures.echo?"), (bad_param, "did you mean sleep?"),
                                   (predicted, "did you mean reject?")):
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert expected in response.json()["detail"] and "--" not in response.json()["detail"]
        assert store.list_jobs() == []

        remote = Client("http://testserver")
        remote._backend.http = api  # the SDK's HTTP client over the app: its own error mapping is under test
        with pytest.raises(VerticalsError, match=r"did you mean fixtures\.echo\?"):
            remote.submit("fixtures.ecoh", items=[{"text": "a"}])
        with pytest.raises(VerticalsError, match=r"did you mean sleep\?"):
            remote.submit("fixtures.echo", items=[{"text": "a"}], params={"slep": 1})

    with Client() as local:
        with pytest.raises(VerticalsError, match=r"did you mean fixtures\.echo\?"):
            local.submit("fixtures.ecoh", items=[{"text": "a"}])
        with pytest.raises(VerticalsError, match=r"did you mean sleep\?"):
            local.submit("fixtures.echo", items=[{"text": "a"}], params={"slep": 1})
        assert local.jobs() == []


def test_every_hookspec_is_documented():
    """The datasette habit: a hook missing from docs/plugins.md fails the build."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `?(\w+)\(", docs, flags=re.M))
    specs = {name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(fn, "verticals_spec")}
    assert specs, "no hookspecs found"
    assert specs - documented == set(), f"undocumented hooks: {specs - documented}"
    assert documented - specs == set(), f"docs describe hooks that do not exist: {documented - specs}"


def test_discovering_plugins_imports_no_heavy_library():
    """`verticals jobs status` must not pay for torch/spaCy imports: plugins import those lazily."""
    import subprocess
    import sys

    code = ("import sys; from verticals.registry import build_registry; r = build_registry(); "
            "print(','.join(m for m in ('torch', 'transformers', 'spacy', 'presidio_analyzer', 'medspacy') "
            "if m in sys.modules)); print(','.join(sorted(n for n, p in r.plugins.items() if p.status == 'loaded')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, loaded = result.stdout.splitlines()
    assert "finance" in loaded
    assert heavy == "", f"importing the plugins pulled in {heavy}"
