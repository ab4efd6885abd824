"""Train (and evaluate) the grading head on the SemEval-2013 Task 7 training splits.

    HF_HUB_OFFLINE=1 python -m verticals_tutor.train_grader            # evaluate + write weights/grader.json
    HF_HUB_OFFLINE=1 python -m verticals_tutor.train_grader --eval-only

Evaluation holds out 20% of the *questions* (seeded, per dataset), so the
figures are on unseen questions, not only unseen answers. The shipped head is
then refit on all training questions. Needs scikit-learn (``pip install
verticals-tutor[train]``); the task itself needs only numpy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from verticals_tutor.grading import FEATURE_NAMES, LABELS_3WAY, GradeCase, GraderHead, analyse, decide
from verticals_tutor.metrics import accuracy, macro_f1
from verticals_tutor.semeval import DEFAULT_DATA, load_answers, load_questions, reference_texts

SEED = 13
WEIGHTS = Path(__file__).parent / "weights" / "grader.json"


def build_features(data_dir: Path) -> tuple[np.ndarray, list[dict], list[str]]:
    from verticals.core.models import ModelHost
    from verticals.plugins import get_registry

    questions = load_questions(data_dir)
    rows = [r for r in load_answers(data_dir) if r["question_id"] in questions]
    cases = [GradeCase(questions[r["question_id"]]["question"], reference_texts(questions[r["question_id"]]),
                       r["student_answer"]) for r in rows]
    encoder = ModelHost(get_registry().models).get("minilm")
    analyses = analyse(cases, encoder)
    return np.stack([a.features for a in analyses]), rows, [r["question_id"] for r in rows]


def question_split(rows: list[dict], fraction: float = 0.2, seed: int = SEED) -> np.ndarray:
    """Boolean mask of held-out rows: ``fraction`` of each dataset's questions."""
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for dataset in sorted({r["dataset"] for r in rows}):
        qids = sorted({r["question_id"] for r in rows if r["dataset"] == dataset})
        rng.shuffle(qids)
        held |= set(qids[: max(1, round(fraction * len(qids)))])
    return np.array([r["question_id"] in held for r in rows])


def fit_head(x: np.ndarray, y: list[str], c: float) -> dict:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=SEED)
    model.fit((x - mean) / scale, y)
    order = [list(model.classes_).index(label) for label in LABELS_3WAY]
    return {
        "features": list(FEATURE_NAMES), "labels": list(LABELS_3WAY), "mean": mean.tolist(), "scale": scale.tolist(),
        "weight": model.coef_[order].tolist(), "bias": model.intercept_[order].tolist(), "C": c,
    }


def scores(head: GraderHead, x: np.ndarray, y3: list[str], y2: list[str]) -> dict[str, float]:
    proba = head.predict_proba(x)
    decisions = [decide(p, head.labels) for p in proba]
    pred2 = [d[0] for d in decisions]
    pred3 = [d[1] for d in decisions]
    return {
        "acc_3way": accuracy(y3, pred3), "macro_f1_3way": macro_f1(y3, pred3, LABELS_3WAY),
        "acc_2way": accuracy(y2, pred2), "macro_f1_2way": macro_f1(y2, pred2, ["correct", "incorrect"]),
        "n": len(y3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--eval-only", action="store_true", help="do not overwrite the shipped weights")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    x, rows, _ = build_features(args.data)
    y3 = [r["label_3way"] for r in rows]
    y2 = [r["label_2way"] for r in rows]
    held = question_split(rows)
    train = ~held
    print(f"features for {len(rows)} answers in {time.perf_counter() - started:.1f}s; "
          f"held-out questions: {len({r['question_id'] for r, h in zip(rows, held, strict=True) if h})} "
          f"({int(held.sum())} answers)")

    # choose C on the training questions only (inner question split), then score the held-out questions once
    inner_rows = [r for r, t in zip(rows, train, strict=True) if t]
    inner_held = question_split(inner_rows, seed=SEED + 1)
    xt, y3t = x[train], [y for y, t in zip(y3, train, strict=True) if t]
    y2t = [y for y, t in zip(y2, train, strict=True) if t]
    best_c, best_f1 = 1.0, -1.0
    for c in (0.01, 0.1, 1.0, 10.0):
        head = GraderHead(fit_head(xt[~inner_held], [y for y, h in zip(y3t, inner_held, strict=True) if not h], c))
        s = scores(head, xt[inner_held], [y for y, h in zip(y3t, inner_held, strict=True) if h],
                   [y for y, h in zip(y2t, inner_held, strict=True) if h])
        print(f"  C={c:<5} inner macro-F1 3-way {s['macro_f1_3way']:.3f}  acc 2-way {s['acc_2way']:.3f}")
        if s["macro_f1_3way"] > best_f1:
            best_c, best_f1 = c, s["macro_f1_3way"]

    head = GraderHead(fit_head(xt, y3t, best_c))
    report = {"C": best_c}
    for dataset in ("all", "beetle", "sciEntsBank"):
        mask = held & np.array([dataset == "all" or r["dataset"] == dataset for r in rows])
        report[dataset] = scores(head, x[mask], [y for y, m in zip(y3, mask, strict=True) if m],
                                 [y for y, m in zip(y2, mask, strict=True) if m])
    print(json.dumps(report, indent=2))

    if not args.eval_only:
        config = fit_head(x, y3, best_c)
        config["trained_on"] = ("SemEval-2013 Task 7 training splits (Beetle + SciEntsBank), CC BY-SA 3.0, "
                                "Dzikovska et al. 2013")
        config["heldout_unseen_questions"] = report
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    print(f"done in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
