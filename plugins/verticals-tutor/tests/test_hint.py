import numpy as np
import pytest
from verticals_tutor.hints import leak_check
from verticals_tutor.tasks import TutorHint

from verticals import RunContext

Q = "Why do plants need sunlight?"
REF = "Plants use light energy to make food by photosynthesis."


def test_leak_check_flags_the_answer_and_passes_a_question():
    v = np.ones(4) / 2
    leaked = leak_check("They make food by photosynthesis using light energy.", REF, Q, "To stay warm.", v, v * 0,
                        max_overlap=0.5, max_similarity=0.8)
    assert leaked.leaked and leaked.overlap > 0.8
    safe = leak_check("What do plants do with the energy they get?", REF, Q, "To stay warm.", v, v * 0,
                      max_overlap=0.5, max_similarity=0.8)
    assert not safe.leaked
    by_similarity = leak_check("Something else.", REF, Q, "", v, v, max_overlap=0.5, max_similarity=0.8)
    assert by_similarity.leaked


@pytest.mark.slow
def test_hints_are_generated_and_guarded(host):
    task = TutorHint()
    items = [TutorHint.Input(question=Q, reference_answer=REF, answer="To stay warm.", level=1),
             TutorHint.Input(question=Q, reference_answer=REF, answer="To stay warm.", level=3)]
    models = {"llm": host.get("smollm2"), "encoder": host.get("minilm")}
    outs = task.run(items, models, RunContext(job_id="t", params=TutorHint.Params(max_new_tokens=16)))
    assert len(outs) == 2
    for o in outs:
        assert o.hint and o.path in {"llm", "llm-regenerated", "template"}
        assert o.answer_overlap < 0.5 and o.answer_similarity < 0.8
    # a guardrail so strict that every generation "leaks" must end on the template path
    strict = TutorHint.Params(max_new_tokens=8, max_similarity=0.01, regenerations=0)
    (forced,) = task.run(items[:1], models, RunContext(job_id="t", params=strict))
    assert forced.path == "template" and forced.generations == 1
