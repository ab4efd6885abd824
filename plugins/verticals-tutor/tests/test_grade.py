import csv
from importlib import resources

import numpy as np
import pytest
from verticals_tutor import text as tx
from verticals_tutor.grade import TutorGrade
from verticals_tutor.grading import FEATURE_NAMES, decide, shipped_head
from verticals_tutor.metrics import accuracy, auc, macro_f1

from verticals import RunContext
from verticals.contract import OPERATOR
from verticals.registry import get_registry


def test_tasks_are_registered():
    tasks = get_registry().tasks
    assert {"tutor.grade", "tutor.mastery", "tutor.hint"} <= set(tasks)


def test_concepts_and_negation():
    q = "Explain why you got a voltage reading of 1.5 for terminal 1 and the positive terminal."
    assert tx.concepts_from_reference("Terminal 1 and the positive terminal are separated by the gap", q) == [
        "separated", "gap"]
    assert tx.negation_count("they are not connected") == 1
    assert tx.concept_present("separated", set(tx.content_stems("the terminals are separate")))


def test_metrics():
    assert macro_f1(["a", "b", "a"], ["a", "b", "b"]) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert accuracy(["a", "b"], ["a", "a"]) == 0.5
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_list_fields_from_csv_cells():
    item = TutorGrade.Input(question="q?", reference_answers="one | two", answer="x", concepts="a|b")
    assert item.reference_answers == ["one", "two"] and item.concepts == ["a", "b"]


def test_shipped_head_matches_features():
    head = shipped_head()
    assert head.weight.shape == (3, len(FEATURE_NAMES))


@pytest.mark.slow
def test_grade_sample_answers(host):
    path = resources.files("verticals_tutor").joinpath("samples/answers.csv")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    task = TutorGrade()
    items = [TutorGrade.Input(**r) for r in rows]
    outs = task.run(items, {"encoder": host.get("minilm")}, RunContext(job_id="t", params=TutorGrade.Params()))
    assert len(outs) == len(items)
    by_answer = {i.answer: o for i, o in zip(items, outs, strict=True)}
    good = by_answer["They use the energy of light to make their food through photosynthesis."]
    bad = by_answer["To stay warm."]
    assert good.score > bad.score and good.label_2way == "correct" and bad.label_2way == "incorrect"
    assert set(good.matched_concepts) >= {"photosynthesis"} and "photosynthesis" in bad.missing_concepts
    assert by_answer["there is a gap between terminal 1 and the positive terminal"].score > by_answer[
        "because the battery is dead"].score
    for o in outs:
        assert 0 <= o.score <= 1 and o.feedback and abs(sum(o.probabilities.values()) - 1) < 1e-3


def test_decision_rule_is_one_decision():
    labels = ("correct", "contradictory", "incorrect")
    # P(correct) is the largest but below the threshold: both labels say not correct
    assert decide(np.array([0.45, 0.25, 0.30]), labels, 0.5) == ("incorrect", "incorrect", 0.45)
    assert decide(np.array([0.30, 0.40, 0.30]), labels, 0.5)[:2] == ("incorrect", "contradictory")
    assert decide(np.array([0.55, 0.40, 0.05]), labels, 0.5)[:2] == ("correct", "correct")
    assert decide(np.array([0.35, 0.40, 0.25]), labels, 0.3)[:2] == ("correct", "correct")


def assert_consistent(outs, threshold=0.5):
    for o in outs:
        assert (o.label_2way == "correct") == (o.label_3way == "correct"), o
        assert (o.label_2way == "correct") == (o.score >= threshold), o
        assert o.score == pytest.approx(o.probabilities["correct"], abs=1e-4)
        if o.label_3way != "correct":
            other = "incorrect" if o.label_3way == "contradictory" else "contradictory"
            assert o.probabilities[o.label_3way] >= o.probabilities[other]
        assert o.feedback.startswith("Correct") == (o.label_2way == "correct"), o
        assert o.feedback.startswith("Contradicts") == (o.label_3way == "contradictory"), o


