"""tutor.mastery explanations: the factors of the next-answer model add up to its logit exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from verticals_tutor import kt
from verticals_tutor.mastery import FACTORS, TutorMastery

from verticals import RunContext
from verticals.contract import check_explanation


def explain(attempts):
    task = TutorMastery()
    ctx = RunContext(job_id="t", params=TutorMastery.Params(), explain=True)
    item = TutorMastery.Input(student="s1", attempts=attempts)
    output = task.run([item], {}, ctx)[0]
    explanation = task.explain([item], [output], {}, ctx)[0]
    assert check_explanation(explanation, item, None) == explanation
    return item, output, explanation


def test_factor_contributions_add_up_to_the_models_probability():
    attempts = ([{"skill": "7", "correct": 1}, {"skill": "7", "correct": 0}, {"skill": "7", "correct": 1}]
                + [{"skill": "12", "correct": 0}] * 3)
    item, output, explanation = explain(attempts)
    skill = output.recommended_skill
    assert skill in ("7", "12") and explanation.method == "additive" and skill in explanation.target
    assert {e.field for e in explanation.evidence} == {"intercept", *FACTORS}
    logit = sum(e.weight for e in explanation.evidence)
    # the model's own P(correct) of a next attempt at the skill: the last row of its predictions
    model = kt.shipped_model()
    expected = model.predict([*[(a.skill, int(a.correct)) for a in item.attempts], (skill, 0)])[-1]
    assert math.isclose(1 / (1 + math.exp(-logit)), float(expected), abs_tol=2e-3)  # exact up to the 4-digit rounding
    assert f"{float(expected):.2f}" in explanation.summary
    weights = [abs(e.weight) for e in explanation.evidence]
    assert weights == sorted(weights, reverse=True)


def test_right_answers_raise_the_practice_and_ability_factors():
    _, _, good = explain([{"skill": "7", "correct": 1}] * 5)
    _, _, bad = explain([{"skill": "7", "correct": 0}] * 5)
    share = lambda e, f: next(x.weight for x in e.evidence if x.field == f)  # noqa: E731
    assert share(good, "ability") > share(bad, "ability")
    assert share(good, "BKT mastery") > share(bad, "BKT mastery")
    assert sum(x.weight for x in good.evidence) > sum(x.weight for x in bad.evidence)
    assert "5 right, 0 wrong" in next(x.text for x in good.evidence if x.field == "practice")
    assert np.isfinite([x.weight for x in good.evidence]).all()


@pytest.mark.slow
def test_grade_explanation_names_the_reference_leaned_on_and_the_missing_concepts():
    from verticals_tutor.grade import TutorGrade

    from verticals.core.models.host import ModelHost
    from verticals.registry import build_registry

    host = ModelHost(build_registry().models)
    task = TutorGrade()
    items = [TutorGrade.Input(question="Why do plants need light?",
                              reference_answers=["To stay warm in winter.",
                                                 "They use light energy to make food by photosynthesis."],
                              answer="Plants use the energy of light to make their food.",
                              concepts=["light energy", "food", "photosynthesis"])]
    ctx = RunContext(job_id="t", params=TutorGrade.Params(), explain=True)
    output = task.run(items, {"encoder": host.get("minilm")}, ctx)[0]
    explanation = task.explain(items, [output], {"encoder": host.get("minilm")}, ctx)[0]
    assert check_explanation(explanation, items[0], "answer") == explanation
    reference = explanation.evidence[0]
    assert reference.kind == "reference" and reference.text == items[0].reference_answers[1]  # the photosynthesis one
    assert reference.weight == output.similarity
    lacking = [e.text for e in explanation.evidence if e.weight == -1.0]
    assert lacking == output.missing_concepts and "photosynthesis" in lacking
    assert '"photosynthesis"' in explanation.summary and "reference answer 2" in explanation.summary
    food = next(e for e in explanation.evidence if e.text == "food" and e.weight == 1.0)
    assert food.kind == "span" and items[0].answer[food.start:food.end] == "food"
