"""Short-answer grading features and the small classifier head over them.

Features compare the student answer with the reference answers and the
question: MiniLM cosine similarities, content-word overlap, key-concept
coverage, negation mismatch, length ratio. The head is a multinomial logistic
regression (3-way: correct / contradictory / incorrect; 2-way is read off it as
P(correct), see :func:`decide`) trained by ``python plugins/verticals-tutor/research/train_grader.py`` and shipped as
``weights/grader.json``.

When the question already has graded answers (an :class:`AnswerBank`: the shipped SemEval-2013 training
answers, and/or the user's own labelled file), a second head (``weights/grader_bank.json``) adds
nearest-graded-answer features: the labels of the most similar graded answers (MiniLM cosine and word
overlap), the question's share of correct answers (a per-question prior) and exact matches.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np

from verticals import ServerFileHandle
from verticals_tutor import text as tx

LABELS_3WAY = ("correct", "contradictory", "incorrect")
DONT_KNOW = ("don't know", "dont know", "do not know", "no idea", "not sure", "idk")

FEATURE_NAMES = (
    "cos_max", "cos_mean", "cos_question", "cos_margin", "recall_new_max", "recall_all_max", "precision",
    "concept_coverage", "neg_student", "neg_reference", "neg_mismatch", "log_len_ratio", "log_len",
    "novelty", "dont_know", "cos_x_recall", "neg_mismatch_x_cos",
)


BANK_FEATURE_NAMES = (
    "bank_log_n", "bank_share_correct", "bank_share_contradictory", "knn_correct", "knn_contradictory",
    "cos_max_correct", "cos_max_contradictory", "cos_max_incorrect", "cos_margin_correct", "jaccard_max_correct",
    "jaccard_max_wrong", "jaccard_margin_correct", "jaccard_knn_correct", "nearest_is_correct",
    "exact_match_correct", "exact_match_wrong",
)
#: a question needs at least this many graded answers before the bank head is used
MIN_BANK = 5
KNN = 5


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
    answer_vector: np.ndarray | None = None


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
        out.append(CaseAnalysis(features, best, concepts, matched, missing, mismatch, a))
    return out


def pair_text(question: str, references: list[str]) -> str:
    """The first text the grading cross-encoder reads: the question, then every reference answer; the student's
    answer is the second text (``[CLS] question | ref 1 | ref 2 [SEP] answer [SEP]``). Training rows
    (``research/grader_pairs.py``) and ``tutor.grade`` build it with this one function."""
    return " | ".join([question.strip(), *(r.strip() for r in references if r.strip())])


def cross_encoder_probabilities(model: Any, cases: list[GradeCase], labels: tuple[str, ...]) -> np.ndarray:
    """P(label) over ``labels`` from the grading cross-encoder (a pair classifier with correct / contradictory /
    incorrect labels), reading ``pair_text(question, references)`` with each answer."""
    raw = model.classify([pair_text(c.question, c.references) for c in cases], [c.answer or " " for c in cases])
    names = [str(name).lower() for name in model.labels]
    missing = [label for label in labels if label not in names]
    if missing:
        raise ValueError(f"the grading cross-encoder has labels {names}, not {list(labels)}")
    return np.asarray(raw, dtype=np.float64)[:, [names.index(label) for label in labels]]


def normalise(text: str) -> str:
    return " ".join(tx.tokens(text))


@dataclass
class BankEntries:
    """The graded answers of one question (labels are indices into LABELS_3WAY)."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    _vectors: np.ndarray | None = None
    _stems: list[set[str]] | None = None
    _norms: list[str] | None = None

    def prepared(self, encoder: Any) -> tuple[np.ndarray, np.ndarray, list[set[str]], list[str]]:
        if self._vectors is None or len(self._vectors) != len(self.texts):
            self._vectors = encoder.embed(self.texts)
            self._stems = [set(tx.content_stems(t)) for t in self.texts]
            self._norms = [normalise(t) for t in self.texts]
        assert self._stems is not None and self._norms is not None
        return self._vectors, np.asarray(self.labels), self._stems, self._norms


LABEL_ALIASES = {"correct": 0, "contradictory": 1, "incorrect": 2, "1": 0, "0": 2, "true": 0, "false": 2,
                 "partially_correct_incomplete": 2, "irrelevant": 2, "non_domain": 2}


