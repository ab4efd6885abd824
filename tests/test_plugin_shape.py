"""The one plugin shape: the bundled tasks' evaluators and golden sets, scored end to end by `verticals eval`, and
a model a job names (``Task.models_for`` returning a ModelSpec) loaded by the core's model host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from verticals.contract import OPERATOR, ModelSpec, Packaged
from verticals.contract.evaluators import Record
from verticals.core.evaluation.scoring import golden_about, golden_path
from verticals.registry import build_registry

# the tasks of the bundled plugins that ship a golden set (written for evaluation: each README says how)
# (tutor.mastery: attempt rows, grouped into 24 students)
GOLDEN = {"finance.sentiment": 90, "medical.entities": 42, "medical.deidentify": 40, "tutor.hint": 32,
          "tutor.grade": 40, "tutor.mastery": 734, "testgen.generate": 3}


@pytest.mark.parametrize("task", sorted(GOLDEN))
def test_golden_sets_have_gold_for_every_item_and_say_how_they_were_made(task):
    task_cls = build_registry().task(task)
    evaluator = task_cls.evaluator
    path = golden_path(task_cls)
    assert evaluator is not None and path is not None and path.is_file()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == GOLDEN[task]
    instance, params = task_cls(), task_cls.Params()
    for row in rows:
        for item in instance.read_items([row], params):
            task_cls.Input.model_validate(item, context=OPERATOR.context())  # `verticals eval` is the CLI's
        if not getattr(evaluator, "gold_from_output", False):
            assert evaluator.gold(row, evaluator.gold_field) is not None, row
    about = golden_about(task_cls)
    assert about and (str(GOLDEN[task]) in about or task == "testgen.generate")  # testgen: "three" modules


def _eval(*args: str, timeout: int = 600) -> dict:
    done = run_cli("eval", *args, "--json", timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_eval_medical_entities_on_its_golden_set():
    run = _eval("medical.entities")
    assert run["data"] == "golden:entities.jsonl" and run["evaluator"]["typed"] is True
    metrics = run["metrics"]
    assert metrics["n"] == 42 and metrics["gold_spans"] == 68 and metrics["failed"] == 0
    assert metrics["predicted_spans"] > 0 and 0 < metrics["f1"] <= 1 and 0 < metrics["recall"] <= 1
    per_class = run["details"]["per_class"]
    assert per_class["PROBLEM:absent"]["support"] == 13 and per_class["PROBLEM:family"]["support"] == 5


def _golden_rows(task: str) -> tuple[type, list[dict]]:
    task_cls = build_registry().task(task)
    path = golden_path(task_cls)
    assert path is not None
    return task_cls, [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.slow
def test_eval_medical_deidentify_on_its_golden_set():
    run = _eval("medical.deidentify")
    assert run["data"] == "golden:deidentify.jsonl" and run["evaluator"]["kind"] == "safe-harbor-spans"
    metrics = run["metrics"]
    # 460 gold spans, of which 20 ages under 90 and 25 years alone are not Safe Harbor PHI
    assert metrics["n"] == 40 and metrics["gold_spans"] == 415 and metrics["failed"] == 0
    for key in ("recall", "touched", "names_recall", "span_precision", "char_precision", "char_recall"):
        assert 0 < metrics[key] <= 1, key
    assert metrics["recall"] <= metrics["touched"]
    per_class = run["details"]["per_class"]
    assert per_class["NAME"]["support"] == 145 and per_class["AGE"]["support"] == 10  # the ages of 90 or more
    assert "DateYear" not in per_class


def test_the_deidentify_golden_set_scores_a_perfect_masking_1_and_a_wrong_one_lower():
    from verticals_medical.scoring import is_phi

    task_cls, rows = _golden_rows("medical.deidentify")
    evaluator = task_cls.evaluator

    def scored(predict) -> dict:
        records = [Record(str(i), i, evaluator.gold(row, "spans"), predict(row)) for i, row in enumerate(rows)]
        return evaluator.score(records).metrics

    def phi(row: dict) -> list[dict]:
        return [span for span in row["spans"] if is_phi(span["label"], span["text"])]

    perfect = scored(phi)
    assert perfect["recall"] == perfect["char_precision"] == perfect["span_precision"] == 1.0
    assert perfect["gold_spans"] == 415 and perfect["n"] == 40
    # one span half masked: missed (the other half leaks)
    first = phi(rows[0])[0]
    half = dict(first, end=first["start"] + 2)
    assert scored(lambda row: [half, *phi(row)[1:]] if row is rows[0] else phi(row))["recall"] < 1.0
    # the years alone and young ages masked too: precision drops, recall does not
    everything = scored(lambda row: row["spans"])
    assert everything["recall"] == 1.0 and everything["char_precision"] < 1.0
    assert scored(lambda row: [])["recall"] == 0.0


@pytest.mark.slow
def test_eval_tutor_grade_on_its_golden_set():
    run = _eval("tutor.grade")
    assert run["data"] == "golden:answers.jsonl" and run["evaluator"]["main_metric"] == "accuracy"
    metrics = run["metrics"]
    assert metrics["n"] == 40 and metrics["failed"] == 0 and metrics["unlabelled"] == 0
    assert 0 < metrics["accuracy"] <= 1 and 0 < metrics["macro_f1"] <= 1
    per_class = run["details"]["per_class"]
    assert per_class["correct"]["support"] == per_class["incorrect"]["support"] == 20
    assert sum(sum(row) for row in run["details"]["confusion"]["rows"]) == 40


def test_eval_tutor_mastery_on_its_golden_set_runs_with_predictions_on():
    run = _eval("tutor.mastery")  # no --predictions true: the evaluator's job_params turn them on
    assert run["data"] == "golden:attempts.jsonl" and run["evaluator"]["job_params"] == {"predictions": True}
    metrics = run["metrics"]
    assert metrics["n"] == 734 and metrics["items"] == 24 and metrics["failed"] == 0
    assert 0.5 < metrics["auc"] <= 1 and 0 < metrics["rmse"] < 0.5
    assert sum(row["n"] for row in run["details"]["per_class"].values()) == 734  # the calibration table


def test_the_grade_golden_set_scores_right_labels_1_and_a_wrong_one_lower():
    task_cls, rows = _golden_rows("tutor.grade")
    evaluator = task_cls.evaluator
    gold = [evaluator.gold(row, evaluator.gold_field) for row in rows]
    assert sorted(set(gold)) == ["correct", "incorrect"]

    def accuracy(predicted: list) -> float:
        records = [Record(str(i), i, g, p) for i, (g, p) in enumerate(zip(gold, predicted, strict=True))]
        return evaluator.score(records).metrics["accuracy"]

    assert accuracy(gold) == 1.0
    flipped = ["incorrect" if label == "correct" else "correct" for label in gold[:1]] + gold[1:]
    assert accuracy(flipped) == round(39 / 40, 4)
    assert accuracy(["correct"] * 40) == 0.5  # the 20/20 split: a constant grader is at chance


def test_the_mastery_golden_outcomes_score_an_oracle_1_and_reversed_predictions_0():
    task_cls, rows = _golden_rows("tutor.mastery")
    evaluator = task_cls.evaluator
    students: dict[str, list[int]] = {}
    for row in rows:
        students.setdefault(row["student"], []).append(int(row["correct"]))

    def auc(predict) -> float:
        records = []
        for seq, outcomes in enumerate(students.values()):
            output = {"predictions": [{"correct": bool(y), "p_correct": predict(y)} for y in outcomes]}
            records.append(Record(str(seq), seq, evaluator.gold(output, evaluator.gold_field),
                                  evaluator.predicted(output)))
        return evaluator.score(records).metrics["auc"]

    assert auc(lambda y: 0.9 if y else 0.1) == 1.0
    assert auc(lambda y: 0.1 if y else 0.9) == 0.0
    assert auc(lambda y: 0.5) == 0.5


@pytest.mark.slow
def test_eval_tutor_hint_scores_the_hints_shown(tmp_path):
    # two golden items (the whole set takes minutes of generation on a small CPU, far more on a loaded one)
    golden = REPO / "plugins" / "verticals-tutor" / "verticals_tutor" / "golden" / "hints.jsonl"
    data = tmp_path / "hints.jsonl"
    data.write_text("".join(golden.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    run = _eval("tutor.hint", str(data), "--max-new-tokens", "16", timeout=1800)
    assert run["evaluator"]["kind"] == "leak" and run["evaluator"]["output_field"] == "hint"
    metrics = run["metrics"]
    assert metrics["n"] == 2 and metrics["unlabelled"] == 0
    assert metrics["clean"] == round((2 - metrics["leaks"] - metrics["failed"]) / 2, 4)
    assert {model["model"] for model in run["models"]} >= {"smollm2"}  # the hints came from the LLM's path


@pytest.mark.slow
def test_eval_testgen_generate_on_one_sample_module(tmp_path):
    data = tmp_path / "modules.jsonl"
    data.write_text(json.dumps({"module": "verticals_testgen.samples.shapes"}) + "\n", encoding="utf-8")
    # the budget is shared by the search and the mutation pass; at 20 s a loaded machine (load 5) left the pass
    # under its 3 s floor and no mutant was evaluated (score None): 45 s leaves it room on a busy CI host
    run = _eval("testgen.generate", str(data), "--strategies", "observed", "--time-budget", "45")
    metrics = run["metrics"]
    assert run["evaluator"]["kind"] == "tests" and metrics["failed"] == 0 and metrics["modules"] == 1
    assert 0 < metrics["mutation_score"] <= 1 and metrics["coverage"] > 0 and metrics["asserting_share"] > 0


def test_a_model_a_job_names_is_kept_by_the_host_under_its_own_key():
    from verticals.core.models.host import ModelHost

    registered = ModelSpec(name="medical.deid-ner", kind="token-classifier", packaged=Packaged("x", "y"))
    host = ModelHost({registered.name: registered})
    first = ModelSpec(name="medical.deid-ner", kind="token-classifier", local_path="/models/a", revision="3.10.7")
    again = ModelSpec(name="medical.deid-ner", kind="token-classifier", local_path="/models/a", revision="3.10.7")
    changed = ModelSpec(name="medical.deid-ner", kind="token-classifier", local_path="/models/a", revision="4.12.9")
    key = host.named(first)
    assert key == host.named(again) and key != host.named(changed) and key != registered.name
    assert host.spec(key) == first and host.spec(registered.name) == registered  # the registered one untouched


@pytest.mark.slow
def test_deidentify_loads_the_job_named_ner_model_through_the_core_host(tmp_path):
    folder = REPO / "plugins" / "verticals-medical" / "verticals_medical" / "models" / "phi_tagger"
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"id": "n1", "text": "Patient: Theodore Chandler, seen on 05/12/2021 by Dr. Todd."})
                     + "\n", encoding="utf-8")
    done = run_cli("run", "medical.deidentify", str(notes), "--ner-model", str(folder), "-o", str(tmp_path / "o.jsonl"))
    assert done.returncode == 0, done.stderr
    jobs = json.loads(run_cli("jobs", "list", "--json").stdout)
    results = run_cli("jobs", "results", jobs[0]["id"])
    row = json.loads(results.stdout.splitlines()[0])
    detectors = {source["detector"] for span in row["output"]["spans"] for source in span["sources"]}
    assert "model:ner" in detectors
    ner = row["provenance"]["models"]["ner"]
    assert ner["model"] == "medical.deid-ner" and ner["source"] == "local" and Path(ner["reference"]) == folder
    assert "tagger" not in row["provenance"]["models"]  # the tagger is off: not loaded, not claimed
