"""tutor.grade: short answers graded against reference answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from verticals import (
    ClassificationEvaluator,
    Evidence,
    Explanation,
    ItemError,
    ModelSpec,
    RunContext,
    ServerFile,
    Task,
)
from verticals_tutor.grading import (
    MIN_BANK,
    GradeCase,
    analyse,
    answer_bank,
    bank_rows,
    cross_encoder_probabilities,
    decide,
    feedback_line,
    shipped_head,
)
from verticals_tutor.text import split_list


class GradeInput(BaseModel):
    question: str = Field(min_length=1)
    reference_answers: list[str] = Field(min_length=1, description="one or more reference answers ('a | b' in CSV)")
    answer: str = Field(description="the student's answer")
    concepts: list[str] | None = Field(None, description="rubric: key concepts ('c1 | c2' in CSV)")
    question_id: str | None = None

    _lists = field_validator("reference_answers", "concepts", mode="before")(lambda v: split_list(v) or None)

    @field_validator("reference_answers")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        value = [v for v in value if v.strip()]
        if not value:
            raise ValueError("give at least one non-empty reference answer")
        return value


class GradeOutput(BaseModel):
    label_2way: Literal["correct", "incorrect"]
    label_3way: Literal["correct", "contradictory", "incorrect"]
    score: float = Field(description="P(correct), 0-1")
    probabilities: dict[str, float]
    matched_concepts: list[str]
    missing_concepts: list[str]
    feedback: str
    similarity: float = Field(description="MiniLM cosine to the closest reference answer")
    closest_reference: int
    graded_answers: int = Field(0, description="graded answers of this question the decision used (0: reference "
                                               "answers only)")
    cross_encoder: float | None = Field(default=None, description="P(correct) from the grading cross-encoder "
                                                          "(tutor.grade-pair), when it entered the decision")
    judge: str | None = None


class GradeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(0.5, ge=0, le=1, description="P(correct) at or above which the answer is correct "
                                                         "(both labels); below it the 3-way label is the likelier "
                                                         "of contradictory and incorrect")
    judge_weight: float = Field(0.5, ge=0, le=1, description="weight of a plugged-in judge model's probabilities")
    answer_bank: ServerFile | None = Field(None, description="your graded answers (CSV/JSONL: question_id and/or "
                                                             "question, answer, label), pooled with the shipped bank")
    shipped_bank: bool = Field(True, description="use the shipped SemEval-2013 training answers as a bank")
    min_bank: int = Field(MIN_BANK, ge=1, description="graded answers a question needs before they are used")
    cross_encoder_weight: float | None = Field(None, ge=0, le=1, description="weight of the grading cross-encoder's "
                                               "probabilities (model tutor.grade-pair: question, references and "
                                               "answer read together) blended with the feature head's; default: the "
                                               "weight shipped with the head; 0 turns it off (faster)")


NLI_TO_LABEL = {"entailment": "correct", "contradiction": "contradictory", "neutral": "incorrect"}


def cross_encoder_weight(params: GradeParams) -> float:
    """The cross-encoder's blend weight for these parameters: the job's, else the shipped grader's (0)."""
    if params.cross_encoder_weight is not None:
        return params.cross_encoder_weight
    return float(shipped_head().config.get("cross_encoder_weight", 0.0))


