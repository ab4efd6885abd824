"""finance.sentiment explanations: token contributions, integrated gradients and occlusion for the predicted label.

The algorithm on a transparent classifier (fast), then its content with the real packaged model (slow):
deleting the top evidence words of a confidently negative headline lowers its negative probability, and more
than deleting its weakest words does, whichever the method."""

from __future__ import annotations

import numpy as np
import pytest
from verticals_finance.sentiment import (
    SentimentInput,
    SentimentTask,
    contribution_weights,
    delete_span,
    occlusion_explanations,
    word_units,
)

from verticals import RunContext
from verticals.contract import check_explanation


class CountingClassifier:
    """A transparent classifier: P(negative) grows with the words 'loss' and 'cut', P(positive) with 'beat'."""

    labels = ["positive", "negative", "neutral"]
    kind = "sequence-classifier"  # a verticals.Classifier: spec (set by a test that runs it), provenance, classify

    def __init__(self) -> None:
        self.calls: list[int] = []

    def provenance(self):
        return {}

    def classify(self, texts):
        self.calls.append(len(texts))
        rows = []
        for text in texts:
            words = text.lower().split()
            logits = np.array([2.0 * words.count("beat"), 2.0 * words.count("loss") + 1.0 * words.count("cut"), 0.5])
            rows.append(np.exp(logits) / np.exp(logits).sum())
        return np.array(rows, dtype=np.float32)


def test_occlusion_weighs_each_word_by_the_drop_of_the_label_in_one_call():
    model = CountingClassifier()
    texts = ["  Bank posts loss and cut jobs", "Profit beat estimates"]
    explanations = occlusion_explanations(model, texts, ["negative", "positive"])
    assert model.calls == [1 + 6 + 1 + 3]  # every text and every variant of the batch in one call
    first = explanations[0]
    assert first is not None and first.method == "occlusion" and first.target == "P(negative)"
    words = [e.text for e in first.evidence]
    assert words[:2] == ["loss", "cut"]  # strongest first
    assert all(e.weight == 0 for e in first.evidence[2:])
    assert first.evidence[0].start == 13  # offsets into the text as given (leading spaces kept)
    assert check_explanation(first, SentimentInput(text=texts[0]), "text") == first
    assert first.summary.startswith("negative 0.") and '"loss" (+0.' in first.summary
    assert explanations[1].evidence[0].text == "beat"


def test_words_long_texts_and_deletion():
    text = "$AAPL rose 5% to $190.5, Q3's best."
    assert [text[a:b] for a, b in word_units(text)] == ["$AAPL", "rose", "5%", "to", "$190.5", "Q3's", "best"]
    long = " ".join(f"w{i}" for i in range(100))
    units = word_units(long, max_units=10)
    assert len(units) == 10 and long[units[0][0]:units[0][1]] == "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"
    assert delete_span("Profit fell sharply", 7, 11) == "Profit sharply"
    assert delete_span("fell sharply", 0, 4) == "sharply"


@pytest.fixture(scope="module")
def classifier():
    from verticals.core.models.host import ModelHost
    from verticals.registry import build_registry

    return ModelHost(build_registry().models).get("finance.sentiment")


def test_contribution_weights_contrast_the_label_and_average_a_words_tokens():
    text = "Revenue slumped badly"
    offsets = [(0, 0), (0, 7), (8, 11), (11, 15), (16, 21), (0, 0)]  # [CLS] Revenue slum ##ped badly [SEP]
    rows = np.array([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1], [0.0, 2.0, 0.0], [1.0, 3.0, 1.0], [0.0, 0.5, -0.5],
                     [9.0, 9.0, 9.0]])
    (weights,) = contribution_weights([(rows, offsets)], [1], [word_units(text)])
    # negative minus the mean of the others, averaged over a word's tokens; special tokens count for nothing
    assert weights == pytest.approx([0.0, (2.0 + 2.0) / 2, 0.5 - (0.0 - 0.5) / 2])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["auto", "token-contributions", "integrated-gradients", "occlusion"])