@pytest.mark.slow
def test_grades_are_consistent_and_beat_majority_on_semeval_sample(host):
    """300 SemEval training answers graded by the real model: every output is one consistent decision.
    (The head saw these answers, so the accuracy check is only a sanity check: see EVAL.md for quality.)"""
    from semeval import load_answers, load_questions, reference_texts

    questions = load_questions()
    rows = [r for r in load_answers() if r["question_id"] in questions]
    rng = np.random.default_rng(0)
    picked = set(rng.choice(sorted(questions), 40, replace=False).tolist())  # 40 questions: a bounded bank to embed
    rows = [r for r in rows if r["question_id"] in picked]
    rows = [rows[i] for i in rng.choice(len(rows), 300, replace=False)]
    # half with their question_id, half without: the shipped bank finds the question by id or by its text
    items = [TutorGrade.Input(question=questions[r["question_id"]]["question"],
                              reference_answers=reference_texts(questions[r["question_id"]]),
                              answer=r["student_answer"], question_id=r["question_id"] if k % 2 else None)
             for k, r in enumerate(rows)]
    models = {"encoder": host.get("minilm")}
    outs = TutorGrade().run(items, models, RunContext(job_id="t", params=TutorGrade.Params()))
    assert_consistent(outs)
    assert all(o.graded_answers >= 20 for o in outs)
    assert {o.label_3way for o in outs} == {"correct", "contradictory", "incorrect"}
    truth = [r["label_2way"] for r in rows]
    majority = max(truth.count("correct"), truth.count("incorrect")) / len(truth)
    assert accuracy(truth, [o.label_2way for o in outs]) > majority + 0.05
    # another threshold moves both labels together; without a bank the reference-only head decides
    strict = TutorGrade().run(items[:100], models, RunContext(job_id="t", params=TutorGrade.Params(threshold=0.7)))
    assert_consistent(strict, threshold=0.7)
    plain = TutorGrade().run(items[:150], models, RunContext(job_id="t", params=TutorGrade.Params(shipped_bank=False)))
    assert_consistent(plain)
    assert all(o.graded_answers == 0 for o in plain)


def test_bank_features_see_exact_and_near_matches():
    from verticals_tutor.grading import BANK_FEATURE_NAMES, bank_features

    vecs = np.eye(4)
    labels = np.array([0, 0, 2, 1])
    stems = [{"gap"}, {"gap", "separ"}, {"battery", "dead"}, {"connect"}]
    norms = ["there is a gap", "separated by a gap", "the battery is dead", "they are connected"]
    f = dict(zip(BANK_FEATURE_NAMES, bank_features(vecs[2], {"battery", "dead"}, "the battery is dead", vecs, labels,
                                                   stems, norms), strict=True))
    assert f["exact_match_wrong"] == 1 and f["exact_match_correct"] == 0 and f["nearest_is_correct"] == 0
    assert f["bank_share_correct"] == 0.5 and f["cos_max_incorrect"] == 1 and f["cos_margin_correct"] < 0
    g = dict(zip(BANK_FEATURE_NAMES, bank_features(vecs[0], {"gap"}, "a gap", vecs, labels, stems, norms),
                 strict=True))
    assert g["nearest_is_correct"] == 1 and g["jaccard_max_correct"] == 1 and g["exact_match_correct"] == 0


def test_answer_bank_from_labelled_file(tmp_path):
    from verticals_tutor.grading import AnswerBank

    path = tmp_path / "bank.csv"
    path.write_text("question_id,answer,label\nq9,yes,correct\nq9,no,0\n,x,correct\n", encoding="utf-8")
    with pytest.raises(ValueError, match="question_id or a question"):
        AnswerBank.from_file(path)
    path.write_text("question_id,question,answer,label\nq9,Why?,yes,correct\nq9,Why?,no,0\n", encoding="utf-8")
    bank = AnswerBank.from_file(path)
    assert bank.lookup("q9", "other").labels == [0, 2]
    assert bank.lookup(None, "why") is bank.lookup("q9", "")
    assert bank.lookup("q1", "What?") is None


@pytest.mark.slow
def test_own_answer_bank_decides_a_new_question(host, tmp_path):
    q = "Why does the bulb light when the switch is closed?"
    refs = ["Closing the switch completes the circuit so current flows through the bulb."]
    rows = [("the circuit is complete so current flows", "correct"),
            ("current can flow because the path is closed", "correct"),
            ("the switch makes a closed path for the current", "correct"),
            ("the bulb has energy stored in it", "incorrect"),
            ("because the battery is new", "incorrect"),
            ("the switch stops the current", "contradictory")]
    path = tmp_path / "own.csv"
    path.write_text("question_id,answer,label\n" + "".join(f"own1,{a},{lab}\n" for a, lab in rows),
                    encoding="utf-8")
    items = [TutorGrade.Input(question=q, reference_answers=refs, answer=a, question_id="own1")
             for a in ("because the battery is new", "the path is closed so the current flows")]
    params = TutorGrade.Params.model_validate({"answer_bank": str(path), "shipped_bank": False},
                                              context=OPERATOR.context())
    outs = TutorGrade().run(items, {"encoder": host.get("minilm")}, RunContext(job_id="t", params=params))
    assert [o.graded_answers for o in outs] == [6, 6]
    assert outs[0].label_2way == "incorrect" and outs[1].label_2way == "correct"
    assert_consistent(outs)


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A pair model trained for two steps through `verticals train`'s path (mechanics only: no quality)."""
    from semeval import load_answers, load_questions, reference_texts
    from verticals_tutor.grading import pair_text

    from verticals.core.models.training import TrainConfig, train_model
    from verticals.core.models.versions import ModelStore

    questions = load_questions()
    rows = [r for r in load_answers() if r["question_id"] in questions][:60]
    pairs = [{"text": pair_text(questions[r["question_id"]]["question"], reference_texts(questions[r["question_id"]])),
              "pair": r["student_answer"], "label": r["label_3way"]} for r in rows]
    config = TrainConfig(pair_inputs=True, max_steps=2, max_length=48, batch_size=8, seed=3)
    return train_model(get_registry(), "tutor.grade", pairs, config, store=ModelStore(tmp_path_factory.mktemp("s")))


