"""Entry point of the verticals-tutor plugin: registers the tutor tasks."""

from __future__ import annotations

import verticals

#: The grading cross-encoder: MiniLM reading (question | reference answers, student answer) as a pair, with a LoRA
#: adapter and a 3-way head trained by ``verticals train tutor.grade ... --pair-column answer`` (EVAL.md).
GRADE_PAIR_MODEL = verticals.ModelSpec(
    name="tutor.grade-pair",
    kind="sequence-classifier",
    packaged=verticals.Packaged("verticals_tutor", "heads/grade-pair-minilm-lora"),
    max_length=256,
    description="MiniLM + LoRA cross-encoder over question, references and answer (SemEval-2013 train questions)",
)


@verticals.hookimpl
def register_models(register):
    register(GRADE_PAIR_MODEL)


@verticals.hookimpl
def register_tasks(register):
    from verticals_tutor.grade import TutorGrade
    from verticals_tutor.hint import TutorHint
    from verticals_tutor.mastery import TutorMastery

    register(TutorGrade)
    register(TutorMastery)
    register(TutorHint)
