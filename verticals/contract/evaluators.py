"""How a task is scored against gold labels: the evaluator API (pure computation, no I/O).

A task declares ``evaluator = ClassificationEvaluator(...)`` (or ``SpanEvaluator``, ``ProbabilityEvaluator``,
``LeakEvaluator``);
``verticals eval`` runs the task through the job engine, then hands the evaluator one :class:`Record` per item
(gold from the item's input row, prediction from its output) and stores what :meth:`Evaluator.score` returns.

Rules stated once, here:

- **Failed items count against the model**: a classification item that failed is wrong (predicted ``None``);
  a span item that failed found nothing; a probability item that failed is left out of AUC/RMSE and counted in
  ``failed``.
- **Spans overlap**: a gold span is *found* when a predicted span overlaps it by at least one character,
  whatever the predicted label (for de-identification, masking under another category still protects);
  a predicted span is *correct* when it overlaps some gold span. Recall per category is by the gold label,
  precision per category by the predicted label. F2 weighs recall twice as much as precision. A *typed*
  span evaluator (``typed=True``) also requires the labels to be equal (entity extraction: the category and
  assertion a task gives a span are part of the answer).
- **Macro-F1** is the mean of the per-label F1 scores (:func:`label_scores`, :func:`macro_f1`): by default over
  the labels that occur in the gold values (a label no gold item has is not averaged in), or over every label
  named (``unsupported=True``, as scikit-learn's ``f1_score(labels=..., average="macro")``).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Record:
    """One scored item: ``key`` identifies it across runs (a hash of its input), ``seq`` within the job."""

    key: str
    seq: int
    gold: Any
    predicted: Any
    failed: bool = False


@dataclass
class Scores:
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, Any] | None = None
    wrong: list[int] = field(default_factory=list)  # seqs of the items the model got wrong


class Evaluator:
    """Base class: ``gold_field`` is the input column with the gold value, ``output_field`` the output's field.

    ``job_params``: task parameters every evaluation job of the task runs with (under the parameters the caller
    gives), for a task whose scored field is optional output (``tutor.mastery``'s predictions).
    """

    kind = "base"
    main_metric = "accuracy"

    def __init__(self, gold_field: str, output_field: str, job_params: Mapping[str, Any] | None = None):
        self.gold_field = gold_field
        self.output_field = output_field
        self.job_params: dict[str, Any] = dict(job_params or {})

    def gold(self, item_input: dict[str, Any], gold_field: str) -> Any:
        return pluck(item_input, gold_field)

    def predicted(self, output: dict[str, Any] | None) -> Any:
        return None if output is None else pluck(output, self.output_field)

    def score(self, records: Sequence[Record]) -> Scores:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"kind": self.kind, "gold_field": self.gold_field,
                                     "output_field": self.output_field, "main_metric": self.main_metric}
        if self.job_params:
            described["job_params"] = dict(self.job_params)
        return described

    def compact(self, value: Any) -> Any:
        """What of a gold or predicted value is kept in the stored run (for show/compare)."""
        return value


def pluck(value: Any, path: str) -> Any:
    """``a.b`` reads a nested field; ``a.*.b`` reads ``b`` of every element of the list ``a`` (a list back)."""
    head, _, rest = path.partition(".")
    if head == "*":
        if not isinstance(value, list):
            return None
        return [pluck(element, rest) if rest else element for element in value]
    if not isinstance(value, dict):
        return None
    inner = value.get(head)
    return pluck(inner, rest) if rest else inner


def label_scores(gold: Sequence[Any], predicted: Sequence[Any], labels: Sequence[str],
                 digits: int | None = None) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support (the number of gold values) of each label, from paired gold and
    predicted values (a predicted ``None``, a failed item, matches no label); rounded to ``digits`` when given."""
    pairs = list(zip(gold, predicted, strict=True))
    out: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for g, p in pairs if g == p == label)
        support = sum(1 for g, _ in pairs if g == label)
        claimed = sum(1 for _, p in pairs if p == label)
        precision = tp / claimed if claimed else 0.0
        recall = tp / support if support else 0.0
        f1 = _f(1, precision, recall)
        if digits is not None:
            precision, recall, f1 = round(precision, digits), round(recall, digits), round(f1, digits)
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def macro_average(scores: dict[str, dict[str, float]], unsupported: bool = False) -> float:
    """The mean F1 of :func:`label_scores`' labels: those with gold support, or all of them (``unsupported``)."""
    averaged = [s["f1"] for s in scores.values() if unsupported or s["support"]]
    return sum(averaged) / len(averaged) if averaged else 0.0


