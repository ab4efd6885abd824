import pytest
from verticals_tutor.hint import TutorHint
from verticals_tutor.hints import HintContext, clean, template_hints, validate

from verticals import RunContext

Q = "Why do plants need sunlight?"
REF = "Plants use light energy to make food by photosynthesis."
GAS_Q = "What happens to the volume of a gas when it is heated at constant pressure?"
GAS_REF = "The volume increases because the particles move faster and spread out."


def reasons(hint, question=Q, reference=REF, answer="To stay warm.", similarity=0.1):
    return validate(hint, HintContext.build(question, reference, answer, None), similarity).reasons


def test_validation_rules():
    assert reasons("What do plants do with the energy they get from the Sun?") == []
    assert "key-phrase" in reasons("Think about photosynthesis: what is it for?")
    assert "reference-ngram" in reasons("Where does the light energy go?")
    assert "reference-similarity" in reasons("What else could it be?", similarity=0.9)
    # the leak reported in the issue: prompt scaffolding plus the key phrase
    leak = reasons("The student is missing the idea of: increases (For you only, never repeat it) correct answer: "
                   "the volume increases.", GAS_Q, GAS_REF, "The volume decreases.")
    assert {"scaffolding", "key-phrase"} <= set(leak)
    # affirming a wrong answer
    assert "affirmation" in reasons("The answer is that the battery is dead.", answer="the battery is dead")
    assert "affirmation" in reasons("Plants need sunlight to stay warm.")
    assert "affirmation" in reasons("That's right, well done!")
    # seen in the 200-case run: answers asserted without "the answer is"
    assert "affirmation" in reasons('The answer to this question is "25.')
    assert "affirmation" in reasons("A more precise answer would be: plants make food.")
    assert "scaffolding" in reasons("Question: why do plants need sunlight? Ask one short question.")
    assert "empty" in reasons("Why?")
    # a question about the student's own words is fine
    assert reasons("Do plants really need sunlight to stay warm?") == []
    # the question again, verbatim or nearly (two of three "validated" hints in the issue did this)
    assert "question-echo" in reasons("Why do plants need sunlight?")
    assert "question-echo" in reasons("So why do plants need the sunlight?")
    assert "question-echo" in reasons("What happens to the volume of a gas when it is heated?", GAS_Q, GAS_REF,
                                      "The volume decreases.")
    assert "question-echo" not in reasons("What do the particles of a heated gas do?", GAS_Q, GAS_REF,
                                          "The volume decreases.")


def test_templates_pass_validation_and_keep_the_answer_out():
    for question, reference, answer in ((Q, REF, "To stay warm."), (GAS_Q, GAS_REF, "The volume decreases."),
                                        ("Explain why you got a voltage reading of 1.5 for terminal 1 and the "
                                         "positive terminal.", "Terminal 1 and the positive terminal are "
                                         "separated by the gap", "because the battery is dead")):
        ctx = HintContext.build(question, reference, answer, None)
        for level in (1, 2, 3):
            first = template_hints(ctx, level)[0]
            assert validate(first, ctx, 0.2).ok, (first, validate(first, ctx, 0.2).reasons)
            assert "increase" not in first and "gap" not in first and "photosynthesis" not in first


def test_clean_keeps_the_first_question():
    assert clean('Hint: "What do you think happens next? Then the gas..."') == "What do you think happens next?"
    assert clean("Think about the energy. Then more.") == "Think about the energy."


def test_a_hint_explains_the_checks_it_passed_and_what_was_rejected_before_it():
    from verticals.contract.explain import check_explanation

    task = TutorHint()
    item = TutorHint.Input(question=Q, reference_answer=REF, answer="To stay warm.", level=1)
    params = TutorHint.Params(max_similarity=0.5)
    shown = TutorHint.Output(hint="What does a plant need light for?", path="template", level=1, answer_overlap=0.1,
                             answer_similarity=0.62, generations=2, rejected=["reference-similarity", "affirmation",
                                                                              "reference-similarity"])
    (why,) = task.explain([item], [shown], {}, RunContext(job_id="t", params=params))
    check_explanation(why, item, TutorHint.text_field)
    assert why.summary.startswith("level-1 hint from the template, after 2 rejected generation(s)")
    assert "overlap 0.10 < 0.30" in why.summary and "similarity 0.62 >= 0.50" in why.summary  # as it stands
    rules = {e.text: e.detail for e in why.evidence if e.kind == "rule"}
    assert rules == {"affirmation": "1 time(s)", "reference-similarity": "2 time(s)"}
    checks = {e.field: e.weight for e in why.evidence if e.kind == "check"}
    assert checks == {"answer_overlap": pytest.approx(0.2), "answer_similarity": pytest.approx(-0.12)}
    assert TutorHint.explains()


@pytest.mark.slow
def test_hints_are_generated_and_validated(host):
    task = TutorHint()
    items = [TutorHint.Input(question=Q, reference_answer=REF, answer="To stay warm.", level=1),
             TutorHint.Input(question=GAS_Q, reference_answer=GAS_REF, answer="The volume decreases.", level=3)]
    models = {"llm": host.get("smollm2"), "encoder": host.get("minilm")}
    reports: list[tuple[float, float | None, str | None]] = []
    outs = task.run(items, models, RunContext(job_id="t", params=TutorHint.Params(max_new_tokens=16),
                                              progress_sink=lambda *report: reports.append(report)))
    assert len(outs) == 2
    # progress per generation step: pass 1 starts at 0 of 3 steps, the prompts generated move it within the pass;
    # the notes carry counts only, never an answer or a hint
    assert reports[0] == (0.0, 3.0, "pass 1 of 2: generating 2 hint(s)")
    assert (0.5, 3.0, "pass 1 of 2: 1/2 hint(s) generated") in reports or \
        (1.0, 3.0, "pass 1 of 2: 2/2 hint(s) generated") in reports
    assert [done for done, _, _ in reports] == sorted(done for done, _, _ in reports)
    words = {w.lower().strip(".?,") for item in items for w in f"{item.answer} {item.question}".split()} | \
        {w.lower().strip(".?,") for o in outs for w in o.hint.split()}
    assert not any(word in note.split() for _, _, note in reports for word in words if len(word) > 3)
    for item, o in zip(items, outs, strict=True):
        assert o.hint and o.path in {"llm", "llm-regenerated", "template"}
        assert validate(o.hint, HintContext.build(item.question, item.reference_answer, item.answer, None),
                        o.answer_similarity).ok
        assert (o.path == "llm") == (not o.rejected)
    # a guardrail so strict that every generation is rejected must end on the template path
    strict = TutorHint.Params(max_new_tokens=8, max_similarity=0.01, regenerations=0)
    (forced,) = task.run(items[:1], models, RunContext(job_id="t", params=strict))
    assert forced.path == "template" and forced.generations == 1 and "reference-similarity" in forced.rejected