@pytest.mark.slow
def test_cross_encoder_blends_into_the_one_decision(host, tiny_cross_encoder):
    from verticals.core.models.host import ModelHost

    version = tiny_cross_encoder
    assert version.spec == "tutor.grade-pair" and version.meta["inputs"] == "pair"  # what `train tutor.grade` trains
    cross = ModelHost(get_registry().models, overrides={"tutor.grade-pair": str(version.path)}).get("tutor.grade-pair")
    items = [TutorGrade.Input(question="Why does the bulb light?", reference_answers=["The circuit is closed", "a "
                              "closed path"], answer=answer) for answer in
             ("because the circuit is closed", "the switch is open", "no idea", "it is in a closed path")]
    models = {"encoder": host.get("minilm"), "cross_encoder": cross}

    def grade(weight):
        return TutorGrade().run(items, models, RunContext(job_id="t", params=TutorGrade.Params(
            cross_encoder_weight=weight, shipped_bank=False)))

    alone, off, half = grade(1.0), grade(0.0), grade(0.5)
    direct = cross.classify([" | ".join([items[0].question, *items[0].reference_answers])] * 4,
                            [i.answer for i in items])
    correct = cross.labels.index("correct")
    for out, p in zip(alone, direct, strict=True):
        assert out.score == pytest.approx(float(p[correct]), abs=1e-4) and out.cross_encoder == out.score
    assert all(o.cross_encoder is None for o in off)
    for a, o, h in zip(alone, off, half, strict=True):
        assert h.score == pytest.approx((a.score + o.score) / 2, abs=2e-4)
    for outs in (alone, off, half):
        assert_consistent(outs)
    explained = TutorGrade().explain(items, half, models, RunContext(job_id="t", params=TutorGrade.Params()))
    assert "cross-encoder P(correct)" in explained[0].summary


@pytest.mark.slow
def test_packaged_cross_encoder_reads_pairs_and_is_opt_in(host):
    """The shipped tutor.grade-pair: a LoRA pair model on the shared MiniLM with the three grading labels; the head
    shipped with tutor.grade says how much of it enters the decision (EVAL.md: 0 until it improves the validation
    figure), and `-p cross_encoder_weight=...` opts in."""
    cross = host.get("tutor.grade-pair")
    assert cross.reads_pairs and sorted(cross.labels) == ["contradictory", "correct", "incorrect"]
    assert cross.provenance()["source"] == "packaged" and cross.encoder is host.get("minilm")
    p = cross.classify(["Why does the bulb light? | The circuit is closed"], ["the circuit is closed"])
    assert p.shape == (1, 3) and abs(p.sum() - 1) < 1e-4
    assert 0 <= float(shipped_head().config.get("cross_encoder_weight", 0.0)) <= 1


def test_the_cross_encoder_is_loaded_only_when_it_enters_the_decision():
    """With its weight at 0 (shipped) a job neither preloads tutor.grade-pair nor names it in its provenance; a
    weight above 0 (or a shipped grader that sets one) brings it back."""
    task = TutorGrade()
    shipped = float(shipped_head().config.get("cross_encoder_weight", 0.0))
    assert ("cross_encoder" in task.models_for(TutorGrade.Params())) == (shipped > 0)
    assert "cross_encoder" not in task.models_for(TutorGrade.Params(cross_encoder_weight=0))
    assert task.models_for(TutorGrade.Params(cross_encoder_weight=0.25))["cross_encoder"] == "tutor.grade-pair"
    assert task.models_for(TutorGrade.Params())["encoder"] == "minilm"
