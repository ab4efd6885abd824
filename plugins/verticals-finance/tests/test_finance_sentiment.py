"""finance.sentiment with the real packaged model (MiniLM + the shipped head)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import train
from verticals_finance.sentiment import LABELS, SentimentTask

from verticals import RunContext
from verticals.core.models.host import ModelHost
from verticals.registry import build_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def host():
    return ModelHost(build_registry().models)


def test_packaged_head_resolves_offline(host, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = host.resolve("finance.sentiment")
    assert source.kind == "packaged"
    assert (source.path / "verticals_head.json").exists()


def test_task_outputs_one_result_per_item_in_order(host):
    task = SentimentTask()
    texts = ["Quarterly profit doubled and the company raised its full-year forecast.",
             "The lender swung to a loss and suspended its dividend after bad loans surged.",
             "The annual general meeting will be held on 14 May in Oslo."]
    batch = [SentimentTask.Input(text=t) for t in texts * 3]
    outputs = task.run(batch, {"classifier": host.get("finance.sentiment")}, RunContext("t", SentimentTask.Params()))
    assert len(outputs) == 9
    for output in outputs:
        assert set(output.probabilities) == set(LABELS)
        assert abs(sum(output.probabilities.values()) - 1) < 1e-4
        assert output.score == output.probabilities[output.label]
    assert [o.label for o in outputs[:3]] == [o.label for o in outputs[3:6]] == [o.label for o in outputs[6:]]
    assert [o.label for o in outputs[:3]] == ["positive", "negative", "neutral"]


def test_shipped_model_reproduces_its_held_out_figures():
    """The adapter + head in the wheel is the one the figures in README/metrics.json describe."""
    _, test = train.split(train.load_rows())
    result = train.evaluate_shipped(test)
    recorded = json.loads((train.HEAD_DIR / "metrics.json").read_text())["written_held_out"]
    assert result["n"] == recorded["n"] == len(test)
    assert np.isclose(result["accuracy"], recorded["accuracy"], atol=0.01)
    assert result["accuracy"] >= 0.6  # well above the 0.33 of chance on a balanced split


def test_shipped_model_is_a_small_lora_adapter_on_the_shared_minilm(host):
    config = json.loads((train.HEAD_DIR / "verticals_head.json").read_text())
    assert config["encoder"] == "minilm" and config["adapter"] == "adapter"
    size = sum(p.stat().st_size for p in train.HEAD_DIR.rglob("*") if p.is_file())
    assert size < 4 * 2**20  # an adapter and a head (2.7 MB at rank 16), not a model (MiniLM alone is 87 MB)
    classifier = host.get("finance.sentiment")
    assert classifier.encoder is host.get("minilm")  # served on the one shared encoder
    meta = json.loads((train.HEAD_DIR / "training.json").read_text())
    assert meta["method"] == "lora" and meta["data"]["name"] == "train.csv"


def test_recipe_data_slices_are_fixed_and_disjoint(tmp_path):
    if not train.tfns_path().exists():
        pytest.skip("the TFNS file (../shared/data/finance/tfns_train.csv) is not present")
    counts = train.prepare(tmp_path, train.tfns_path())
    assert counts == {"train.csv": 8917, "tfns_dev.csv": 1430, "written_heldout.csv": 270}
    read = {name: {r["text"] for r in train._read_csv(tmp_path / name)} for name in counts}
    assert not read["train.csv"] & read["tfns_dev.csv"] and not read["train.csv"] & read["written_heldout.csv"]
    meta = json.loads((train.HEAD_DIR / "training.json").read_text())
    from verticals.core.models.training import data_hash, prepare_rows

    rows = prepare_rows(train._read_csv(tmp_path / "train.csv"), labels=list(LABELS))
    assert meta["data"]["hash"] == data_hash(rows)  # the shipped model was trained on exactly this train.csv


def test_split_is_stratified_and_disjoint():
    train_rows, test_rows = train.split(train.load_rows())
    assert not {r["text"] for r in train_rows} & {r["text"] for r in test_rows}
    counts = {label: sum(r["label"] == label for r in test_rows) for label in LABELS}
    assert len(set(counts.values())) == 1  # balanced
    assert {r["source"] for r in test_rows} == {r["source"] for r in train_rows}  # both styles held out
