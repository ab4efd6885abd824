"""Model specs, resolution order, the model host cache, and token-budget batching."""

from __future__ import annotations

import random

import numpy as np
import pytest

from verticals.builtin import MINILM
from verticals.core.models.batching import map_in_batches, token_budget_batches
from verticals.core.models.host import ModelHost, ModelSpec, ModelUnavailable, Packaged, locate_packaged, resolve


@pytest.fixture
def minilm_dir():
    return locate_packaged(MINILM.packaged)


def test_packaged_fallback_when_hub_is_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = resolve(MINILM)
    assert source.kind == "packaged"
    assert (source.path / "config.json").exists()
    assert source.revision  # the shipping package's version is the revision


def test_local_path_beats_hub_and_packaged(minilm_dir):
    spec = ModelSpec(name="m", kind="encoder", local_path=str(minilm_dir), hub_id="org/none",
                     packaged=Packaged("not_installed_pkg"))
    assert resolve(spec).kind == "local"


def test_override_beats_everything(minilm_dir):
    spec = ModelSpec(name="m", kind="encoder", local_path="/does/not/exist", packaged=MINILM.packaged)
    source = resolve(spec, override=str(minilm_dir))
    assert source.kind == "override"
    assert source.path == minilm_dir.resolve()


def test_failing_override_is_an_error_not_a_silent_fallback(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="override"):
        resolve(MINILM, override="/nowhere/at/all")


def test_override_from_environment(monkeypatch, minilm_dir):
    monkeypatch.setenv("VERTICALS_MODELS", f"minilm={minilm_dir}")
    host = ModelHost({"minilm": MINILM})
    assert host.resolve("minilm").kind == "override"


def test_clear_error_names_every_source_tried(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = ModelSpec(name="ghost", kind="encoder", local_path="/no/such/dir", hub_id="org/ghost-model",
                     packaged=Packaged("no_such_weights_pkg", "model"))
    with pytest.raises(ModelUnavailable) as caught:
        resolve(spec)
    message = str(caught.value)
    assert "/no/such/dir" in message and "org/ghost-model" in message and "no_such_weights_pkg" in message
    assert "HF_HUB_OFFLINE" in message and "VERTICALS_MODELS" in message
    assert len(caught.value.attempts) == 3


def test_spec_without_source_is_rejected():
    with pytest.raises(ValueError, match="names no source"):
        ModelSpec(name="x", kind="encoder")
    with pytest.raises(ValueError, match="unknown kind"):
        ModelSpec(name="x", kind="vision", hub_id="a/b")


def test_token_budget_batches_respect_budget_and_cover_every_item():
    rng = random.Random(0)
    lengths = [rng.randint(1, 200) for _ in range(500)]
    batches = token_budget_batches(lengths, max_tokens=1000, max_batch_size=64)
    seen = sorted(i for batch in batches for i in batch)
    assert seen == list(range(500))
    for batch in batches:
        assert len(batch) <= 64
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 1000
    # longest first, and sorted batches pad far less than input-order batches would
    assert max(lengths[i] for i in batches[0]) == max(lengths)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    naive = sum(len(lengths[i:i + 8]) * max(lengths[i:i + 8]) for i in range(0, 500, 8))
    assert padded < naive


def test_oversized_item_gets_a_batch_of_its_own():
    batches = token_budget_batches([5000, 3, 3], max_tokens=100)
    assert [0] in batches


def test_map_in_batches_restores_input_order():
    items = [f"item-{i}" * (i % 7 + 1) for i in range(100)]
    result = map_in_batches(items, [len(x) for x in items], lambda batch: [x.upper() for x in batch], max_tokens=64)
    assert result == [x.upper() for x in items]


@pytest.mark.slow
def test_host_loads_once_and_embeddings_do_not_depend_on_batching(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # fp32: padding must not change a text's embedding. (On a CPU with native bf16, e.g. AMX, the host's
    # default is bf16 autocast, whose rounding differs by batch shape at about 1e-3.)
    monkeypatch.setenv("VERTICALS_PRECISION", "fp32")
    host = ModelHost({"minilm": MINILM})
    encoder = host.get("minilm")
    assert host.get("minilm") is encoder  # one copy per process
    texts = ["Shares rose.", "The central bank held rates steady for a third meeting in a row, citing sticky "
             "services inflation and a cooling labour market.", "Guidance cut.", "Dividend raised by 8%."]
    together = encoder.embed(texts)
    alone = np.stack([encoder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert together.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    provenance = encoder.provenance()
    assert provenance["source"] == "packaged" and provenance["model"] == "minilm"


@pytest.mark.slow
def test_lru_budget_evicts_least_recently_used(monkeypatch, minilm_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    specs = {"a": ModelSpec(name="a", kind="encoder", local_path=str(minilm_dir)),
             "b": ModelSpec(name="b", kind="encoder", local_path=str(minilm_dir))}
    host = ModelHost(specs, memory_budget_mb=120)  # MiniLM is ~87 MB in fp32: only one fits
    host.get("a")
    host.get("b")
    assert host.loaded() == ["b"]


@pytest.mark.slow
def test_seeded_sampling_is_reproducible_and_leaves_the_process_random_state_alone():
    """A seeded generate() draws from a fork of torch's generators: the same seed gives the same text, and
    the embedding process's own random stream goes on as if nothing had been drawn."""
    import torch

    from verticals.builtin import SMOLLM2

    model = ModelHost({"smollm2": SMOLLM2}).get("smollm2")
    torch.manual_seed(1234)
    expected_next = torch.rand(3)
    torch.manual_seed(1234)
    first = model.generate(["Say a word."], max_new_tokens=6, temperature=1.0, seed=7)
    again = model.generate(["Say a word."], max_new_tokens=6, temperature=1.0, seed=7)
    assert first == again
    assert torch.equal(torch.rand(3), expected_next)


def test_the_network_never_decides_which_model_answers(monkeypatch, tmp_path):
    """Online (a hub that would serve any id) and offline, every registered spec that installed weights serve
    resolves to those same weights: a default run never downloads a different model than `make demo` serves."""
    from verticals.core.models import sources
    from verticals.registry import build_registry

    registry = build_registry()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = {name: resolve(spec) for name, spec in registry.models.items()}
    asked: list[str] = []

    def online_hub(repo_id, revision, gguf_file):
        asked.append(repo_id)
        return tmp_path, "0" * 40

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(sources, "_from_hub", online_hub)
    online = {name: resolve(spec) for name, spec in registry.models.items()}
    assert {name: (s.kind, s.reference) for name, s in online.items()} == {
        name: (s.kind, s.reference) for name, s in offline.items()}
    assert {s.kind for s in online.values()} == {"packaged"} and asked == []
    assert registry.models["finance.sentiment"].hub_id is None  # no hub model that answers differently
    # asking for a hub model is an override, and only then is the hub asked
    assert resolve(registry.models["finance.sentiment"], override="ProsusAI/finbert").kind == "override"
    assert asked == ["ProsusAI/finbert"]
    hub_only = ModelSpec(name="h", kind="encoder", hub_id="org/only-on-the-hub")
    assert resolve(hub_only).kind == "hub"  # nothing installed serves it: the hub may
