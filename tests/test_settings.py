"""Settings: every VERTICALS_* variable is documented (like datasette's tests/test_docs.py), bad values are
clear errors, the environment is read at call time; and verticals leaves process-wide state alone.

Documentation rule: every ``Settings`` field and every ``VERTICALS_*`` name read anywhere in ``verticals/``
appears in docs/configuration.md; so do the settings of the bundled plugins (``plugins/*/verticals_*/`` and their
research scripts, ``plugins/*/research/``),
in its "Plugin settings" table (a plugin's README may document them as well, but this page names them all).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from verticals.config import PREFIX, Settings, SettingsError, data_dir, database_url, env_name, max_attempts, settings

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
NAME = re.compile(r"\bVERTICALS_[A-Z0-9_]*[A-Z0-9]\b")  # a fragment such as VERTICALS_JAIL_MAX_* is no name
NOT_VARIABLES = {"VERTICALS_REQUIRES": "a plugin module's attribute (the versions it supports), docs/plugins.md"}


def _names_in(folders: list[Path], base: Path = ROOT) -> dict[str, set[str]]:
    """Every VERTICALS_* name in the text files under ``folders``, with the files that use it."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in {".pyc", ".so", ".safetensors"}:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for name in NAME.findall(text):
                if name not in NOT_VARIABLES:
                    found.setdefault(name, set()).add(str(path.relative_to(base)))
    return found


def _core_names() -> dict[str, set[str]]:
    return _names_in([ROOT / "verticals"])


def _plugin_names() -> dict[str, set[str]]:
    return _names_in(sorted([*(ROOT / "plugins").glob("*/verticals_*"), *(ROOT / "plugins").glob("*/research")]))


def _documented() -> set[str]:
    return set(NAME.findall(DOC.read_text(encoding="utf-8")))


