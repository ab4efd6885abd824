import csv
from importlib import resources

import numpy as np
import pytest
from pydantic import ValidationError
from verticals_tutor import bkt
from verticals_tutor.mastery import TutorMastery

from verticals import RunContext


def simulate(n, prior, learn, guess, slip, seed=0):
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n):
        known = rng.random() < prior
        obs = []
        for _ in range(rng.integers(2, 25)):
            obs.append(rng.random() < ((1 - slip) if known else guess))
            known = known or rng.random() < learn
        seqs.append(np.asarray(obs, dtype=float))
    return seqs


def brute_forward(seq, prior, learn, guess, slip):
    """Textbook BKT update, one answer at a time."""
    p, preds = prior, []
    for o in seq:
        preds.append(p * (1 - slip) + (1 - p) * guess)
        post = p * (1 - slip) / preds[-1] if o else p * slip / (1 - preds[-1])
        p = post + (1 - post) * learn
    return np.array(preds), p


def test_em_recovers_simulated_parameters():
    truth = [(0.3, 0.15, 0.2, 0.1), (0.6, 0.05, 0.25, 0.08)]
    seqs, skills = [], []
    for k, t in enumerate(truth):
        s = simulate(2500, *t, seed=k)
        seqs += s
        skills += [k] * len(s)
    params, loglik, _ = bkt.fit(seqs, skills, 2)
    fitted = params[[0, 1, 3, 4]].T
    assert np.all(np.isfinite(loglik))
    assert np.allclose(fitted, np.array(truth), atol=0.04), fitted


def test_forward_matches_textbook_update():
    seqs = simulate(5, 0.4, 0.2, 0.2, 0.1, seed=3)
    params = np.array([[0.4, 0.3], [0.2, 0.1], [0.0, 0.0], [0.2, 0.25], [0.1, 0.05]])
    skills = [0, 1, 0, 1, 0]
    per_chain, mastery, _ = bkt.predict(seqs, skills, params)
    for seq, k, preds, m in zip(seqs, skills, per_chain, mastery, strict=True):
        expected, final = brute_forward(seq, params[0, k], params[1, k], params[3, k], params[4, k])
        assert np.allclose(preds, expected)
        assert m == pytest.approx(final)


def test_shipped_parameters_cover_assistments_skills():
    table = bkt.shipped_params()
    assert len(table.skills) > 100
    for p in table.skills.values():
        assert 0 < p.guess <= 0.5 and 0 < p.slip <= 0.5 and 0 <= p.prior <= 1


def sample_rows():
    path = resources.files("verticals_tutor").joinpath("samples/attempts.csv")
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_mastery_task_on_sample_log():
    task = TutorMastery()
    params = TutorMastery.Params()
    items = [TutorMastery.Input(**i) for i in task.read_items(sample_rows(), params)]
    assert len(items) == 12 and all(len({a.skill for a in i.attempts}) == 3 for i in items)
    ctx = RunContext(job_id="t", params=params)
    outs = task.run(items, {}, ctx)
    assert len(outs) == 12
    for out in outs:
        for s in out.skills:
            assert 0 <= s.mastery <= 1 and 0 <= s.p_next_correct <= 1
        if out.recommended_skill is not None:
            assert out.recommended_skill in {s.skill for s in out.skills if not s.mastered}
    summary = task.summarize(outs, ctx)
    assert summary["students"] == 12
    assert summary["students_at_risk_count"] == sum(o.at_risk for o in outs)


def test_mastery_rises_with_correct_answers():
    task = TutorMastery()
    ctx = RunContext(job_id="t", params=TutorMastery.Params())
    good = TutorMastery.Input(student="a", attempts=[{"skill": "7", "correct": 1}] * 6)
    bad = TutorMastery.Input(student="b", attempts=[{"skill": "7", "correct": 0}] * 6)
    out_good, out_bad = task.run([good, bad], {}, ctx)
    assert out_good.skills[0].mastery > 0.9 > 0.2 > out_bad.skills[0].mastery


def test_unsorted_log_is_rejected_or_grouped_in_memory():
    rows = [{"student": "a", "skill": "1", "correct": 1}, {"student": "b", "skill": "1", "correct": 0},
            {"student": "a", "skill": "1", "correct": 0}]
    task = TutorMastery()
    with pytest.raises(ValueError, match="not grouped by student"):
        list(task.read_items(rows, TutorMastery.Params()))
    items = list(task.read_items(rows, TutorMastery.Params(sorted_input=False)))
    assert [len(i["attempts"]) for i in items] == [2, 1]


