"""verticals train: pair inputs (a cross-encoder), layer-wise learning-rate decay, several seeds, length grouping.

Mechanics only, on the packaged MiniLM and a few steps: no quality is asserted from so little training.
"""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from tests.conftest import run_cli
from verticals.core.models.host import ModelHost, resolve
from verticals.core.models.training import (
    TrainConfig,
    TrainingError,
    data_hash,
    fixed_split,
    layer_depth,
    length_grouped,
    parameter_groups,
    prepare_rows,
    train_model,
)
from verticals.core.models.versions import ModelStore
from verticals.registry import build_registry

LABELS = ["positive", "negative", "neutral"]
FIRST = ["Quarterly results", "Guidance for the year", "Dividend news", "Analyst view", "Market open"]
SECOND = {"positive": ["Shares jump after record profit", "Upgrade to buy lifts the stock", "Sales beat forecasts"],
          "negative": ["Profit warning sends shares lower", "Downgrade to sell hits the stock", "Sales miss forecasts"],
          "neutral": ["Board meeting moved to Thursday", "AGM set for May", "Company files its annual report"]}


def _pairs(n: int = 45) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        rows.append({"text": FIRST[i % len(FIRST)], "pair": f"{SECOND[label][i % 3]} ({i})", "label": label})
    return rows


TINY = {"max_length": 32, "batch_size": 8, "seed": 5, "max_steps": 2}


def test_prepare_rows_keeps_the_second_text_and_refuses_a_missing_or_empty_one():
    rows = prepare_rows([{"a": " q ", "b": " answer ", "y": "Positive"}, {"a": "q", "b": "x", "y": "neutral"}],
                        text_field="a", label_field="y", labels=LABELS, pair_field="b")
    assert rows == [{"text": "q", "pair": "answer", "label": "positive"},
                    {"text": "q", "pair": "x", "label": "neutral"}]
    with pytest.raises(TrainingError, match="no column 'b'"):
        prepare_rows([{"a": "q", "y": "positive"}], text_field="a", label_field="y", pair_field="b")
    with pytest.raises(TrainingError, match=r"row 2: the second text \('b'\) is empty"):
        prepare_rows([{"a": "q", "b": "x", "y": "positive"}, {"a": "q", "b": " ", "y": "neutral"}], text_field="a",
                     label_field="y", pair_field="b")
    # the pair is part of the data's identity
    one, other = [{"text": "q", "pair": "a", "label": "x"}], [{"text": "q", "pair": "b", "label": "x"}]
    assert data_hash(one) != data_hash(other)


def test_a_dev_column_gives_the_dev_slice():
    rows = prepare_rows([{"t": f"text {i}", "y": LABELS[i % 3], "part": ["train", "Dev", "validation", ""][i % 4]}
                         for i in range(12)], text_field="t", label_field="y", labels=LABELS, split_field="part")
    train, dev = fixed_split(rows)
    assert [r["text"] for r in dev] == ["text 1", "text 2", "text 5", "text 6", "text 9", "text 10"]
    assert len(train) == 6 and all(r["split"] == "train" for r in train)
    with pytest.raises(TrainingError, match="marks 0 of 12 rows as dev"):
        fixed_split([r | {"split": "train"} for r in rows])
    assert data_hash(rows) != data_hash([r | {"split": "train"} for r in rows])  # the split is part of the data


def test_config_refuses_what_a_method_cannot_use():
    for bad, message in (({"method": "head", "seeds": 2}, "seeds applies"), ({"method": "head", "lr_decay": 0.9},
                                                                            "lr_decay applies"),
                         ({"lr_decay": 0.0}, r"lr_decay must be in \(0, 1\]"), ({"seeds": 0}, "seeds must be")):
        with pytest.raises(TrainingError, match=message):
            TrainConfig(**bad).validate()
    TrainConfig(method="full", lr_decay=0.8, seeds=3).validate()


