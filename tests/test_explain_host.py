"""The model host's attributions for a linear head over mean-pooled token states (issue 29): token contributions
read from the prediction's own forward pass add up to the head's logits exactly, and layer integrated gradients
ride on the prediction's pass; both give the same probabilities as ``classify``, with the head's LoRA adapter
served merged or through the hooks. A 2-layer random BERT behind the packaged MiniLM tokenizer (fast); and on an
ONNX variant of the packaged head, finance.sentiment falls back to occlusion or says why not (slow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import test_lora_merge, test_runtimes
from tests.test_lora_merge import TEXTS, _write_adapter
from verticals.contract import AttributingClassifier, ModelSpec
from verticals.core.models.inference import EncoderHeadClassifier, mean_pool
from verticals.core.models.metering import Meter, metering
from verticals.core.models.sources import ResolvedSource

LABELS = ["positive", "negative", "neutral"]
tiny_encoder = test_lora_merge.tiny_encoder  # the fixture: a 2-layer random BERT with the MiniLM tokenizer
built = test_runtimes.built  # the fixture: the packaged finance head on PyTorch and its ONNX variants (slow)
ONNX_SPEC = test_runtimes.SPEC


def _head(encoder, tmp_path, normalize: bool, adapter: bool = True) -> EncoderHeadClassifier:
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(len(LABELS), encoder.dimension, generator=generator)
    bias = torch.tensor([0.3, -0.2, 0.1])
    key = None
    if adapter:
        key = "head:tiny"
        encoder.add_adapter(key, _write_adapter(tmp_path / "adapter", encoder.model))
    spec = ModelSpec(name="tiny-head", kind="sequence-classifier", local_path=str(tmp_path), max_length=64)
    config = {"encoder": "tiny", "labels": LABELS, "normalize": normalize}
    return EncoderHeadClassifier(spec, ResolvedSource("local", tmp_path, "tiny-head"), encoder, config, weight, bias,
                                 key)


@pytest.mark.parametrize("normalize", [False, True])
def test_token_contributions_add_up_to_the_logits_the_prediction_came_from(tiny_encoder, tmp_path, normalize):
    head = _head(tiny_encoder, tmp_path, normalize)
    assert isinstance(head, AttributingClassifier) and head.can_decompose and head.can_layer_gradients
    with metering(Meter()) as meter:
        probabilities, shares = head.classify_with_contributions(TEXTS)
    (use,) = meter.models.values()
    assert use.calls == 1  # one model call: the prediction and its contributions
    reference = head.classify(TEXTS)  # the merged adapter (the encoder's only one)
    assert tiny_encoder.adapter_mode(head.adapter) == "merged"
    np.testing.assert_allclose(probabilities, reference, atol=1e-6)
    for text, row, (rows, offsets) in zip(TEXTS, reference, shares, strict=True):
        assert rows.shape == (len(offsets), len(LABELS)) and offsets[0] == (0, 0)  # [CLS]
        assert text[offsets[1][0]:offsets[1][1]].lower() == head.tokenizer.tokenize(text)[0].lstrip("#")
        logits = rows.sum(0) + head.bias  # exact: logit_c = sum_i W_c . h_i / (n * norm) + b_c
        np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(), row, atol=1e-5)
    # one token's share is that token's state through the head, over n (and the norm of the mean)
    encoded = head.tokenizer([TEXTS[0]], truncation=True, max_length=64)
    states: list[torch.Tensor] = []
    tiny_encoder.hidden_states({k: encoded[k] for k in encoded}, head.adapter, lambda b, h, m: states.append(h[0]))
    n = states[0].shape[0]
    scale = n * (float(mean_pool(states[0][None], torch.ones(1, n)).norm()) if normalize else 1.0)
    np.testing.assert_allclose(shares[0][0][3], (states[0][3] @ torch.from_numpy(head.weight).T).numpy() / scale,
                               rtol=1e-4, atol=1e-6)
    tiny_encoder.use_hooks(head.adapter)  # the adapter through the forward hooks: the same figures
    hooked, again = head.classify_with_contributions(TEXTS)
    np.testing.assert_allclose(hooked, probabilities, atol=1e-5)
    np.testing.assert_allclose(again[1][0], shares[1][0], atol=1e-5)


def test_layer_integrated_gradients_ride_on_the_prediction_and_add_up(tiny_encoder, tmp_path):
    head = _head(tiny_encoder, tmp_path, normalize=False)
    reference = head.classify(TEXTS)
    with metering(Meter()) as meter:
        probabilities, attributions = head.classify_with_gradients(TEXTS, steps=64)
    (use,) = meter.models.values()
    assert use.calls == 1
    np.testing.assert_allclose(probabilities, reference, atol=1e-6)
    target = reference.argmax(1)
    # completeness: the attributions at the last layer's input add up to P(text) - P(baseline), the baseline
    # being the text's special tokens with pad tokens between them, run through the same layers
    pad = head.tokenizer.pad_token_id
    encoded = head.tokenizer(TEXTS, truncation=True, max_length=64, return_special_tokens_mask=True)
    baseline = {"input_ids": [[t if s else pad for t, s in zip(ids, special, strict=True)] for ids, special in
                              zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True)],
                "attention_mask": encoded["attention_mask"]}
    p0 = np.zeros_like(reference)

    def read(batch, hidden, mask):
        p0[batch] = torch.softmax(mean_pool(hidden, mask) @ torch.from_numpy(head.weight).T
                                  + torch.from_numpy(head.bias), -1).numpy()

    tiny_encoder.hidden_states(baseline, head.adapter, read)
    for i, (scores, offsets) in enumerate(attributions):
        assert len(scores) == len(offsets) == len(encoded["input_ids"][i])
        gained = reference[i, target[i]] - p0[i, target[i]]
        assert abs(gained) > 0.01 and abs(float(scores.sum()) - gained) < 0.002  # 64 steps: a small Riemann error


def test_a_model_without_the_capability_says_so(tiny_encoder, tmp_path):
    head = _head(tiny_encoder, tmp_path, normalize=False, adapter=False)
    head.config["inputs"] = "pair"  # a pair head: its shares would mix two texts
    assert not head.can_decompose and not head.can_layer_gradients
    with pytest.raises(RuntimeError, match="single texts"):
        head.classify_with_contributions(TEXTS)
    with pytest.raises(RuntimeError, match="single texts"):
        head.classify_with_gradients(TEXTS)


@pytest.mark.slow
def test_explanations_on_an_onnx_variant_fall_back_to_occlusion_or_say_why_not(built):
    """An ONNX graph returns logits only: finance.sentiment's auto explanation falls back to occlusion, and a
    method that needs the token states or gradients fails the item with a message naming the runtime."""
    from verticals_finance.sentiment import SentimentInput, SentimentTask

    from verticals import ItemError, RunContext

    onnx = test_runtimes._host(built, runtimes={ONNX_SPEC: built.fp32}).get(ONNX_SPEC)
    assert not (onnx.can_decompose or onnx.can_layer_gradients or onnx.can_integrate_gradients)
    assert built.model.can_decompose and built.model.can_layer_gradients  # the same head on PyTorch
    task, items = SentimentTask(), [SentimentInput(text=text) for text in test_runtimes.TEXTS[:2]]
    auto = RunContext("t", SentimentTask.Params(), explain=True)
    outputs = task.run(items, {"classifier": onnx}, auto)
    explanations = task.explain(items, outputs, {"classifier": onnx}, auto)
    assert [e.method for e in explanations] == ["occlusion", "occlusion"]
    for method in ("token-contributions", "integrated-gradients"):
        ctx = RunContext("t", SentimentTask.Params(explain_method=method), explain=True)
        outputs = task.run(items, {"classifier": onnx}, ctx)
        with pytest.raises(ItemError, match=f"{method} needs .*onnxruntime.*use occlusion"):
            task.explain(items, outputs, {"classifier": onnx}, ctx)