def test_timestamps_order_attempts_and_bad_rows_fail_validation():
    rows = [{"user_id": "a", "skill_name": "1", "correct": 1, "timestamp": "2"},
            {"user_id": "a", "skill_name": "1", "correct": 0, "timestamp": "1"}]
    (item,) = TutorMastery().read_items(rows, TutorMastery.Params())
    assert [a["correct"] for a in item["attempts"]] == [0, 1]
    with pytest.raises(ValidationError):
        TutorMastery.Input(student="x", attempts=[{"skill": "1", "correct": "maybe"}])


def test_predictions_option_gives_p_correct_before_every_attempt():
    task = TutorMastery()
    attempts = [{"skill": "7", "correct": c} for c in (0, 0, 1, 1, 1, 1)] + [{"skill": "82", "correct": 1}]
    item = TutorMastery.Input(student="a", attempts=attempts)
    (out,) = task.run([item], {}, RunContext(job_id="t", params=TutorMastery.Params(predictions=True)))
    preds = out.predictions
    assert [p.attempt for p in preds] == list(range(1, 8)) and [p.skill for p in preds] == ["7"] * 6 + ["82"]
    assert [p.correct for p in preds] == [bool(a["correct"]) for a in attempts]
    assert all(0 < p.p_correct < 1 for p in preds)
    assert preds[5].p_correct > preds[2].p_correct  # rises with a run of correct answers
    # causal: changing the last answer changes no prediction, changing the first changes later ones only
    flipped = TutorMastery.Input(student="a", attempts=[*attempts[:-1], {"skill": "82", "correct": 0}])
    (out2,) = task.run([flipped], {}, RunContext(job_id="t", params=TutorMastery.Params(predictions=True)))
    assert [p.p_correct for p in out2.predictions] == [p.p_correct for p in preds]
    first = TutorMastery.Input(student="a", attempts=[{"skill": "7", "correct": 1}, *attempts[1:]])
    (out3,) = task.run([first], {}, RunContext(job_id="t", params=TutorMastery.Params(predictions=True)))
    assert out3.predictions[0].p_correct == preds[0].p_correct and out3.predictions[1].p_correct > preds[1].p_correct
    (plain,) = task.run([item], {}, RunContext(job_id="t", params=TutorMastery.Params()))
    assert plain.predictions is None


def test_next_answer_model_fits_and_ranks_held_out_students():
    """Fit on 300 students of the ASSISTments file, score 100 others: far better than chance."""
    from fit_mastery import by_student, fit, score
    from semeval import DEFAULT_DATA
    from verticals_tutor.kt import KTModel

    path = DEFAULT_DATA / "assistments2009_train_long.csv"
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            student = line.split(",", 1)[0]
            if student.isdigit() and int(student) < 400:
                rows.append(line)
    tmp = [tuple(r.strip().split(",")) for r in rows]
    students = by_student([(s, k, int(c)) for s, k, c in tmp])
    train = {s: a for s, a in students.items() if int(s) < 300}
    test = {s: a for s, a in students.items() if int(s) >= 300}
    result = score(KTModel(fit(train)), test)
    assert result["auc"] > 0.75 and result["rmse"] < 0.45, result


def test_folder_export_writes_a_mastery_curve_per_student():
    import xml.etree.ElementTree as ET

    task = TutorMastery()
    params = TutorMastery.Params(predictions=True)
    item = TutorMastery.Input(student="st<1>", attempts=[{"skill": "7", "correct": c} for c in (0, 1, 1)]
                              + [{"skill": "82", "correct": 0}])
    (out,) = task.run([item], {}, RunContext(job_id="t", params=params))
    files = task.files(item, out)
    assert list(files) == ["mastery_curves/st_1_.svg"]
    svg = ET.fromstring(files["mastery_curves/st_1_.svg"])
    ns = "{http://www.w3.org/2000/svg}"
    assert len(svg.findall(f"{ns}polyline")) == 2 and len(svg.findall(f"{ns}circle")) == 4
    (plain,) = task.run([item], {}, RunContext(job_id="t", params=TutorMastery.Params()))
    assert task.files(item, plain) == {}