def _doc_rows() -> dict[str, list[str]]:
    """The table rows of docs/configuration.md by variable: ``| `VERTICALS_X` | cell | cell |``."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and re.fullmatch(r"`VERTICALS_[A-Z0-9_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


# -- the documentation test ---------------------------------------------------------------------------

def test_every_setting_field_is_documented_with_its_default():
    rows = _doc_rows()
    missing = [env_name(field) for field in Settings.model_fields if env_name(field) not in rows]
    assert not missing, f"settings missing from a table of docs/configuration.md: {', '.join(missing)}"
    wrong = []
    for field, info in Settings.model_fields.items():
        default = info.default
        if default is None:
            continue
        cell = rows[env_name(field)][0]
        if isinstance(default, bool):
            shown, ok = ("on" if default else "off"), cell.startswith("on" if default else "off")
        else:
            shown = str(int(default)) if isinstance(default, float) and default.is_integer() else str(default)
            ok = f"`{shown}`" in cell
        if not ok:
            wrong.append(f"{env_name(field)} (default {shown}, documented {cell!r})")
    assert not wrong, "docs/configuration.md states a wrong default: " + "; ".join(wrong)


def test_every_variable_the_code_reads_is_documented():
    documented = _documented()
    names = {**_plugin_names(), **_core_names()}
    missing = sorted(f"{name} (in {', '.join(sorted(files))})" for name, files in names.items()
                     if name not in documented)
    assert not missing, "VERTICALS_* names used in the code but not in docs/configuration.md: " + "; ".join(missing)


def test_the_documentation_names_no_variable_that_does_not_exist():
    known = {env_name(field) for field in Settings.model_fields} | set(_plugin_names()) | set(_core_names())
    stale = sorted(_documented() - known - set(NOT_VARIABLES))
    assert not stale, f"docs/configuration.md documents variables nothing reads: {', '.join(stale)}"


def test_every_core_variable_is_a_setting():
    """The core reads no VERTICALS_* variable outside Settings (plugin settings are the plugins' own)."""
    fields = {env_name(field) for field in Settings.model_fields}
    plugin_only = set(_plugin_names()) - fields
    stray = sorted(set(_core_names()) - fields - plugin_only)
    assert not stray, f"VERTICALS_* names in verticals/ that are not Settings fields: {', '.join(stray)}"


def test_every_setting_has_a_description():
    assert [field for field, info in Settings.model_fields.items() if not (info.description or "").strip()] == []


def test_the_rule_catches_an_undocumented_name(tmp_path):
    """The scan finds a name in code, so a new undocumented setting would fail the tests above."""
    (tmp_path / "module.py").write_text('os.environ.get("VERTICALS_NOT_DOCUMENTED_ANYWHERE")\n')
    (tmp_path / "other.py").write_text('prefix = "VERTICALS_JAIL_MAX_"\nclass_attr = "VERTICALS_REQUIRES"\n')
    found = _names_in([tmp_path], base=tmp_path)
    assert found == {"VERTICALS_NOT_DOCUMENTED_ANYWHERE": {"module.py"}}
    assert "VERTICALS_NOT_DOCUMENTED_ANYWHERE" not in _documented()


# -- validation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("variable", "value", "message"), [
    ("VERTICALS_MAX_ATTEMPTS", "x", "VERTICALS_MAX_ATTEMPTS must be an integer >= 1, got 'x'"),
    ("VERTICALS_MAX_ATTEMPTS", "0", "VERTICALS_MAX_ATTEMPTS must be an integer >= 1, got '0'"),
    ("VERTICALS_STRICT_PLUGINS", "maybe", "VERTICALS_STRICT_PLUGINS must be a boolean (1/0, true/false, yes/no, "
                                          "on/off), got 'maybe'"),
    ("VERTICALS_PRECISION", "fp8", "VERTICALS_PRECISION must be one of auto, fp32, bf16, fp16, got 'fp8'"),
    ("VERTICALS_DEVICE", "gpu", "VERTICALS_DEVICE must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("VERTICALS_WEBHOOK_POLL_S", "0", "VERTICALS_WEBHOOK_POLL_S must be a number > 0, got '0'"),
    ("VERTICALS_MODEL_MEMORY_MB", "lots", "VERTICALS_MODEL_MEMORY_MB must be a number >= 0, got 'lots'"),
    ("VERTICALS_JAIL_UID", "0", "VERTICALS_JAIL_UID must be an integer >= 1, got '0'"),
])
def test_a_bad_value_names_the_variable_what_it_takes_and_what_it_got(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        settings()
    assert str(raised.value) == message
    with pytest.raises(SettingsError):
        max_attempts()  # every reader of the settings refuses, not only the one of the bad variable


def test_every_bad_variable_is_named_in_one_error(monkeypatch):
    monkeypatch.setenv("VERTICALS_API_THREADS", "many")
    monkeypatch.setenv("VERTICALS_PRELOAD", "sometimes")
    with pytest.raises(SettingsError) as raised:
        settings()
    problems = sorted(str(raised.value).split("; "))
    assert problems == ["VERTICALS_API_THREADS must be an integer >= 1, got 'many'",
                        "VERTICALS_PRELOAD must be a boolean (1/0, true/false, yes/no, on/off), got 'sometimes'"]


def test_secret_values_are_not_shown(monkeypatch):
    monkeypatch.setenv("VERTICALS_SECRET_KEY", "very-secret-value")
    monkeypatch.setenv("VERTICALS_API_KEY", "another-secret")
    current = settings()
    assert current.secret_key is not None and current.secret_key.get_secret_value() == "very-secret-value"
    assert "very-secret-value" not in repr(current) and "another-secret" not in str(current)


def test_values_are_typed_and_normalised(monkeypatch, tmp_path):
    monkeypatch.setenv("VERTICALS_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("VERTICALS_STRICT_PLUGINS", "Yes")
    monkeypatch.setenv("VERTICALS_DEVICE", " CUDA:1 ")
    monkeypatch.setenv("VERTICALS_MODEL_MEMORY_MB", "1.5e3")
    monkeypatch.setenv("VERTICALS_MODEL_STORE", str(tmp_path / "store"))
    current = settings()
    assert (current.max_attempts, current.strict_plugins, current.device) == (5, True, "cuda:1")
    assert current.model_memory_mb == 1500.0 and current.model_store == tmp_path / "store"


def test_empty_means_unset_except_for_the_plugin_allowlist(monkeypatch):
    for variable in ("VERTICALS_MAX_ATTEMPTS", "VERTICALS_DEVICE", "VERTICALS_BROKER_URL", "VERTICALS_SECRET_KEY"):
        monkeypatch.setenv(variable, "")
    current = settings()
    assert (current.max_attempts, current.device, current.broker_url, current.secret_key) == (3, "auto", None, None)
    assert current.plugin_allowlist is None  # unset: every plugin
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "")
    assert settings().plugin_allowlist == set()  # empty: none
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", " finance, tutor ,")
    assert settings().plugin_allowlist == {"finance", "tutor"}


def test_other_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("VERTICALS_SOMETHING_ELSE", "x")  # e.g. a plugin's own setting
    assert settings().max_attempts == 3


def test_the_environment_is_read_at_call_time(monkeypatch, isolated_home):
    assert settings().max_attempts == 3 and max_attempts() == 3
    monkeypatch.setenv("VERTICALS_MAX_ATTEMPTS", "7")
    assert settings().max_attempts == 7 and max_attempts() == 7
    monkeypatch.setenv("VERTICALS_MAX_ATTEMPTS", "x")
    with pytest.raises(SettingsError):
        settings()
    monkeypatch.delenv("VERTICALS_MAX_ATTEMPTS")
    assert settings().max_attempts == 3
    assert settings() is settings()  # reused while the environment is unchanged (frozen, so safe to share)
    assert data_dir() == isolated_home / "home" and data_dir().is_dir()
    monkeypatch.delenv("VERTICALS_DATABASE_URL")
    assert database_url() == f"sqlite:///{isolated_home / 'home' / 'verticals.db'}"


def test_settings_are_immutable():
    with pytest.raises(ValueError, match="frozen"):
        settings().max_attempts = 9  # type: ignore[misc]


# -- readers switched to the settings ----------------------------------------------------------------------

def test_the_jail_refuses_on_a_bad_setting_and_clamps_at_the_configured_maxima(monkeypatch):
    from verticals.jail import JailLimits, JailUnavailable, jail_uid

    monkeypatch.setenv("VERTICALS_JAIL_MAX_MEMORY_MB", "1024")
    monkeypatch.setenv("VERTICALS_JAIL_MAX_WALL_SECONDS", "2.5")
    limits = JailLimits(memory_mb=2048, wall_seconds=90.0, processes=10).clamped()
    assert (limits.memory_mb, limits.wall_seconds, limits.processes) == (1024, 2.5, 10)
    monkeypatch.setenv("VERTICALS_JAIL_UID", "1234")
    assert jail_uid() == 1234
    monkeypatch.setenv("VERTICALS_JAIL_UID", "0")
    with pytest.raises(JailUnavailable, match=r"VERTICALS_JAIL_UID must be an integer >= 1, got '0'"):
        jail_uid()
    monkeypatch.delenv("VERTICALS_JAIL_UID")
    monkeypatch.setenv("VERTICALS_JAIL_MAX_TMP_MB", "big")
    with pytest.raises(JailUnavailable, match="VERTICALS_JAIL_MAX_TMP_MB"):
        JailLimits().clamped()


def test_the_standalone_jail_reads_the_same_variables_with_the_same_defaults(tmp_path):
    """jail.py loaded by path without the verticals package (tests/jail_runner.py's case) agrees with Settings."""
    from verticals import jail

    fields = Settings.model_fields
    assert {name: fields[name].default for name in jail.STANDALONE_DEFAULTS} == jail.STANDALONE_DEFAULTS
    assert set(jail.JailLimits.MAXIMA.values()) | {"jail_uid", "jail_cgroup"} == set(jail.STANDALONE_DEFAULTS)
    script = f"""
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("jail_alone", {str(Path(jail.__file__))!r})
module = importlib.util.module_from_spec(spec); sys.modules["jail_alone"] = module; spec.loader.exec_module(module)
assert "verticals" not in sys.modules
out = {{"uid": module.jail_uid(), "memory": module.JailLimits(memory_mb=9999).clamped().memory_mb}}
os.environ["VERTICALS_JAIL_MAX_TMP_MB"] = "big"
try:
    module.JailLimits().clamped()
except module.JailUnavailable as error:
    out["error"] = str(error)
print(json.dumps(out))
"""
    # -S -I: no site-packages and no working directory on the path, so `import verticals` fails in the child
    env = {"VERTICALS_JAIL_UID": "4321", "VERTICALS_JAIL_MAX_MEMORY_MB": "", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-S", "-I", "-c", script], capture_output=True, text=True, env=env,
                            timeout=60, check=True)
    out = json.loads(result.stdout)
    assert out == {"uid": 4321, "memory": 4096,
                   "error": "VERTICALS_JAIL_MAX_TMP_MB must be a number > 0, got 'big'"}


def test_device_precision_and_model_store_follow_the_settings(monkeypatch, tmp_path, isolated_home):
    import torch

    from verticals.core.models.device import pick_device, pick_precision
    from verticals.core.models.versions import store_root

    monkeypatch.setenv("VERTICALS_DEVICE", "cpu")
    monkeypatch.setenv("VERTICALS_PRECISION", "fp32")
    assert pick_device() == torch.device("cpu")
    assert pick_precision(torch.device("cpu")).weights == torch.float32
    assert pick_device("meta") == torch.device("meta")  # an explicit preference still wins
    assert store_root() == isolated_home / "home" / "models"
    monkeypatch.setenv("VERTICALS_MODEL_STORE", str(tmp_path / "elsewhere"))
    assert store_root() == tmp_path / "elsewhere"


def test_the_server_key_comes_from_the_settings(monkeypatch, tmp_path):
    from cryptography.fernet import Fernet

    from verticals.core.store.secrets import key_path, server_key

    key = Fernet.generate_key()
    monkeypatch.setenv("VERTICALS_SECRET_KEY", key.decode())
    assert server_key() == key
    monkeypatch.delenv("VERTICALS_SECRET_KEY")
    (tmp_path / "k").write_bytes(Fernet.generate_key() + b"\n")
    monkeypatch.setenv("VERTICALS_SECRET_KEY_FILE", str(tmp_path / "k"))
    assert key_path() == tmp_path / "k" and server_key() == (tmp_path / "k").read_bytes().strip()


# -- process-wide state: training seeds a fork of the global generators ------------------------------------

def test_seeded_is_reproducible_and_gives_the_process_its_generators_back():
    import torch

    from verticals.core.models.training import seeded

    torch.manual_seed(1234)
    random.seed(1234)
    expected_torch, expected_random = torch.rand(4), [random.random() for _ in range(3)]

    torch.manual_seed(1234)
    random.seed(1234)
    with seeded(7):
        first = torch.rand(4), random.random()
    with seeded(7):
        second = torch.rand(4), random.random()
    assert torch.equal(first[0], second[0]) and first[1] == second[1]  # reproducible for a seed
    assert torch.equal(torch.rand(4), expected_torch)  # the process's streams go on as if nothing happened
    assert [random.random() for _ in range(3)] == expected_random


@pytest.mark.slow
def test_training_leaves_the_embedding_process_generators_alone(tmp_path):
    import torch

    from verticals.core.models.training import TrainConfig, train_model
    from verticals.core.models.versions import ModelStore
    from verticals.registry import build_registry

    words = {"positive": "rose gained beat record", "negative": "fell lost missed cut", "neutral": "met held flat said"}
    rows = [{"text": f"Shares {word} in quarter {i}", "label": label}
            for label, text in words.items() for i, word in enumerate(text.split() * 4)]
    torch.manual_seed(99)
    random.seed(99)
    torch_state, random_state = torch.random.get_rng_state(), random.getstate()
    version = train_model(build_registry(), "finance.sentiment", rows, TrainConfig(method="head", seed=3),
                          store=ModelStore(tmp_path))
    assert version.version == "v1"
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert random.getstate() == random_state


def test_prefix():
    assert PREFIX == "VERTICALS_" and env_name("max_attempts") == "VERTICALS_MAX_ATTEMPTS"


# -- one place: the core reads VERTICALS_* variables only through Settings ---------------------------------

# Modules that still read a VERTICALS_* variable directly, while their owners switch them to settings()
# (issue 11). Empty this as they do; a module not listed here that reads one directly fails the test.
PENDING_SWITCH: set[str] = set()  # modules still to switch to settings(): none left
READS_ITS_OWN = {"verticals/config.py": "defines Settings",
                 "verticals/jail.py": "runs standalone too (see test_the_standalone_jail_reads_...)"}


def _direct_reads(path: Path) -> list[str]:
    """``"VERTICALS_X"`` used as a call argument or a read subscript (``os.environ.get("VERTICALS_X")``,
    ``os.environ["VERTICALS_X"]``, ``env_int("VERTICALS_X", 1)``): reads that bypass Settings.
    Writes (``os.environ["VERTICALS_X"] = ...``, for child processes) and messages are not reads."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        candidates = []
        if isinstance(node, ast.Call):
            candidates = [*node.args, *(keyword.value for keyword in node.keywords)]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            candidates = [node.slice]
        for candidate in candidates:
            if isinstance(candidate, ast.Constant) and isinstance(candidate.value, str) \
                    and NAME.fullmatch(candidate.value) and candidate.value not in NOT_VARIABLES:
                found.append(f"{candidate.value} (line {candidate.lineno})")
    return found


def test_the_core_reads_its_settings_only_through_settings():
    offenders = {}
    for path in sorted((ROOT / "verticals").rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        if relative in READS_ITS_OWN or relative in PENDING_SWITCH:
            continue
        reads = _direct_reads(path)
        if reads:
            offenders[relative] = reads
    assert not offenders, f"read these through verticals.config.settings(): {offenders}"


def test_the_direct_read_scan_finds_reads_and_ignores_writes_and_messages(tmp_path):
    source = tmp_path / "module.py"
    source.write_text('import os\nos.environ.get("VERTICALS_A")\nx = os.environ["VERTICALS_B"]\n'
                      'os.environ["VERTICALS_C"] = "1"\nraise ValueError("set VERTICALS_D")\n'
                      'env_int("VERTICALS_E", 1)\n')
    assert _direct_reads(source) == ["VERTICALS_A (line 2)", "VERTICALS_B (line 3)", "VERTICALS_E (line 6)"]
