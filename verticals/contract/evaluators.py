"""How a task is scored against gold labels: the evaluator API (pure computation, no I/O).

A task declares ``evaluator = ClassificationEvaluator(...)`` (or ``SpanEvaluator``, ``ProbabilityEvaluator``);
``verticals eval`` runs the task through the job engine, then hands the evaluator one :class:`Record` per item
(gold from the item's input row, prediction from its output) and stores what :meth:`Evaluator.score` returns.

Rules stated once, here:

- **Failed items count against the model**: a classification item that failed is wrong (predicted ``None``);
  a span item that failed found nothing; a probability item that failed is left out of AUC/RMSE and counted in
  ``failed``.
- **Spans overlap**: a gold span is *found* when a predicted span overlaps it by at least one character,
  whatever the predicted label (for de-identification, masking under another category still protects);
  a predicted span is *correct* when it overlaps some gold span. Recall per category is by the gold label,
  precision per category by the predicted label. F2 weighs recall twice as much as precision.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
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
    """Base class: ``gold_field`` is the input column with the gold value, ``output_field`` the output's field."""

    kind = "base"
    main_metric = "accuracy"

    def __init__(self, gold_field: str, output_field: str):
        self.gold_field = gold_field
        self.output_field = output_field

    def gold(self, item_input: dict[str, Any], gold_field: str) -> Any:
        return pluck(item_input, gold_field)

    def predicted(self, output: dict[str, Any] | None) -> Any:
        return None if output is None else pluck(output, self.output_field)

    def score(self, records: Sequence[Record]) -> Scores:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "gold_field": self.gold_field, "output_field": self.output_field,
                "main_metric": self.main_metric}

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
        per_class: dict[str, dict[str, float]] = {}
        for label in labels:
            tp = confusion.get(label, Counter())[label]
            support = sum(confusion.get(label, Counter()).values())
            predicted = sum(row[label] for row in confusion.values())
            precision = tp / predicted if predicted else 0.0
            recall = tp / support if support else 0.0
            per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                                "f1": round(_f(1, precision, recall), 4), "support": support}
        n = len(scored)
        correct = sum(1 for r in scored if r.predicted == r.gold)
        with_support = [label for label in labels if per_class[label]["support"]]
        macro = sum(per_class[label]["f1"] for label in with_support) / len(with_support) if with_support else 0.0
        weighted = sum(per_class[label]["f1"] * per_class[label]["support"] for label in labels) / n if n else 0.0
        metrics = {"accuracy": round(correct / n, 4) if n else 0.0, "macro_f1": round(macro, 4),
                   "weighted_f1": round(weighted, 4), "n": n, "failed": sum(1 for r in scored if r.failed),
                   "unlabelled": len(records) - n}
        columns = labels + (["(failed)"] if any(r.predicted is None for r in scored) else [])
        matrix = {"labels": labels, "columns": columns,
                  "rows": [[confusion.get(g, Counter())[p] for p in columns] for g in labels]}
        return Scores(metrics, per_class, matrix, [r.seq for r in scored if r.predicted != r.gold])


def _spans(value: Any) -> list[tuple[int, int, str]]:
    spans = []
    for span in value or []:
        if isinstance(span, dict) and "start" in span and "end" in span:
            label = span.get("label") or span.get("category") or span.get("type") or ""
            spans.append((int(span["start"]), int(span["end"]), str(label)))
    return spans


class SpanEvaluator(Evaluator):
    """Character-span detection: recall, precision and F2, overall and per category (rule in the module doc).

    ``label_map`` maps gold labels onto the task's categories (e.g. PTName -> NAME); gold labels mapped to
    ``None`` are not scored (e.g. a year alone is not Safe Harbor PHI).
    """

    kind = "spans"
    main_metric = "recall"

    def __init__(self, gold_field: str = "spans", output_field: str = "entities",
                 label_map: dict[str, str | None] | None = None):
        super().__init__(gold_field, output_field)
        self.label_map = label_map or {}

    def _gold_spans(self, value: Any) -> list[tuple[int, int, str]]:
        kept = []
        for start, end, label in _spans(value):
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
            predicted = [] if record.failed else _spans(record.predicted)
            missed = False
            for start, end, label in gold:
                total[label] += 1
                if any(ps < end and start < pe for ps, pe, _ in predicted):
                    found[label] += 1
                else:
                    missed = True
            for ps, pe, label in predicted:
                predicted_total[label] += 1
                if any(ps < end and start < pe for start, end, _ in gold):
                    correct[label] += 1
            if missed or (predicted and not gold):
                wrong.append(record.seq)
        per_class = {}
        for label in sorted(set(total) | set(predicted_total)):
            recall = found[label] / total[label] if total[label] else 0.0
            precision = correct[label] / predicted_total[label] if predicted_total[label] else 0.0
            per_class[label] = {"recall": round(recall, 4), "precision": round(precision, 4),
                                "f2": round(_f(2, precision, recall), 4), "support": total[label],
                                "predicted": predicted_total[label]}
        recall = sum(found.values()) / sum(total.values()) if total else 0.0
        precision = sum(correct.values()) / sum(predicted_total.values()) if predicted_total else 0.0
        metrics = {"recall": round(recall, 4), "precision": round(precision, 4),
                   "f2": round(_f(2, precision, recall), 4),
                   "gold_spans": sum(total.values()), "predicted_spans": sum(predicted_total.values()),
                   "n": len(records), "failed": sum(1 for r in records if r.failed)}
        return Scores(metrics, per_class, None, wrong)

    def compact(self, value: Any) -> Any:
        return [[s, e, label] for s, e, label in _spans(value)]


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
                 gold_from_output: bool = False):
        super().__init__(gold_field, output_field)
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