class TutorGrade(Task[GradeInput, GradeOutput, GradeParams]):
    """Grade short answers against reference answers (MiniLM features + a logistic head trained on SemEval-2013).

    To plug in a larger judge, subclass with ``models = {"encoder": "minilm", "judge": "<spec>"}``: a
    sequence-classifier judge (an NLI cross-encoder with entailment/contradiction/neutral labels, or labels
    correct/contradictory/incorrect) scores (reference, answer) pairs; a causal-lm judge is asked for one word.
    """

    name = "tutor.grade"
    description = "Grade short answers vs reference answers: 2/3-way label, score, concepts, feedback"
    Input = GradeInput
    Output = GradeOutput
    Params = GradeParams
    models = {"encoder": "minilm", "cross_encoder": "tutor.grade-pair"}
    device = "cpu"
    chunk_size = 512
    batch_size = 128
    preview = ("answer", "label_3way", "score", "missing_concepts")
    text_field = "answer"
    # `verticals eval tutor.grade answers.csv --gold-column label_2way`
    evaluator = ClassificationEvaluator(gold_field="label_2way", output_field="label_2way",
                                        labels=("correct", "incorrect"), main_metric="accuracy")
    golden = "golden/answers.jsonl"  # 40 answers written for evaluation to SemEval training questions (README)

    def models_for(self, params: GradeParams) -> Mapping[str, str | ModelSpec]:
        """Every declared model except the cross-encoder when its weight is 0 (the shipped default): a job that
        does not blend it neither loads it nor names it in its provenance."""
        roles: dict[str, str | ModelSpec] = dict(self.models)
        if cross_encoder_weight(params) <= 0:
            roles.pop("cross_encoder", None)
        return roles

    def run(self, batch: list[GradeInput], models: Mapping[str, Any],
            ctx: RunContext[GradeParams]) -> list[GradeOutput | ItemError]:
        params = ctx.params
        head, bank_head = shipped_head(), shipped_head(bank=True)
        cases = [GradeCase(i.question, i.reference_answers, i.answer, i.concepts) for i in batch]
        analyses = analyse(cases, models["encoder"])
        bank = answer_bank(params.answer_bank, params.shipped_bank)
        entries = [bank.lookup(i.question_id, i.question) if bank is not None else None for i in batch]
        extra = bank_rows([i.answer for i in batch], analyses, entries, models["encoder"], params.min_bank)
        proba = np.stack([
            bank_head.predict_proba(np.concatenate([a.features, e]))[0] if e is not None
            else head.predict_proba(a.features)[0] for a, e in zip(analyses, extra, strict=True)])
        weight = cross_encoder_weight(params)
        cross = None
        if weight > 0 and "cross_encoder" in models:
            cross = cross_encoder_probabilities(models["cross_encoder"], cases, head.labels)
            proba = (1 - weight) * proba + weight * cross
        judge_name = None
        if "judge" in models:
            judged = judge_probabilities(models["judge"], batch, [a.best_reference for a in analyses], head.labels)
            proba = (1 - params.judge_weight) * proba + params.judge_weight * judged
            judge_name = models["judge"].spec.name
        outputs: list[GradeOutput | ItemError] = []
        correct = head.labels.index("correct")
        for row, (item, analysis, p, entry, bank_feats) in enumerate(zip(batch, analyses, proba, entries, extra,
                                                                         strict=True)):
            cross_score = round(float(cross[row, correct]), 4) if cross is not None else None
            if not item.answer.strip():
                outputs.append(GradeOutput(
                    label_2way="incorrect", label_3way="incorrect", score=0.0,
                    probabilities=dict.fromkeys(head.labels, 0.0) | {"incorrect": 1.0},
                    matched_concepts=[], missing_concepts=analysis.concepts, feedback="No answer given.",
                    similarity=0.0, closest_reference=analysis.best_reference, graded_answers=0,
                    judge=judge_name))
                continue
            label2, label3, score = decide(p, head.labels, params.threshold)
            outputs.append(GradeOutput(
                label_2way=label2, label_3way=label3,
                score=round(score, 4), probabilities={k: round(float(v), 4) for k, v in zip(head.labels, p,
                                                                                            strict=True)},
                matched_concepts=analysis.matched, missing_concepts=analysis.missing,
                feedback=feedback_line(label3, analysis.matched, analysis.missing, analysis.negation_mismatch),
                similarity=round(float(analysis.features[0]), 4), closest_reference=analysis.best_reference,
                graded_answers=len(entry.texts) if bank_feats is not None and entry is not None else 0,
                cross_encoder=cross_score, judge=judge_name))
        return outputs

    def explain(self, batch: list[GradeInput], outputs: list[GradeOutput], models: Mapping[str, Any],
                ctx: RunContext[GradeParams]) -> list[Explanation | None]:
        """The reference answer the decision leaned on (the closest one, with its cosine), the graded answers of
        the question that entered it, and the key concepts the answer has and lacks (feedback a teacher can pass
        on). Read from the grading itself: no extra model call."""
        return [grade_explanation(item, output) for item, output in zip(batch, outputs, strict=True)]


