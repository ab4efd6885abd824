"""Small metrics used by the evaluation scripts and tests (macro-F1 and AUC are the contract's)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from verticals.contract.evaluators import macro_f1 as contract_macro_f1
from verticals.contract.evaluators import roc_auc


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    t, p = np.asarray(truth), np.asarray(predicted)
    return float((t == p).mean()) if len(t) else 0.0


def macro_f1(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Macro-F1 over ``labels`` (default: the gold labels), every label named counted, with F1 0 where it has no
    gold support (scikit-learn's ``average="macro"`` with ``labels``); the contract's rule, not a copy of it."""
    return contract_macro_f1(list(truth), list(predicted), labels, unsupported=True)


def auc(truth: Sequence[float], score: Sequence[float]) -> float:
    """ROC AUC by the rank-sum formula, ties averaged (the contract's :func:`roc_auc`); NaN with one class."""
    value = roc_auc([1 if float(y) == 1 else 0 for y in truth], [float(s) for s in score])
    return float("nan") if value is None else float(value)


def rmse(truth: Sequence[float], score: Sequence[float]) -> float:
    y = np.asarray(truth, dtype=float)
    s = np.asarray(score, dtype=float)
    return float(np.sqrt(np.mean((y - s) ** 2)))
