"""Safe Harbor scoring of de-identification, and the evaluator ``verticals eval medical.deidentify`` uses.

Rules (the same for the PhysioNet notes and the generated PII sets):

- **Safe Harbor gold**: every gold span is PHI except ``DateYear`` (a year alone) and an ``Age`` under 90.
  Non-PHI gold spans are not counted in recall; predicted characters over them are false positives.
- **Found**: a gold span is found when every non-space character of it is covered by predicted spans of any
  category (a half-masked name is a miss: the other half leaks); *touched* when any predicted span overlaps it.
- **Span precision**: a predicted span is correct when it overlaps a Safe Harbor gold span.
- **Character level**: non-space characters inside gold PHI vs inside predicted spans; character precision is
  the share of masked characters that are PHI (what a researcher loses of the clinical text).

Recall is reported per gold label (PhysioNet labels: ``HCPName`` = clinicians, ``RelativeProxyName`` =
relatives, ``Location``, ``Date``...; generated sets: our categories), plus ``names`` (every name label).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from verticals.contract.evaluators import Evaluator, Record, Scores

NAME_LABELS = frozenset({"PTName", "PTNameInitial", "RelativeProxyName", "HCPName", "NAME"})


def is_phi(label: str, value: str) -> bool:
    """Safe Harbor: a year alone and an age under 90 are not PHI (``value``: the span's text)."""
    if label == "DateYear":
        return False
    if label in ("Age", "AGE"):
        digits = re.sub(r"\D", "", value)
        return bool(digits) and int(digits) >= 90
    return True


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def score_notes(texts: Sequence[str], golds: Sequence[Sequence[tuple[int, int, str]]],
                predicted: Sequence[Sequence[tuple[int, int, str]]]) -> dict[str, Any]:
    """Counts and figures over a set of notes: ``golds`` and ``predicted`` are (start, end, label) per note.

    Returns ``metrics`` (recall, touched, span_precision, char_precision, char_recall, token_precision,
    token_recall, names_recall, gold_spans, predicted_spans), ``labels`` (per gold label: gold, recall,
    touched), ``categories`` (per predicted category: predicted, precision) and ``missed``/``spurious``
    (note index, start, end, label) for callers allowed to look at errors.
    """
    gold_n: Counter[str] = Counter()
    found: Counter[str] = Counter()
    touched: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    pred_ok: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    missed: list[tuple[int, int, int, str]] = []
    spurious: list[tuple[int, int, int, str]] = []
    for index, (text, gold_all, preds) in enumerate(zip(texts, golds, predicted, strict=True)):
        mask = bytearray(len(text))
        for start, end, _ in preds:
            mask[start:end] = b"\x01" * max(0, min(end, len(text)) - start)
        gold = [g for g in gold_all if is_phi(g[2], text[g[0]:g[1]])]
        gmask = bytearray(len(text))
        for start, end, _ in gold:
            gmask[start:end] = b"\x01" * (end - start)
        for start, end, label in gold:
            gold_n[label] += 1
            inside = [i for i in range(start, end) if not text[i].isspace()]
            ok = all(mask[i] for i in inside)
            found[label] += ok
            touched[label] += any(mask[start:end])
            if not ok:
                missed.append((index, start, end, label))
        for start, end, category in preds:
            pred_n[category] += 1
            hit = any(start < g_end and g_start < end for g_start, g_end, _ in gold)
            pred_ok[category] += hit
            if not hit:
                spurious.append((index, start, end, category))
        for i, ch in enumerate(text):
            if ch.isspace():
                continue
            chars["tp"] += bool(mask[i] and gmask[i])
            chars["fp"] += bool(mask[i] and not gmask[i])
            chars["fn"] += bool(gmask[i] and not mask[i])
        for m in re.finditer(r"\w+", text):
            is_gold, is_pred = any(gmask[m.start():m.end()]), any(mask[m.start():m.end()])
            tokens["tp"] += is_gold and is_pred
            tokens["fp"] += is_pred and not is_gold
            tokens["fn"] += is_gold and not is_pred
    labels = {label: {"gold": gold_n[label], "recall": _ratio(found[label], gold_n[label]),
                      "touched": _ratio(touched[label], gold_n[label])}
              for label in sorted(gold_n, key=lambda k: (-gold_n[k], k))}
    names = [k for k in gold_n if k in NAME_LABELS]
    total, n_pred = sum(gold_n.values()), sum(pred_n.values())
    metrics = {
        "recall": _ratio(sum(found.values()), total),
        "touched": _ratio(sum(touched.values()), total),
        "names_recall": _ratio(sum(found[k] for k in names), sum(gold_n[k] for k in names)),
        "span_precision": _ratio(sum(pred_ok.values()), n_pred),
        "char_precision": _ratio(chars["tp"], chars["tp"] + chars["fp"]),
        "char_recall": _ratio(chars["tp"], chars["tp"] + chars["fn"]),
        "token_precision": _ratio(tokens["tp"], tokens["tp"] + tokens["fp"]),
        "token_recall": _ratio(tokens["tp"], tokens["tp"] + tokens["fn"]),
        "gold_spans": total, "predicted_spans": n_pred,
    }
    categories = {c: {"predicted": pred_n[c], "precision": _ratio(pred_ok[c], pred_n[c])}
                  for c in sorted(pred_n, key=lambda k: (-pred_n[k], k))}
    return {"metrics": metrics, "labels": labels, "categories": categories, "missed": missed, "spurious": spurious}


def _spans(value: Any) -> list[tuple[int, int, str]]:
    out = []
    for span in value or []:
        if isinstance(span, dict) and "start" in span and "end" in span:
            label = span.get("label") or span.get("category") or ""
            out.append((int(span["start"]), int(span["end"]), str(label)))
    return out


class SafeHarborEvaluator(Evaluator):
    """``verticals eval medical.deidentify notes.jsonl``: Safe Harbor recall (every character covered), character
    and span precision, recall per gold label (see the module doc). Rows need ``text`` and gold ``spans``
    (``start``, ``end``, ``label``); the note's text is used for the character figures and not stored with the run.
    """

    kind = "safe-harbor-spans"
    main_metric = "recall"

    def __init__(self, gold_field: str = "spans", output_field: str = "spans", text_field: str = "text"):
        super().__init__(gold_field, output_field)
        self.text_field = text_field

    def gold(self, item_input: dict[str, Any], gold_field: str) -> Any:
        from verticals.contract.evaluators import pluck

        return {"spans": _spans(pluck(item_input, gold_field)), "text": str(item_input.get(self.text_field) or "")}

    def score(self, records: Sequence[Record]) -> Scores:
        texts, golds, preds, wrong = [], [], [], []
        for record in records:
            gold = record.gold or {"spans": [], "text": ""}
            texts.append(gold["text"])
            golds.append(gold["spans"])
            preds.append([] if record.failed else _spans(record.predicted))
        result = score_notes(texts, golds, preds)
        missed_in = {i for i, *_ in result["missed"]}
        spurious_in = {i for i, *_ in result["spurious"]}
        wrong = [r.seq for i, r in enumerate(records) if i in missed_in or i in spurious_in]
        # NaN (nothing to count) is left out: stored runs are JSON
        metrics = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result["metrics"].items() if v == v}
        metrics.update(n=len(records), failed=sum(1 for r in records if r.failed))
        for category, row in result["categories"].items():
            metrics[f"span_precision.{category}"] = round(row["precision"], 4)
        per_class = {label: {"recall": round(row["recall"], 4), "touched": round(row["touched"], 4),
                             "support": row["gold"]} for label, row in result["labels"].items()}
        return Scores(metrics, per_class, None, wrong)

    def compact(self, value: Any) -> Any:
        spans = value["spans"] if isinstance(value, dict) else _spans(value)
        return [[s, e, label] for s, e, label in spans]