def test_layer_wise_learning_rates_follow_depth():
    import torch
    import transformers

    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32)
    encoder = transformers.BertModel(config)
    head = torch.nn.Linear(16, 3)
    assert layer_depth("embeddings.word_embeddings.weight", 3) == 0
    assert layer_depth("encoder.layer.0.attention.self.query.weight", 3) == 1
    assert layer_depth("base_model.model.encoder.layer.2.output.dense.lora_A.default.weight", 3) == 3
    assert layer_depth("pooler.dense.weight", 3) == 4
    groups = parameter_groups(encoder, head, 1e-3, 0.5, 0.01)
    by_id = {id(p): g["lr"] for g in groups for p in g["params"]}
    named = dict(encoder.named_parameters())
    assert by_id[id(named["embeddings.word_embeddings.weight"])] == pytest.approx(1e-3 * 0.5**4)
    assert by_id[id(named["encoder.layer.0.output.dense.weight"])] == pytest.approx(1e-3 * 0.5**3)
    assert by_id[id(named["encoder.layer.2.output.dense.weight"])] == pytest.approx(1e-3 * 0.5)
    assert by_id[id(head.weight)] == pytest.approx(1e-3)
    every = [p for p in encoder.parameters()] + list(head.parameters())
    assert sorted(by_id) == sorted(id(p) for p in every)  # each trainable parameter in exactly one group
    flat = parameter_groups(encoder, head, 1e-3, 1.0, 0.01)
    assert {g["lr"] for g in flat} == {1e-3}
    encoder.embeddings.requires_grad_(False)  # frozen weights are left out
    assert all(id(p) not in {id(q) for g in parameter_groups(encoder, head, 1e-3, 0.5, 0.0) for q in g["params"]}
               for p in encoder.embeddings.parameters())


def test_length_grouped_batches_are_a_permutation_of_similar_lengths():
    rng = random.Random(3)
    order = list(range(1000))
    rng.shuffle(order)
    lengths = [random.Random(i).randint(4, 200) for i in range(1000)]
    grouped = length_grouped(order, lengths, 16, random.Random(3))
    assert sorted(grouped) == list(range(1000))
    batches = [grouped[i:i + 16] for i in range(0, 1000, 16)]
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    random_spread = np.mean([max(lengths[i] for i in order[j:j + 16]) - min(lengths[i] for i in order[j:j + 16])
                             for j in range(0, 1000, 16)])
    assert spread < random_spread / 5
    assert len(batches[-1]) == 1000 % 16  # the one short batch comes last
    assert length_grouped(order, lengths, 16, random.Random(3)) == grouped  # seeded


@pytest.mark.slow
def test_lora_pair_version_is_served_as_a_cross_encoder(tmp_path, monkeypatch):
    """The version reads [CLS] text [SEP] pair [SEP] (segment ids included) in training and in serving alike."""
    import torch
    import transformers
    from peft import PeftModel
    from safetensors.numpy import load_file

    monkeypatch.setenv("VERTICALS_PRECISION", "fp32")
    progress = []
    config = TrainConfig(pair_inputs=True, group_by_length=True, lr_decay=0.9, **TINY)
    version = train_model(build_registry(), "finance.sentiment", _pairs(), config, on_progress=progress.append,
                          store=ModelStore(tmp_path))
    head = json.loads((version.path / "verticals_head.json").read_text())
    assert head["inputs"] == "pair" and version.meta["inputs"] == "pair" and version.meta["config"]["lr_decay"] == 0.9
    assert [p.step for p in progress if p.phase == "train"][-1] == 2

    host = ModelHost(build_registry().models, overrides={"finance.sentiment": str(version.path)})
    classifier = host.get("finance.sentiment")
    assert classifier.reads_pairs and not classifier.can_integrate_gradients
    first, second = ["Quarterly results", "Dividend news"], ["Shares jump after record profit", "AGM set for May"]
    served = classifier.classify(first, second)
    with pytest.raises(ValueError, match="trained on text pairs"):
        classifier.classify(first)

    base_path = resolve(build_registry().models["minilm"], use_store=False).path
    reference = PeftModel.from_pretrained(transformers.AutoModel.from_pretrained(base_path),
                                          str(version.path / "adapter")).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_path)
    features = tokenizer(first, second, padding=True, return_tensors="pt")
    assert features["token_type_ids"].max() == 1  # the second text is segment 1
    with torch.no_grad():
        hidden = reference(**features).last_hidden_state
    mask = features["attention_mask"].unsqueeze(-1).float()
    pooled = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    weights = load_file(str(version.path / "head.safetensors"))
    logits = pooled @ weights["weight"].T + weights["bias"]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(served, expected / expected.sum(1, keepdims=True), atol=1e-4)
    assert np.abs(classifier.classify(second, first) - served).max() > 1e-4  # the order of the pair matters
    from verticals.core.models.optimize import outputs  # what the ONNX/int8 gate compares: pairs for a pair model

    np.testing.assert_allclose(outputs(classifier, first + second), classifier.classify(first + second, [
        first[1], *second, first[0]]), atol=1e-6)


