"""Plugin discovery through real entry points, quarantine, allowlist, version checks, docs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from verticals import hookspecs
from verticals.plugins import PluginError, build_registry


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

    code = ("import sys; from verticals.plugins import build_registry; r = build_registry(); "
            "print(','.join(m for m in ('torch', 'transformers', 'spacy', 'presidio_analyzer', 'medspacy') "
            "if m in sys.modules)); print(','.join(sorted(n for n, p in r.plugins.items() if p.status == 'loaded')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, loaded = result.stdout.splitlines()
    assert "finance" in loaded
    assert heavy == "", f"importing the plugins pulled in {heavy}"