def grade_explanation(item: GradeInput, output: GradeOutput) -> Explanation:
    reference = item.reference_answers[output.closest_reference]
    evidence = [Evidence(kind="reference", field="reference_answers", text=reference[:2000],
                         weight=output.similarity, source="minilm cosine",
                         detail=f"reference answer {output.closest_reference + 1} of {len(item.reference_answers)}: "
                                "the closest to the answer (weight: cosine)")]
    if output.graded_answers:
        evidence.append(Evidence(kind="reference", field="answer bank", weight=float(output.graded_answers),
                                 source="answer bank", detail=f"{output.graded_answers} graded answers of this "
                                                              "question entered the decision (weight: how many)"))
    if output.cross_encoder is not None:
        evidence.append(Evidence(kind="reference", field="reference_answers", weight=output.cross_encoder,
                                 source="cross-encoder", detail="P(correct) of the grading cross-encoder "
                                                                "(tutor.grade-pair), which read the question, the "
                                                                "reference answers and the answer together"))
    lower = item.answer.lower()
    for concept in output.matched_concepts:
        at = lower.find(concept.lower()) if len(lower) == len(item.answer) else -1  # offsets hold after lower()
        if at >= 0 and item.answer[at:at + len(concept)].lower() != concept.lower():
            at = -1
        span = {"start": at, "end": at + len(concept), "text": item.answer[at:at + len(concept)]} if at >= 0 else \
            {"text": concept[:2000]}
        field = "answer" if at >= 0 else "concepts"
        evidence.append(Evidence(kind="field" if at < 0 else "span", field=field, weight=1.0, source="concepts",
                                 detail="a key concept of the reference the answer has", **span))
    for concept in output.missing_concepts:
        evidence.append(Evidence(kind="field", field="concepts", text=concept[:2000], weight=-1.0, source="concepts",
                                 detail="a key concept of the reference the answer lacks"))
    lacks = ", ".join(f'"{c[:40]}"' for c in output.missing_concepts[:3])
    summary = (f"{output.label_3way}, P(correct) {output.score:.2f}: closest to reference answer "
               f"{output.closest_reference + 1} (cosine {output.similarity:.2f})"
               + (f", with {output.graded_answers} graded answers" if output.graded_answers else "")
               + (f", cross-encoder P(correct) {output.cross_encoder:.2f}" if output.cross_encoder is not None
                  else "")
               + (f"; lacks {lacks}" if lacks else "; lacks no key concept"))
    return Explanation(summary=summary[:500], method="reference-similarity", target=f"label {output.label_3way}",
                       evidence=evidence)


def judge_probabilities(judge: Any, batch: list[GradeInput], best: list[int], labels: tuple[str, ...]) -> np.ndarray:
    """Probabilities over ``labels`` from a plugged-in judge model."""
    refs = [item.reference_answers[b] for item, b in zip(batch, best, strict=True)]
    out = np.zeros((len(batch), len(labels)))
    if judge.kind == "sequence-classifier":
        raw = judge.classify(refs, [i.answer for i in batch])
        for j, name in enumerate(judge.labels):
            target = NLI_TO_LABEL.get(name, name)
            if target in labels:
                out[:, labels.index(target)] += raw[:, j]
    elif judge.kind == "causal-lm":
        prompts = [f"Question: {i.question}\nReference answer: {r}\nStudent answer: {i.answer}\n"
                   "Is the student answer correct, contradictory (says the opposite), or incorrect? Reply with one "
                   "word." for i, r in zip(batch, refs, strict=True)]
        for row, text in enumerate(judge.generate(prompts, max_new_tokens=4)):
            word = text.lower()
            hit = next((lab for lab in ("contradictory", "incorrect", "correct") if lab in word), "incorrect")
            out[row, labels.index(hit)] = 1.0
    else:
        raise ValueError(f"judge model kind {judge.kind!r} is not supported (use sequence-classifier or causal-lm)")
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.maximum(total, 1e-12), 1 / len(labels))
