"""`verticals eval`: evaluator arithmetic checked by hand and against scikit-learn, and the CLI end to end."""

from __future__ import annotations

import json
import random
import time

import pytest

from tests.conftest import run_cli
from verticals.contract.evaluators import (
    ClassificationEvaluator,
    LeakEvaluator,
    ProbabilityEvaluator,
    Record,
    SpanEvaluator,
    contains_phrase,
    macro_f1,
    pluck,
    roc_auc,
)
from verticals.core.evaluation.scoring import EvalError, compare, gate_failures, parse_gates


def _records(pairs):
    return [Record(f"k{i}", i, gold, predicted, predicted is None) for i, (gold, predicted) in enumerate(pairs)]


def test_classification_metrics_by_hand():
    # gold a a a b b c ; predicted a a b b c (failed)
    scores = ClassificationEvaluator(labels=("a", "b", "c")).score(
        _records([("a", "a"), ("a", "a"), ("a", "b"), ("b", "b"), ("b", "c"), ("c", None)]))
    assert scores.metrics["accuracy"] == round(3 / 6, 4)
    assert scores.per_class["a"] == {"precision": 1.0, "recall": round(2 / 3, 4), "f1": 0.8, "support": 3}
    assert scores.per_class["b"]["precision"] == 0.5 and scores.per_class["b"]["recall"] == 0.5
    assert scores.per_class["c"]["f1"] == 0.0  # the failed item counts against the model
    assert scores.metrics["macro_f1"] == round((0.8 + 0.5 + 0.0) / 3, 4)
    assert scores.metrics["failed"] == 1
    assert scores.confusion["columns"] == ["a", "b", "c", "(failed)"]
    assert scores.confusion["rows"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    assert scores.wrong == [2, 4, 5]


def test_classification_agrees_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(3)
    labels = ["x", "y", "z"]
    gold = [rng.choice(labels) for _ in range(300)]
    predicted = [g if rng.random() < 0.6 else rng.choice(labels) for g in gold]
    scores = ClassificationEvaluator(labels=labels).score(_records(zip(gold, predicted, strict=True)))
    assert scores.metrics["accuracy"] == pytest.approx(metrics.accuracy_score(gold, predicted), abs=1e-4)
    assert scores.metrics["macro_f1"] == pytest.approx(metrics.f1_score(gold, predicted, average="macro"), abs=2e-4)
    assert scores.metrics["weighted_f1"] == pytest.approx(
        metrics.f1_score(gold, predicted, average="weighted"), abs=2e-4)


def test_span_overlap_rule_and_label_map():
    evaluator = SpanEvaluator(gold_field="spans", output_field="entities",
                              label_map={"PTName": "NAME", "HCPName": "NAME", "DateYear": None})
    gold = [{"start": 0, "end": 5, "label": "PTName"}, {"start": 10, "end": 14, "label": "HCPName"},
            {"start": 20, "end": 24, "label": "DateYear"}, {"start": 30, "end": 40, "label": "Location"}]
    predicted = [{"start": 3, "end": 8, "label": "NAME"},  # overlaps the patient name: found
                 {"start": 31, "end": 33, "label": "DATE"},  # overlaps the location, other label: still found
                 {"start": 50, "end": 55, "label": "NAME"}]  # nothing there: a false positive
    scores = evaluator.score([Record("k", 0, gold, predicted)])
    assert scores.metrics["gold_spans"] == 3  # the year alone is not scored
    assert scores.per_class["NAME"]["recall"] == 0.5 and scores.per_class["Location"]["recall"] == 1.0
    assert scores.metrics["recall"] == round(2 / 3, 4)
    assert scores.metrics["precision"] == round(2 / 3, 4)
    assert scores.per_class["NAME"]["precision"] == 0.5
    assert scores.wrong == [0]


def test_macro_f1_both_averages_agree_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(4)
    gold = [rng.choice("xyz") for _ in range(200)]
    predicted = [g if rng.random() < 0.5 else rng.choice("xyzw") for g in gold]
    # over the gold labels (the evaluator's and training's rule): a label no gold item has is left out
    assert macro_f1(gold, predicted) == pytest.approx(metrics.f1_score(gold, predicted, average="macro",
                                                                       labels=["x", "y", "z"]))
    assert macro_f1(gold, predicted, ["x", "y", "z", "w"]) == macro_f1(gold, predicted)
    # every label named (the tutor's research scripts): w, predicted but never gold, counts with F1 0
    every = macro_f1(gold, predicted, ["x", "y", "z", "w"], unsupported=True)
    assert every == pytest.approx(metrics.f1_score(gold, predicted, labels=["x", "y", "z", "w"], average="macro",
                                                   zero_division=0))
    assert every == pytest.approx(macro_f1(gold, predicted) * 3 / 4)


def test_typed_spans_need_the_same_label():
    evaluator = SpanEvaluator(gold_field="entities", output_field="entities", label_fields=("category", "assertion"),
                              typed=True, main_metric="f1")
    gold = [{"start": 0, "end": 10, "category": "PROBLEM", "assertion": "absent"},
            {"start": 20, "end": 25, "category": "MEDICATION", "assertion": "present"}]
    predicted = [{"start": 0, "end": 10, "category": "PROBLEM", "assertion": "present"},  # wrong assertion
                 {"start": 21, "end": 24, "category": "MEDICATION", "assertion": "present"}]  # overlaps: found
    scores = evaluator.score([Record("k", 0, gold, predicted), Record("l", 1, gold[1:], predicted[1:])])
    assert scores.per_class["PROBLEM:absent"]["recall"] == 0.0
    assert scores.per_class["PROBLEM:present"]["precision"] == 0.0 and scores.per_class["PROBLEM:present"][
        "support"] == 0
    assert scores.per_class["MEDICATION:present"] == {"recall": 1.0, "precision": 1.0, "f1": 1.0, "f2": 1.0,
                                                      "support": 2, "predicted": 2}
    assert scores.metrics["recall"] == round(2 / 3, 4) and scores.metrics["precision"] == round(2 / 3, 4)
    assert scores.metrics["f1"] == round(2 / 3, 4) and scores.wrong == [0]
    assert evaluator.describe()["main_metric"] == "f1" and evaluator.describe()["typed"] is True
    untyped = SpanEvaluator(gold_field="entities", output_field="entities", label_fields=("category", "assertion"))
    assert untyped.score([Record("k", 0, gold, predicted)]).metrics["recall"] == 1.0  # any overlap counts


def test_leak_evaluator_counts_hints_that_give_the_answer_away():
    assert contains_phrase("The ice is less DENSE, isn't it?", "less dense")
    assert contains_phrase("What reflects the light?", "reflect")  # a plural s aside
    assert not contains_phrase("Think about 14 minus 6.", "4") and contains_phrase("Is it 4?", "4")
    assert not contains_phrase("less than dense", "less dense")  # the words in a row
    evaluator = LeakEvaluator(gold_field="forbidden", output_field="hint")
    assert evaluator.gold({"forbidden": "heart | cardiac"}, "forbidden") == ["heart", "cardiac"]  # a CSV cell
    records = [Record("a", 0, ["heart", "cardiac"], "Which organ beats in your chest?"),
               Record("b", 1, ["gravity"], "Gravity pulls it down."),
               Record("c", 2, ["12"], None, failed=True),
               Record("d", 3, None, "no gold: not scored")]
    scores = evaluator.score(records)
    assert scores.metrics == {"clean": round(1 / 3, 4), "leak_rate": round(1 / 3, 4), "leaks": 1, "n": 3,
                              "failed": 1, "unlabelled": 1}
    assert scores.wrong == [1, 2]


def test_auc_and_calibration_agree_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(5)
    ys = [rng.random() < 0.4 for _ in range(500)]
    ps = [min(1.0, max(0.0, (0.65 if y else 0.35) + rng.gauss(0, 0.2))) for y in ys]
    ps[:50] = [round(p, 1) for p in ps[:50]]  # ties
    assert roc_auc([int(y) for y in ys], ps) == pytest.approx(metrics.roc_auc_score(ys, ps), abs=1e-9)
    evaluator = ProbabilityEvaluator(gold_field="attempts.*.correct", output_field="predictions")
    item = {"attempts": [{"correct": int(y)} for y in ys]}
    records = [Record("s1", 0, evaluator.gold(item, evaluator.gold_field), ps)]
    scores = evaluator.score(records)
    assert scores.metrics["auc"] == pytest.approx(metrics.roc_auc_score(ys, ps), abs=1e-4)
    assert scores.metrics["rmse"] == pytest.approx(metrics.mean_squared_error(ys, ps) ** 0.5, abs=1e-4)
    assert scores.metrics["n"] == 500
    assert roc_auc([1, 1], [0.2, 0.3]) is None


def test_pluck_paths():
    assert pluck({"a": {"b": 2}}, "a.b") == 2
    assert pluck({"a": [{"b": 1}, {"b": 0}]}, "a.*.b") == [1, 0]
    assert pluck({"a": None}, "a.b") is None


def test_gates():
    gates = parse_gates(["accuracy=0.8", "macro_f1>=0.75"])
    assert gates == {"accuracy": 0.8, "macro_f1": 0.75}
    assert gate_failures({"accuracy": 0.9, "macro_f1": 0.7}, gates) == ["macro_f1 = 0.7000 is below the minimum 0.75"]
    assert "not measured" in gate_failures({"accuracy": 0.9}, {"auc": 0.5})[0]
    with pytest.raises(EvalError, match="METRIC=MINIMUM"):
        parse_gates(["accuracy"])


def test_eval_cli_golden_set_show_compare_gates_and_report(use_plugins, tmp_path):
    use_plugins("good")
    first = run_cli("eval", "fixtures.keyword", "--json")
    assert first.returncode == 0, first.stderr
    run_a = json.loads(first.stdout)
    # golden.csv: 6 rows; "costs down" is labelled positive and predicted negative
    assert run_a["metrics"]["accuracy"] == round(5 / 6, 4) and run_a["data"] == "golden:golden.csv"
    assert run_a["evaluator"]["kind"] == "classification" and run_a["models"] == []

    data = tmp_path / "labels.csv"
    data.write_text("body,gold\nshares up,positive\nsales down,negative\ncosts down,positive\nPOISON,neutral\n"
                    "quiet day,neutral\n", encoding="utf-8")
    report = tmp_path / "report.html"
    second = run_cli("eval", "fixtures.keyword", str(data), "--text-column", "body", "--gold-column", "gold",
                     "--report", str(report), "--min", "accuracy=0.5")
    assert second.returncode == 0, second.stderr
    assert "accuracy" in second.stdout and "all 1 gate(s) passed" in second.stderr  # results on stdout
    page = report.read_text()
    assert "<svg" in page and "fixtures.keyword" in page and "costs down" not in page  # metrics, not texts

    failing = run_cli("eval", "fixtures.keyword", str(data), "--text-column", "body", "--gold-column", "gold",
                      "--min", "accuracy=0.9", "--min", "macro_f1=0.1")
    assert failing.returncode == 3, failing.stderr
    assert "gate failed: accuracy = 0.6000 is below the minimum 0.9" in failing.stderr

    listed = run_cli("eval", "list", "--json")
    runs = json.loads(listed.stdout)
    assert [r["task"] for r in runs] == ["fixtures.keyword"] * 3
    run_b = runs[1]["id"]  # the labels.csv run that passed its gate
    shown = run_cli("eval", "show", run_b[:8])
    assert shown.returncode == 0, shown.stderr
    assert "costs down" in shown.stdout and "(failed)" in shown.stdout  # the wrong items, with their text
    assert "fixtures.keyword" in run_cli("eval", "list").stdout  # tables go to stdout: `| less` gets them

    diff = run_cli("eval", "compare", run_a["id"][:8], run_b[:8], "--json")
    assert diff.returncode == 0, diff.stderr
    result = json.loads(diff.stdout)
    assert result["same_data"] is False
    assert result["metrics"]["accuracy"]["delta"] == round(0.6 - round(5 / 6, 4), 4)
    assert result["matched"] == 3  # shares up, sales down, costs down appear in both files


def test_eval_errors_are_messages(use_plugins, tmp_path):
    use_plugins("good")
    no_evaluator = run_cli("eval", "fixtures.echo")
    assert no_evaluator.returncode == 2 and "declares no evaluator" in no_evaluator.stderr
    assert "fixtures.keyword" in no_evaluator.stderr
    data = tmp_path / "x.csv"
    data.write_text("text,y\nup,positive\n", encoding="utf-8")
    no_gold = run_cli("eval", "fixtures.keyword", str(data))
    assert no_gold.returncode == 2 and "no gold column 'label'" in no_gold.stderr
    assert "Traceback" not in no_gold.stderr
    missing = run_cli("eval", "show", "deadbeef")
    assert missing.returncode == 2 and "no evaluation run" in missing.stderr
    mapped = tmp_path / "m.csv"
    mapped.write_text("headline,y\nup,positive\n", encoding="utf-8")
    no_gold = run_cli("eval", "fixtures.keyword", str(mapped), "--text-column", "headline")
    assert no_gold.returncode == 2 and "its columns: headline, y." in no_gold.stderr  # not the mapped `text`
    unknown = tmp_path / "u.csv"  # gold labels the task does not have: an error, not a 0.0 score with exit 0
    unknown.write_text("text,label\nshares up,positive\nsales down,bearish\nquiet,Neutral\n", encoding="utf-8")
    refused = run_cli("eval", "fixtures.keyword", str(unknown))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "row 2: the gold label 'bearish' in column 'label' is not one of fixtures.keyword's labels" in " ".join(
        refused.stderr.split())
    unknown.write_text("text,label\nshares up,positive\nquiet,Neutral\n", encoding="utf-8")
    refused = run_cli("eval", "fixtures.keyword", str(unknown))
    assert refused.returncode == 2 and "use 'neutral'" in refused.stderr
    assert json.loads(run_cli("jobs", "list", "--json").stdout) == []  # nothing left behind


def test_compare_matches_items_by_content():
    from verticals.core.evaluation.scoring import EvalResult

    a = EvalResult("a", "t", "j", "d", "h", "label", {}, {"accuracy": 0.5}, records=[["k1", 0, "x", "y", False],
                                                                                      ["k2", 1, "y", "y", False]])
    b = EvalResult("b", "t", "j", "d", "h", "label", {}, {"accuracy": 1.0}, records=[["k2", 0, "y", "y", False],
                                                                                      ["k1", 1, "x", "x", False]])
    diff = compare(a, b)
    assert diff["same_data"] is True and diff["metrics"]["accuracy"]["delta"] == 0.5
    assert diff["flipped"] == [{"key": "k1", "seq_a": 0, "seq_b": 1, "gold": "x", "a": "y", "b": "x", "fixed": True,
                                "broken": False}]


def test_rest_evaluation_is_scored_per_tenant(fixtures_only_registry, isolated_home):
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app
    from verticals.core.store import open_store
    from verticals.tenancy.tenants import Tenants

    store = open_store(f"sqlite:///{isolated_home / 'api.db'}")
    tenants = Tenants(store)
    acme = {"Authorization": f"Bearer {tenants.create_key('acme', 'test').token}"}
    globex = {"Authorization": f"Bearer {tenants.create_key('globex', 'test').token}"}
    with TestClient(create_app(store, fixtures_only_registry)) as api:
        items = [{"text": "shares up", "label": "positive"}, {"text": "costs down", "label": "positive"},
                 {"text": "quiet", "label": "neutral"}, {"text": "sales down", "label": "negative"}]
        created = api.post("/v1/evals", json={"task": "fixtures.keyword", "items": items}, headers=acme)
        assert created.status_code == 202, created.text
        eval_id = created.json()["id"]
        deadline = time.monotonic() + 30
        while True:
            body = api.get(f"/v1/evals/{eval_id}", headers=acme).json()
            if "run" in body or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert body["run"]["metrics"]["accuracy"] == 0.75
        assert body["run"]["data"] == "4 items (API)"
        again = api.get(f"/v1/evals/{eval_id}", headers=acme).json()
        assert again["run"]["id"] == body["run"]["id"]  # scored once, then read back
        assert api.get(f"/v1/evals/{eval_id}", headers=globex).status_code == 404
        assert [r["id"] for r in api.get("/v1/evals", headers=acme).json()] == [body["run"]["id"]]
        assert api.get("/v1/evals", headers=globex).json() == []
        no_evaluator = api.post("/v1/evals", json={"task": "fixtures.echo", "items": items}, headers=acme)
        assert no_evaluator.status_code == 422 and "declares no evaluator" in no_evaluator.json()["detail"]
        no_gold = api.post("/v1/evals", json={"task": "fixtures.keyword", "items": [{"text": "x"}]}, headers=acme)
        assert no_gold.status_code == 422 and "gold_field" in no_gold.json()["detail"]
        job = api.post("/v1/jobs", json={"task": "fixtures.keyword", "items": items}, headers=acme).json()
        assert api.get(f"/v1/evals/{job['id']}", headers=acme).status_code == 404  # a plain job is no evaluation


def test_bad_evaluation_input_leaves_no_job(fixtures_only_registry, tmp_path):
    from verticals.core.evaluation.scoring import evaluate
    from verticals.core.store import open_store

    store = open_store()
    data = tmp_path / "x.csv"
    data.write_text("text,y\nup,positive\n", encoding="utf-8")
    with pytest.raises(EvalError, match="no gold column 'label'"):
        evaluate("fixtures.keyword", data, store=store, registry=fixtures_only_registry)
    with pytest.raises(EvalError, match="no rows"):
        evaluate("fixtures.keyword", items=[], store=store, registry=fixtures_only_registry)
    assert store.list_jobs() == []


def test_sdk_evaluate_in_process(fixtures_only_registry):
    import verticals

    with verticals.Client() as client:
        run = client.evaluate("fixtures.keyword")  # the golden set
        assert run["metrics"]["accuracy"] == round(5 / 6, 4) and run["id"]
        run = client.evaluate("fixtures.keyword", items=[{"text": "up", "label": "positive"}])
        assert run["metrics"]["accuracy"] == 1.0
        with pytest.raises(verticals.client.VerticalsError, match="declares no evaluator"):
            client.evaluate("fixtures.echo", items=[{"text": "x", "label": "y"}])


def test_eval_takes_task_parameters_and_scores_mastery_predictions():
    from tests.conftest import REPO

    attempts = REPO / "plugins" / "verticals-tutor" / "verticals_tutor" / "samples" / "attempts.csv"
    result = run_cli("eval", "tutor.mastery", str(attempts), "--predictions", "true", "--json")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["evaluator"]["kind"] == "probability" and run["metrics"]["n"] > 100
    assert 0.0 <= run["metrics"]["auc"] <= 1.0 and run["metrics"]["rmse"] > 0