def macro_f1(gold: Sequence[Any], predicted: Sequence[Any], labels: Sequence[str] | None = None,
             unsupported: bool = False) -> float:
    """Macro-F1 of paired values over ``labels`` (default: the gold labels); labels without gold support are
    left out unless ``unsupported`` (then they count, with F1 0 when predicted or not: scikit-learn's rule)."""
    named = list(labels) if labels is not None else sorted({str(g) for g in gold if g is not None})
    return macro_average(label_scores(gold, predicted, named), unsupported=unsupported)


def _f(beta: float, precision: float, recall: float) -> float:
    if precision <= 0 and recall <= 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall) if (b2 * precision + recall) else 0.0


class ClassificationEvaluator(Evaluator):
    """Accuracy, macro and weighted F1, per-class precision/recall/F1, confusion matrix."""

    kind = "classification"

    def __init__(self, gold_field: str = "label", output_field: str = "label", labels: Sequence[str] | None = None,
                 main_metric: str = "macro_f1"):
        super().__init__(gold_field, output_field)
        self.labels = tuple(labels) if labels else None
        self.main_metric = main_metric

    def gold(self, item_input: dict[str, Any], gold_field: str) -> Any:
        value = pluck(item_input, gold_field)
        return None if value is None else str(value).strip()

    def score(self, records: Sequence[Record]) -> Scores:
        scored = [r for r in records if r.gold not in (None, "")]
        labels = list(self.labels or sorted({r.gold for r in scored} | {r.predicted for r in scored
                                                                         if r.predicted is not None}))
        confusion: dict[str, Counter[str]] = {label: Counter() for label in labels}
        for record in scored:
            confusion.setdefault(record.gold, Counter())[record.predicted if record.predicted is not None
                                                         else "(failed)"] += 1
        # per-label figures rounded before they are averaged: the stored macro-F1 is the mean of the table's F1s
        per_class = label_scores([r.gold for r in scored], [r.predicted for r in scored], labels, digits=4)
        n = len(scored)
        correct = sum(1 for r in scored if r.predicted == r.gold)
        macro = macro_average(per_class)
        weighted = sum(per_class[label]["f1"] * per_class[label]["support"] for label in labels) / n if n else 0.0
        metrics = {"accuracy": round(correct / n, 4) if n else 0.0, "macro_f1": round(macro, 4),
                   "weighted_f1": round(weighted, 4), "n": n, "failed": sum(1 for r in scored if r.failed),
                   "unlabelled": len(records) - n}
        columns = labels + (["(failed)"] if any(r.predicted is None for r in scored) else [])
        matrix = {"labels": labels, "columns": columns,
                  "rows": [[confusion.get(g, Counter())[p] for p in columns] for g in labels]}
        return Scores(metrics, per_class, matrix, [r.seq for r in scored if r.predicted != r.gold])


def _spans(value: Any, label_fields: Sequence[str] | None = None) -> list[tuple[int, int, str]]:
    spans = []
    for span in value or []:
        if isinstance(span, dict) and "start" in span and "end" in span:
            if label_fields:
                label = ":".join(str(span.get(name) or "") for name in label_fields)
            else:
                label = span.get("label") or span.get("category") or span.get("type") or ""
            spans.append((int(span["start"]), int(span["end"]), str(label)))
    return spans