class AnswerBank:
    """Graded answers per question, looked up by ``question_id`` or, failing that, by the question text."""

    def __init__(self) -> None:
        self.by_id: dict[str, BankEntries] = {}
        self.by_question: dict[str, BankEntries] = {}

    def add(self, question_id: str | None, question: str | None, answer: str, label: str) -> None:
        key = str(label).strip().lower()
        if key not in LABEL_ALIASES:
            raise ValueError(f"answer bank label {label!r}: use correct / contradictory / incorrect (or 1/0)")
        if not answer or not answer.strip():
            return
        entries = None
        if question_id:
            entries = self.by_id.setdefault(str(question_id), BankEntries())
        if question:
            qkey = normalise(question)
            if entries is None:
                entries = self.by_question.setdefault(qkey, BankEntries())
            else:
                self.by_question.setdefault(qkey, entries)
        if entries is None:
            raise ValueError("an answer bank row needs a question_id or a question")
        entries.texts.append(answer)
        entries.labels.append(LABEL_ALIASES[key])

    def lookup(self, question_id: str | None, question: str) -> BankEntries | None:
        if question_id and str(question_id) in self.by_id:
            return self.by_id[str(question_id)]
        return self.by_question.get(normalise(question))

    def merged(self, other: AnswerBank) -> AnswerBank:
        """A new bank with this bank's answers and then ``other``'s (same question: answers pooled)."""
        out = AnswerBank()
        for bank in (self, other):
            seen: set[int] = set()
            for qid, entries in bank.by_id.items():
                seen.add(id(entries))
                for t, lab in zip(entries.texts, entries.labels, strict=True):
                    out.add(qid, None, t, LABELS_3WAY[lab])
            for qtext, entries in bank.by_question.items():
                if id(entries) not in seen:
                    for t, lab in zip(entries.texts, entries.labels, strict=True):
                        out.add(None, qtext, t, LABELS_3WAY[lab])
        return out

    @classmethod
    def from_rows(cls, rows: Any) -> AnswerBank:
        """Rows with ``question_id`` and/or ``question``, ``answer`` (or ``student_answer``) and ``label``
        (or ``label_3way`` / ``label_2way``)."""
        bank = cls()
        for row in rows:
            answer = row.get("answer") or row.get("student_answer") or ""
            label = row.get("label") or row.get("label_3way") or row.get("label_2way")
            if label is None:
                raise ValueError("answer bank rows need a label (correct / contradictory / incorrect)")
            bank.add(row.get("question_id") or None, row.get("question") or None, answer, str(label))
        return bank

    @classmethod
    def from_text(cls, name: str, text: str) -> AnswerBank:
        """A labelled CSV or JSONL text (``name``: its file name, which says which)."""
        if ".jsonl" in name or ".json" in name:
            return cls.from_rows(json.loads(line) for line in text.splitlines() if line.strip())
        return cls.from_rows(csv.DictReader(io.StringIO(text, newline="")))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> AnswerBank:
        """A labelled CSV or JSONL file (optionally .gz)."""
        name = str(path)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(name, "rt", encoding="utf-8", newline="") as handle:
            if ".jsonl" in name or ".json" in name:
                return cls.from_rows(json.loads(line) for line in handle if line.strip())
            return cls.from_rows(csv.DictReader(handle))


@lru_cache(maxsize=1)
def shipped_bank() -> AnswerBank:
    """The SemEval-2013 Task 7 training answers (CC BY-SA 3.0, Dzikovska et al. 2013), per question."""
    path = resources.files("verticals_tutor").joinpath("weights/answer_bank_semeval2013.jsonl.gz")
    with resources.as_file(path) as real:
        return AnswerBank.from_file(real)


@lru_cache(maxsize=8)
def answer_bank(file: ServerFileHandle | None = None, use_shipped: bool = True) -> AnswerBank | None:
    """The bank a job grades with: the shipped one and/or a labelled file, read through the core's reader
    (a validated ``ServerFile`` parameter). Cached per file version (the handle compares equal while the file
    is unchanged), so the graded answers' embeddings are computed once per process."""
    shipped = shipped_bank() if use_shipped else None
    if file is None:
        return shipped
    name = file.name.lower().removesuffix(".gz")
    own = AnswerBank.from_text(name, file.read_text(decompress=True))
    return shipped.merged(own) if shipped is not None else own


