"""Short-answer grading features and the small classifier head over them.

Features compare the student answer with the reference answers and the
question: MiniLM cosine similarities, content-word overlap, key-concept
coverage, negation mismatch, length ratio. The head is a multinomial logistic
regression (3-way: correct / contradictory / incorrect; 2-way is read off it as
P(correct)) trained by ``python -m verticals_tutor.train_grader`` and shipped as
``weights/grader.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from verticals_tutor import text as tx

LABELS_3WAY = ("correct", "contradictory", "incorrect")
DONT_KNOW = ("don't know", "dont know", "do not know", "no idea", "not sure", "idk")

FEATURE_NAMES = (
    "cos_max", "cos_mean", "cos_question", "cos_margin", "recall_new_max", "recall_all_max", "precision",
    "concept_coverage", "neg_student", "neg_reference", "neg_mismatch", "log_len_ratio", "log_len",
    "novelty", "dont_know", "cos_x_recall", "neg_mismatch_x_cos",
)


@dataclass
class GradeCase:
    question: str
    references: list[str]
    answer: str
    concepts: list[str] | None = None


@dataclass
class CaseAnalysis:
    features: np.ndarray
    best_reference: int
    concepts: list[str]
    matched: list[str]
    missing: list[str]
    negation_mismatch: bool


def analyse(cases: list[GradeCase], encoder: Any) -> list[CaseAnalysis]:
    """Compute the feature vector (and concept matches) of every case; one encoder call for all texts."""
    texts: dict[str, int] = {}
    for case in cases:
        for t in (case.question, case.answer, *case.references):
            texts.setdefault(t, len(texts))
    ordered = list(texts)
    vectors = encoder.embed(ordered) if ordered else np.zeros((0, 1), dtype=np.float32)
    out = []
    for case in cases:
        a = vectors[texts[case.answer]]
        q = vectors[texts[case.question]]
        refs = np.stack([vectors[texts[r]] for r in case.references])
        cos_refs = refs @ a
        cos_q = float(q @ a)
        best = int(np.argmax(cos_refs))
        answer_stems = set(tx.content_stems(case.answer))
        question_stems = set(tx.content_stems(case.question))
        recall_new = [tx.overlap_recall(r, case.answer, exclude=case.question) for r in case.references]
        recall_all = [tx.overlap_recall(r, case.answer) for r in case.references]
        # the best reference for explanations: most similar, ties broken by lexical recall
        best = int(np.argmax(cos_refs + 0.5 * np.asarray(recall_new)))
        ref_stems = set().union(*(tx.content_stems(r) for r in case.references))
        answer_list = tx.content_stems(case.answer)
        precision = (sum(s in ref_stems or s in question_stems for s in answer_list) / len(answer_list)
                     if answer_list else 0.0)
        novelty = (sum(s not in ref_stems and s not in question_stems for s in answer_list) / len(answer_list)
                   if answer_list else 1.0)
        concepts = list(case.concepts) if case.concepts else tx.concepts_from_reference(
            case.references[best], case.question)
        matched = [c for c in concepts if tx.concept_present(c, answer_stems)]
        missing = [c for c in concepts if c not in matched]
        coverage = len(matched) / len(concepts) if concepts else 0.0
        neg_a = tx.negation_count(case.answer) > 0
        neg_r = tx.negation_count(case.references[best]) > 0
        mismatch = neg_a != neg_r
        n_a = len(tx.tokens(case.answer))
        n_r = len(tx.tokens(case.references[best]))
        low = case.answer.lower()
        cos_max = float(cos_refs.max())
        features = np.array([
            cos_max, float(cos_refs.mean()), cos_q, cos_max - cos_q, max(recall_new), max(recall_all), precision,
            coverage, float(neg_a), float(neg_r), float(mismatch), math.log((n_a + 1) / (n_r + 1)),
            math.log(n_a + 1), novelty, float(any(k in low for k in DONT_KNOW)), cos_max * max(recall_new),
            float(mismatch) * cos_max,
        ], dtype=np.float64)
        out.append(CaseAnalysis(features, best, concepts, matched, missing, mismatch))
    return out


class GraderHead:
    """Standardise, then a softmax over ``labels``; weights from ``weights/grader.json``."""

    def __init__(self, config: dict[str, Any]):
        if tuple(config["features"]) != FEATURE_NAMES:
            raise ValueError("grader weights were trained on other features; retrain with "
                             "python -m verticals_tutor.train_grader")
        self.config = config
        self.labels = tuple(config["labels"])
        self.mean = np.asarray(config["mean"], dtype=np.float64)
        self.scale = np.asarray(config["scale"], dtype=np.float64)
        self.weight = np.asarray(config["weight"], dtype=np.float64)
        self.bias = np.asarray(config["bias"], dtype=np.float64)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(features) - self.mean) / self.scale
        logits = z @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


@lru_cache(maxsize=1)
def shipped_head() -> GraderHead:
    raw = resources.files("verticals_tutor").joinpath("weights/grader.json").read_text(encoding="utf-8")
    return GraderHead(json.loads(raw))


def decide(proba: np.ndarray, labels: tuple[str, ...], threshold: float = 0.5) -> tuple[str, str, float]:
    """The one grading decision, from the 3-way distribution: ``(label_2way, label_3way, score)``.

    Rule: ``score`` = P(correct); the answer is *correct* (2-way and 3-way) iff ``score >= threshold``;
    otherwise the 3-way label is the likelier of *contradictory* and *incorrect*. So ``label_3way ==
    "correct"`` exactly when ``label_2way == "correct"``, and the feedback (written from the label) agrees.
    """
    score = float(proba[labels.index("correct")])
    if score >= threshold:
        return "correct", "correct", score
    wrong = [k for k in range(len(labels)) if labels[k] != "correct"]
    return "incorrect", labels[max(wrong, key=lambda k: proba[k])], score


def feedback_line(label: str, matched: list[str], missing: list[str], negation_mismatch: bool) -> str:
    """One line a teacher can check: why this label."""
    if label == "correct":
        if matched:
            return f"Correct: covers {', '.join(matched[:3])}."
        return "Correct: matches a reference answer."
    if label == "contradictory":
        why = " (a negation differs from the reference)" if negation_mismatch else ""
        hint = f"; revisit {missing[0]}" if missing else ""
        return f"Contradicts the reference answer{why}{hint}."
    if missing:
        return f"Incomplete or off target: missing {', '.join(missing[:3])}."
    return "Incorrect: does not match the reference answers."