class SpanEvaluator(Evaluator):
    """Character-span detection: recall, precision and F2, overall and per category (rule in the module doc).

    ``label_map`` maps gold labels onto the task's categories (e.g. PTName -> NAME); gold labels mapped to
    ``None`` are not scored (e.g. a year alone is not Safe Harbor PHI). A span's label is its ``label``,
    ``category`` or ``type`` field, or with ``label_fields`` those fields joined by ``:`` (``("category",
    "assertion")`` gives ``PROBLEM:absent``). ``typed``: a span counts only against one of the same label.
    """

    kind = "spans"
    main_metric = "recall"

    def __init__(self, gold_field: str = "spans", output_field: str = "entities",
                 label_map: dict[str, str | None] | None = None, label_fields: Sequence[str] | None = None,
                 typed: bool = False, main_metric: str = "recall"):
        super().__init__(gold_field, output_field)
        self.label_map = label_map or {}
        self.label_fields = tuple(label_fields) if label_fields else None
        self.typed = typed
        self.main_metric = main_metric

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if self.typed or self.label_fields:
            described.update(typed=self.typed, label_fields=list(self.label_fields or ()))
        return described

    def _match(self, start: int, end: int, label: str, others: list[tuple[int, int, str]]) -> bool:
        return any(os < end and start < oe and (not self.typed or label == other) for os, oe, other in others)

    def _gold_spans(self, value: Any) -> list[tuple[int, int, str]]:
        kept = []
        for start, end, label in _spans(value, self.label_fields):
            mapped = self.label_map.get(label, label)
            if mapped is not None:
                kept.append((start, end, mapped))
        return kept

    def score(self, records: Sequence[Record]) -> Scores:
        found: Counter[str] = Counter()
        total: Counter[str] = Counter()
        correct: Counter[str] = Counter()
        predicted_total: Counter[str] = Counter()
        wrong = []
        for record in records:
            gold = self._gold_spans(record.gold)
            predicted = [] if record.failed else _spans(record.predicted, self.label_fields)
            missed = False
            for start, end, label in gold:
                total[label] += 1
                if self._match(start, end, label, predicted):
                    found[label] += 1
                else:
                    missed = True
            spurious = False
            for ps, pe, label in predicted:
                predicted_total[label] += 1
                if self._match(ps, pe, label, gold):
                    correct[label] += 1
                else:
                    spurious = True
            if missed or (predicted and not gold) or (self.typed and spurious):
                wrong.append(record.seq)
        per_class = {}
        for label in sorted(set(total) | set(predicted_total)):
            recall = found[label] / total[label] if total[label] else 0.0
            precision = correct[label] / predicted_total[label] if predicted_total[label] else 0.0
            per_class[label] = {"recall": round(recall, 4), "precision": round(precision, 4),
                                "f1": round(_f(1, precision, recall), 4),
                                "f2": round(_f(2, precision, recall), 4), "support": total[label],
                                "predicted": predicted_total[label]}
        recall = sum(found.values()) / sum(total.values()) if total else 0.0
        precision = sum(correct.values()) / sum(predicted_total.values()) if predicted_total else 0.0
        metrics = {"recall": round(recall, 4), "precision": round(precision, 4),
                   "f1": round(_f(1, precision, recall), 4), "f2": round(_f(2, precision, recall), 4),
                   "gold_spans": sum(total.values()), "predicted_spans": sum(predicted_total.values()),
                   "n": len(records), "failed": sum(1 for r in records if r.failed)}
        return Scores(metrics, per_class, None, wrong)

    def compact(self, value: Any) -> Any:
        return [[s, e, label] for s, e, label in _spans(value, self.label_fields)]


_WORDS = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[^\W\d_]+")