@pytest.mark.slow
def test_full_method_with_decay_and_seeds_keeps_the_best_run(tmp_path):
    progress = []
    config = TrainConfig(method="full", pair_inputs=True, lr_decay=0.8, seeds=2, **TINY)
    version = train_model(build_registry(), "finance.sentiment", _pairs(), config, on_progress=progress.append,
                          store=ModelStore(tmp_path))
    runs = version.meta["seed_runs"]
    assert [r["seed"] for r in runs] == [5, 6]
    best = max(runs, key=lambda r: r["macro_f1"])
    assert version.meta["chosen_seed"] == best["seed"] and version.meta["dev"]["macro_f1"] == best["macro_f1"]
    steps = [p for p in progress if p.phase == "train"]
    assert [p.step for p in steps] == [1, 2, 3, 4] and {p.total_steps for p in steps} == {4}  # both runs counted
    assert steps[-1].eta_s == 0


@pytest.mark.slow
def test_cli_trains_pairs_and_lists_them(tmp_path):
    path = tmp_path / "pairs.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["question", "answer", "grade", "part"])
        writer.writeheader()
        writer.writerows({"question": r["text"], "answer": r["pair"], "grade": r["label"],
                          "part": "dev" if r["text"] == FIRST[0] else "train"} for r in _pairs())
    trained = run_cli("train", "finance.sentiment", str(path), "--text-column", "question", "--pair-column", "answer",
                      "--label-column", "grade", "--method", "head", "--dev-column", "part")
    assert trained.returncode == 0, trained.stderr
    assert "45 pairs, method head" in trained.stderr
    assert json.loads(trained.stdout.strip().splitlines()[-1])["version"] == "v1"
    meta = ModelStore().get("finance.sentiment", "v1").meta
    assert meta["inputs"] == "pair" and meta["data"]["dev_rows"] == 9  # the rows of one first text, held out whole
    no_dev = run_cli("train", "finance.sentiment", str(path), "--text-column", "question", "--label-column", "grade",
                     "--dev-column", "grade")
    assert no_dev.returncode == 2 and "marks 0 of 45 rows as dev" in no_dev.stderr
    listing = run_cli("models", "list", env={"COLUMNS": "250"})
    assert "head (pairs)" in listing.stdout
    missing = run_cli("train", "finance.sentiment", str(path), "--text-column", "question", "--pair-column", "other",
                      "--label-column", "grade")
    assert missing.returncode == 2 and "no column 'other'" in missing.stderr
    refused = run_cli("train", "finance.sentiment", str(path), "--text-column", "question", "--label-column", "grade",
                      "--method", "head", "--seeds", "2")
    assert refused.returncode == 2 and "seeds applies" in refused.stderr
    assert [v.version for v in ModelStore().versions()] == ["v1"]