def bank_features(vec: np.ndarray, stems: set[str], norm: str, bank_vecs: np.ndarray, bank_labels: np.ndarray,
                  bank_stems: list[set[str]], bank_norms: list[str], k: int = KNN) -> np.ndarray:
    """Nearest-graded-answer features of one answer against its question's graded answers."""
    cos = bank_vecs @ vec
    jac = np.array([len(stems & b) / max(1, len(stems | b)) for b in bank_stems])
    correct, contra, wrong = bank_labels == 0, bank_labels == 1, bank_labels == 2
    order = np.argsort(-cos, kind="stable")[:k]
    weights = np.exp((cos[order] - cos[order[0]]) / 0.05)
    weights /= weights.sum()
    by_overlap = np.argsort(-jac, kind="stable")[:k]

    def top(values: np.ndarray, mask: np.ndarray) -> float:
        return float(values[mask].max()) if mask.any() else 0.0

    exact = bank_labels[[i for i, n in enumerate(bank_norms) if n == norm]]
    return np.array([
        math.log(len(bank_labels) + 1), float(correct.mean()), float(contra.mean()),
        float(weights @ (bank_labels[order] == 0)), float(weights @ (bank_labels[order] == 1)),
        top(cos, correct), top(cos, contra), top(cos, wrong), top(cos, correct) - max(top(cos, contra),
                                                                                    top(cos, wrong)),
        top(jac, correct), top(jac, ~correct), top(jac, correct) - top(jac, ~correct),
        float((bank_labels[by_overlap] == 0).mean()), float(bank_labels[order[0]] == 0),
        float((exact == 0).mean()) if len(exact) else 0.0, float((exact != 0).mean()) if len(exact) else 0.0,
    ], dtype=np.float64)


def bank_rows(answers: list[str], analyses: list[CaseAnalysis], entries: list[BankEntries | None], encoder: Any,
              min_bank: int = MIN_BANK) -> list[np.ndarray | None]:
    """Bank features per answer (None where its question has fewer than ``min_bank`` graded answers)."""
    out: list[np.ndarray | None] = []
    for answer, analysis, bank in zip(answers, analyses, entries, strict=True):
        if bank is None or len(bank.texts) < min_bank or analysis.answer_vector is None:
            out.append(None)
            continue
        vecs, labels, stems, norms = bank.prepared(encoder)
        out.append(bank_features(analysis.answer_vector, set(tx.content_stems(answer)), normalise(answer), vecs,
                                 labels, stems, norms))
    return out


class GraderHead:
    """Standardise, then a softmax over ``labels``; weights from ``weights/grader.json`` (reference features
    only) or ``weights/grader_bank.json`` (plus the answer-bank features)."""

    def __init__(self, config: dict[str, Any]):
        if tuple(config["features"]) not in (FEATURE_NAMES, FEATURE_NAMES + BANK_FEATURE_NAMES):
            raise ValueError("grader weights were trained on other features; retrain with "
                             "python plugins/verticals-tutor/research/train_grader.py")
        self.uses_bank = len(config["features"]) > len(FEATURE_NAMES)
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


@lru_cache(maxsize=2)
def shipped_head(bank: bool = False) -> GraderHead:
    name = "weights/grader_bank.json" if bank else "weights/grader.json"
    raw = resources.files("verticals_tutor").joinpath(name).read_text(encoding="utf-8")
    return GraderHead(json.loads(raw))


def decide(proba: np.ndarray, labels: tuple[str, ...], threshold: float = 0.5
           ) -> tuple[Literal["correct", "incorrect"], Literal["correct", "contradictory", "incorrect"], float]:
    """The one grading decision, from the 3-way distribution: ``(label_2way, label_3way, score)``.

    Rule: ``score`` = P(correct); the answer is *correct* (2-way and 3-way) iff ``score >= threshold``;
    otherwise the 3-way label is the likelier of *contradictory* and *incorrect*. So ``label_3way ==
    "correct"`` exactly when ``label_2way == "correct"``, and the feedback (written from the label) agrees.
    """
    score = float(proba[labels.index("correct")])
    if score >= threshold:
        return "correct", "correct", score
    wrong = [k for k in range(len(labels)) if labels[k] != "correct"]
    likelier = labels[max(wrong, key=lambda k: proba[k])]
    return "incorrect", "contradictory" if likelier == "contradictory" else "incorrect", score


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