def _words(text: str) -> list[str]:
    """Lower-cased words and numbers, a plural ``s`` dropped (``reflects`` ~ ``reflect``): how phrases match."""
    out = []
    for word in _WORDS.findall(text.lower()):
        out.append(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return out


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``text`` has the words of ``phrase`` in a row (case, punctuation and a plural ``s`` aside)."""
    wanted, words = _words(phrase), _words(text)
    return bool(wanted) and any(words[i:i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


class LeakEvaluator(Evaluator):
    """Generated text that must not give an answer away (a hint, a question, a summary for a quiz): the gold value
    of an item is the list of phrases, written for that item, any of which would give it away.

    An item is *clean* when its output text contains none of them (:func:`contains_phrase`: the phrase's words
    in a row, case, punctuation and a plural ``s`` aside); a failed item showed nothing and is not clean.
    ``clean`` (main metric) is the share of clean items; ``leaks`` counts the items whose text contains a phrase.
    """

    kind = "leak"
    main_metric = "clean"

    def __init__(self, gold_field: str = "forbidden", output_field: str = "text"):
        super().__init__(gold_field, output_field)

    def gold(self, item_input: dict[str, Any], gold_field: str) -> Any:
        value = pluck(item_input, gold_field)
        if isinstance(value, str):  # a CSV cell: phrases separated by "|"
            value = [part.strip() for part in value.split("|") if part.strip()]
        return value

    def score(self, records: Sequence[Record]) -> Scores:
        scored = [r for r in records if isinstance(r.gold, list) and r.gold]
        leaks, failed, wrong = 0, 0, []
        for record in scored:
            if record.failed or not isinstance(record.predicted, str):
                failed += 1
                wrong.append(record.seq)
            elif any(contains_phrase(record.predicted, str(phrase)) for phrase in record.gold):
                leaks += 1
                wrong.append(record.seq)
        n = len(scored)
        metrics = {"clean": round((n - leaks - failed) / n, 4) if n else 0.0,
                   "leak_rate": round(leaks / n, 4) if n else 0.0, "leaks": leaks, "n": n, "failed": failed,
                   "unlabelled": len(records) - n}
        return Scores(metrics, {}, None, wrong)


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties averaged; None with one class."""
    positives = sum(1 for y in labels if y)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    index = 0
    while index < len(order):
        end = index
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[index]]:
            end += 1
        for position in range(index, end + 1):
            ranks[order[position]] = (index + end) / 2 + 1
        index = end + 1
    rank_sum = sum(rank for rank, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


class ProbabilityEvaluator(Evaluator):
    """Probabilities of a binary outcome: AUC, RMSE, log loss, expected calibration error (10 bins).

    Gold and predicted may each be a number or a list of numbers of the same length (e.g. one probability per
    attempt of a student); ``a.*.b`` paths read a field of every list element. ``gold_from_output``: the gold
    outcome is read from the output (a task that echoes each observed outcome beside its prediction).
    """

    kind = "probability"
    main_metric = "auc"

    def __init__(self, gold_field: str = "correct", output_field: str = "probability", bins: int = 10,
                 gold_from_output: bool = False, job_params: Mapping[str, Any] | None = None):
        super().__init__(gold_field, output_field, job_params)
        self.bins = bins
        self.gold_from_output = gold_from_output

    def score(self, records: Sequence[Record]) -> Scores:
        ys: list[int] = []
        ps: list[float] = []
        for record in records:
            if record.failed or record.gold is None or record.predicted is None:
                continue
            gold = record.gold if isinstance(record.gold, list) else [record.gold]
            predicted = record.predicted if isinstance(record.predicted, list) else [record.predicted]
            for y, p in zip(gold, predicted, strict=False):
                if y is None or p is None:
                    continue
                ys.append(1 if float(y) >= 0.5 else 0)
                ps.append(min(1.0, max(0.0, float(p))))
        n = len(ys)
        auc = roc_auc(ys, ps)
        rmse = math.sqrt(sum((p - y) ** 2 for y, p in zip(ys, ps, strict=True)) / n) if n else 0.0
        eps = 1e-6
        log_loss = -sum(y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps))
                        for y, p in zip(ys, ps, strict=True)) / n if n else 0.0
        buckets: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for y, p in zip(ys, ps, strict=True):
            buckets[min(int(p * self.bins), self.bins - 1)].append((y, p))
        ece = sum(len(b) / n * abs(sum(y for y, _ in b) / len(b) - sum(p for _, p in b) / len(b))
                  for b in buckets.values()) if n else 0.0
        calibration = {f"{k / self.bins:.1f}-{(k + 1) / self.bins:.1f}": {
            "n": len(b), "predicted": round(sum(p for _, p in b) / len(b), 4),
            "observed": round(sum(y for y, _ in b) / len(b), 4)} for k, b in sorted(buckets.items())}
        metrics = {"auc": round(auc, 4) if auc is not None else float("nan"), "rmse": round(rmse, 4),
                   "log_loss": round(log_loss, 4), "ece": round(ece, 4), "n": n,
                   "items": len(records), "failed": sum(1 for r in records if r.failed)}
        return Scores(metrics, calibration, None, [])

    def compact(self, value: Any) -> Any:
        if isinstance(value, list):
            return [round(float(v), 4) if isinstance(v, float) else v for v in value]
        return round(float(value), 4) if isinstance(value, float) else value
