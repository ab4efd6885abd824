"""Small numpy metrics used by the evaluation scripts and tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    t, p = np.asarray(truth), np.asarray(predicted)
    return float((t == p).mean()) if len(t) else 0.0


def macro_f1(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> float:
    t, p = np.asarray(truth), np.asarray(predicted)
    labels = list(labels) if labels is not None else sorted(set(t.tolist()))
    scores = []
    for label in labels:
        tp = float(((t == label) & (p == label)).sum())
        fp = float(((t != label) & (p == label)).sum())
        fn = float(((t == label) & (p != label)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def auc(truth: Sequence[float], score: Sequence[float]) -> float:
    """ROC AUC by the rank-sum formula, ties averaged."""
    y = np.asarray(truth, dtype=float)
    s = np.asarray(score, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def rmse(truth: Sequence[float], score: Sequence[float]) -> float:
    y = np.asarray(truth, dtype=float)
    s = np.asarray(score, dtype=float)
    return float(np.sqrt(np.mean((y - s) ** 2)))