def test_deleting_the_top_evidence_words_lowers_the_negative_probability(classifier, method):
    from verticals.core.models.metering import Meter, metering

    task = SentimentTask()
    text = "The airline warned of a wider loss as fuel costs soared."
    item = SentimentInput(text=text)
    ctx = RunContext("t", SentimentTask.Params(explain_method=method), explain=True)
    with metering(Meter()) as meter:
        output = task.run([item], {"classifier": classifier}, ctx)[0]
        assert output.label == "negative" and output.score > 0.9  # confidently negative
        explanation = task.explain([item], [output], {"classifier": classifier}, ctx)[0]
    (use,) = meter.models.values()
    # token contributions and (this head's) integrated gradients ride on the prediction's one model call
    assert use.calls == (2 if method == "occlusion" else 1)
    assert explanation.method == ("integrated-gradients" if method == "auto" else method)
    assert check_explanation(explanation, item, "text") == explanation
    words = [e for e in explanation.evidence if e.kind == "word"]
    top = sorted(words, key=lambda e: -e.weight)[:3]
    bottom = sorted(words, key=lambda e: e.weight)[:3]
    assert all(e.text and e.text in explanation.summary for e in top)

    def without(evidence):
        kept = text
        for e in sorted(evidence, key=lambda e: -e.start):
            kept = delete_span(kept, e.start, e.end)
        return float(classifier.classify([kept])[0][classifier.labels.index("negative")])

    base = output.probabilities["negative"]
    assert without(top) < base - 0.2  # the evidence carries the label
    assert without(top) < without(bottom)  # and more than the weakest words do


def test_integrated_gradients_is_refused_where_there_are_no_gradients():
    from verticals import ItemError

    task = SentimentTask()
    item = SentimentInput(text="Profit beat estimates")
    ctx = RunContext("t", SentimentTask.Params(explain_method="integrated-gradients"), explain=True)
    model = CountingClassifier()  # as an ONNX variant: classify only
    model.spec = type("Spec", (), {"name": "finance.sentiment"})()
    model.runtime_label = "onnxruntime"
    output = task.run([item], {"classifier": model}, ctx)[0]
    with pytest.raises(ItemError, match=r"needs the PyTorch path.*onnxruntime.*use occlusion"):
        task.explain([item], [output], {"classifier": model}, ctx)
    ctx = RunContext("t", SentimentTask.Params(explain_method="token-contributions"), explain=True)
    output = task.run([item], {"classifier": model}, ctx)[0]
    with pytest.raises(ItemError, match=r"token-contributions needs a linear head.*onnxruntime.*use occlusion"):
        task.explain([item], [output], {"classifier": model}, ctx)
    auto = RunContext("t", SentimentTask.Params(), explain=True)  # auto: occlusion, which any runtime serves
    output = task.run([item], {"classifier": model}, auto)[0]
    assert auto.extra == {} and model.calls == [1, 1, 1]  # run classified; nothing kept for explain
    assert task.explain([item], [output], {"classifier": model}, auto)[0].method == "occlusion"


@pytest.mark.slow
def test_integrated_gradients_add_up_to_the_probability_gained_from_the_baseline(classifier):
    assert classifier.can_integrate_gradients
    text = "Brightwater Foods lifts full-year outlook after record holiday pre-orders"
    positive = classifier.labels.index("positive")
    # the quadrature's error depends on how sharply the model's probability turns along the path (the shipped
    # model goes 0.0001 -> 0.998 on this headline: 0.62 off at 16 steps, 0.10 at 32, 0.0005 at 64)
    (scores, offsets), = classifier.integrated_gradients([text], [positive], steps=64)
    assert len(scores) == len(offsets) and offsets[0] == (0, 0)  # [CLS]
    p = float(classifier.classify([text])[0][positive])
    encoded = classifier.tokenizer([text], return_special_tokens_mask=True)
    import torch

    baseline_ids = [[t if s else classifier.tokenizer.pad_token_id for t, s in
                     zip(encoded["input_ids"][0], encoded["special_tokens_mask"][0], strict=True)]]
    with torch.no_grad():
        ids = torch.tensor(baseline_ids)
        embeddings = classifier._embedding_model().get_input_embeddings()(ids)
        p0 = float(classifier._probabilities_from_embeddings(embeddings, torch.ones_like(ids))[0][positive])
    assert abs(float(scores.sum()) - (p - p0)) < 0.02  # completeness
    from verticals.core.models.metering import Meter, metering

    with metering(Meter()) as meter:  # a job's usage counts the explanation's model work too
        classifier.integrated_gradients([text], [positive], steps=2)
    (use,) = meter.models.values()
    assert use.calls == 1 and use.tokens == 2 * len(offsets)
    task = SentimentTask()
    item = SentimentInput(text=text)
    ctx = RunContext("t", SentimentTask.Params(explain_method="integrated-gradients"), explain=True)
    output = task.run([item], {"classifier": classifier}, ctx)[0]
    explanation = task.explain([item], [output], {"classifier": classifier}, ctx)[0]
    assert explanation.method == "integrated-gradients" and explanation.evidence[0].text == "lifts"
    assert check_explanation(explanation, item, "text") == explanation
