"""Train (and evaluate) the grading heads on the SemEval-2013 Task 7 training splits.

    # evaluate + write the shipped files
    HF_HUB_OFFLINE=1 python plugins/verticals-tutor/research/train_grader.py
    HF_HUB_OFFLINE=1 python plugins/verticals-tutor/research/train_grader.py --eval-only

Two evaluations on our own splits of the *training* data (the official test splits are never used):

- **unseen answers**: 20% of each question's answers held out (seeded). The bank head sees, for a held-out
  answer, only the *training* answers of its question as the bank; training rows get leave-one-out bank
  features. The reference-only head is scored on the same rows for comparison.
- **unseen questions**: 20% of each dataset's questions held out; they have no graded answers, so the
  reference-only head grades them (what the product does for a new question).

Hyper-parameters (C, class weighting) are chosen on inner splits of the training part only. The shipped
heads are then refit on all training answers, and the answer bank (all training answers, CC BY-SA 3.0) is
written next to them. Needs scikit-learn (``pip install verticals-tutor[train]``); the task needs numpy only.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import time
from pathlib import Path

import numpy as np
import verticals_tutor
from semeval import DEFAULT_DATA, load_answers, load_questions, reference_texts
from verticals_tutor import text as tx
from verticals_tutor.grading import (
    BANK_FEATURE_NAMES,
    FEATURE_NAMES,
    LABELS_3WAY,
    MIN_BANK,
    GradeCase,
    GraderHead,
    analyse,
    bank_features,
    decide,
    normalise,
)
from verticals_tutor.metrics import accuracy, macro_f1

SEED = 13
WEIGHTS = Path(verticals_tutor.__file__).parent / "weights"
GRID = ((0.03, None), (0.3, None), (3.0, None), (0.3, "balanced"))


def build_features(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Reference features and MiniLM answer vectors of every training answer."""
    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry

    questions = load_questions(data_dir)
    rows = [r for r in load_answers(data_dir) if r["question_id"] in questions]
    for r in rows:
        r["question"] = questions[r["question_id"]]["question"]
    cases = [GradeCase(r["question"], reference_texts(questions[r["question_id"]]), r["student_answer"])
             for r in rows]
    encoder = ModelHost(get_registry().models).get("minilm")
    analyses = analyse(cases, encoder)
    return np.stack([a.features for a in analyses]), np.stack([a.answer_vector for a in analyses]), rows


def bank_matrix(rows: list[dict], vectors: np.ndarray, bank_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bank features of every row against the ``bank_mask`` rows of its question, leaving the row itself out.

    Returns the features and a mask of the rows whose question has at least MIN_BANK graded answers."""
    y = np.array([LABELS_3WAY.index(r["label_3way"]) for r in rows])
    stems = [set(tx.content_stems(r["student_answer"])) for r in rows]
    norms = [normalise(r["student_answer"]) for r in rows]
    by_question: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if bank_mask[i]:
            by_question.setdefault(r["question_id"], []).append(i)
    out = np.zeros((len(rows), len(BANK_FEATURE_NAMES)))
    valid = np.zeros(len(rows), dtype=bool)
    for i, r in enumerate(rows):
        bank = [j for j in by_question.get(r["question_id"], []) if j != i]
        if len(bank) < MIN_BANK:
            continue
        out[i] = bank_features(vectors[i], stems[i], norms[i], vectors[bank], y[bank], [stems[j] for j in bank],
                               [norms[j] for j in bank])
        valid[i] = True
    return out, valid


def answer_split(rows: list[dict], fraction: float = 0.2, seed: int = SEED) -> np.ndarray:
    """Boolean mask of held-out rows: ``fraction`` of each question's answers (unseen answers)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(rows), dtype=bool)
    by_question: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_question.setdefault(r["question_id"], []).append(i)
    for qid in sorted(by_question):
        idx = np.array(by_question[qid])
        rng.shuffle(idx)
        held[idx[: max(1, round(fraction * len(idx)))]] = True
    return held


def question_split(rows: list[dict], fraction: float = 0.2, seed: int = SEED) -> np.ndarray:
    """Boolean mask of held-out rows: ``fraction`` of each dataset's questions."""
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for dataset in sorted({r["dataset"] for r in rows}):
        qids = sorted({r["question_id"] for r in rows if r["dataset"] == dataset})
        rng.shuffle(qids)
        held |= set(qids[: max(1, round(fraction * len(qids)))])
    return np.array([r["question_id"] in held for r in rows])


def fit_head(x: np.ndarray, y: list[str], c: float, class_weight: str | None = None) -> dict:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=3000, class_weight=class_weight, random_state=SEED)
    model.fit((x - mean) / scale, y)
    order = [list(model.classes_).index(label) for label in LABELS_3WAY]
    names = FEATURE_NAMES if x.shape[1] == len(FEATURE_NAMES) else FEATURE_NAMES + BANK_FEATURE_NAMES
    return {
        "features": list(names), "labels": list(LABELS_3WAY), "mean": mean.tolist(), "scale": scale.tolist(),
        "weight": model.coef_[order].tolist(), "bias": model.intercept_[order].tolist(), "C": c,
        "class_weight": class_weight,
    }


def scores_from(proba: np.ndarray, y3: list[str], y2: list[str]) -> dict[str, float]:
    decisions = [decide(p, LABELS_3WAY) for p in proba]
    pred2 = [d[0] for d in decisions]
    pred3 = [d[1] for d in decisions]
    return {
        "acc_3way": accuracy(y3, pred3), "macro_f1_3way": macro_f1(y3, pred3, LABELS_3WAY),
        "acc_2way": accuracy(y2, pred2), "macro_f1_2way": macro_f1(y2, pred2, ["correct", "incorrect"]),
        "n": len(y3),
    }


def scores(head: GraderHead, x: np.ndarray, y3: list[str], y2: list[str]) -> dict[str, float]:
    return scores_from(head.predict_proba(x), y3, y2)


def choose(x: np.ndarray, y3: np.ndarray, y2: np.ndarray, inner_held: np.ndarray, label: str) -> tuple:
    """Pick (C, class_weight) by 2-way accuracy on an inner held-out part of the training rows."""
    best, best_acc = GRID[0], -1.0
    for c, weight in GRID:
        head = GraderHead(fit_head(x[~inner_held], list(y3[~inner_held]), c, weight))
        s = scores(head, x[inner_held], list(y3[inner_held]), list(y2[inner_held]))
        print(f"  {label} C={c:<5} {weight or 'unweighted':<10} inner 2-way acc {s['acc_2way']:.3f}  "
              f"3-way macro-F1 {s['macro_f1_3way']:.3f}")
        if s["acc_2way"] > best_acc:
            best, best_acc = (c, weight), s["acc_2way"]
    return best


def by_dataset(rows: list[dict], mask: np.ndarray, proba: np.ndarray, y3: np.ndarray, y2: np.ndarray) -> dict:
    """Scores of ``proba`` (one row per True in ``mask``) overall and per dataset."""
    out = {}
    datasets = np.array([r["dataset"] for r in rows])[mask]
    for dataset in ("all", "beetle", "sciEntsBank"):
        m = (datasets == dataset) | (dataset == "all")
        out[dataset] = scores_from(proba[m], list(y3[mask][m]), list(y2[mask][m]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--eval-only", action="store_true", help="do not overwrite the shipped files")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="folder for grader*.json and the answer bank")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    x, vectors, rows = build_features(args.data)
    y3 = np.array([r["label_3way"] for r in rows])
    y2 = np.array([r["label_2way"] for r in rows])
    print(f"features for {len(rows)} answers in {time.perf_counter() - started:.1f}s")
    report: dict = {}

    # ---- unseen questions: the reference-only head (a new question has no graded answers)
    held_q = question_split(rows)
    train = ~held_q
    inner = question_split([r for r, t in zip(rows, train, strict=True) if t], seed=SEED + 1)
    base_choice = choose(x[train], y3[train], y2[train], inner, "reference head")
    head = GraderHead(fit_head(x[train], list(y3[train]), *base_choice))
    report["unseen_questions"] = {"heldout_questions": len({r["question_id"] for r, h in zip(rows, held_q,
                                                                                             strict=True) if h}),
                                  **by_dataset(rows, held_q, head.predict_proba(x[held_q]), y3, y2)}

    # ---- unseen answers: bank head (training answers of the question as the bank) vs reference-only head
    held_a = answer_split(rows)
    train = ~held_a
    train_rows = [r for r, t in zip(rows, train, strict=True) if t]
    inner = answer_split(train_rows, seed=SEED + 1)
    b_inner, v_inner = bank_matrix(train_rows, vectors[train], ~inner)
    xb_inner = np.hstack([x[train], b_inner])
    sel = v_inner
    bank_choice = choose(xb_inner[sel], y3[train][sel], y2[train][sel], inner[sel], "bank head")
    b_all, valid = bank_matrix(rows, vectors, train)
    xb = np.hstack([x, b_all])
    ref_head = GraderHead(fit_head(x[train], list(y3[train]), *base_choice))
    fit_rows = train & valid
    bank_head = GraderHead(fit_head(xb[fit_rows], list(y3[fit_rows]), *bank_choice))
    proba = np.where(valid[:, None], bank_head.predict_proba(xb) if valid.any() else 0, ref_head.predict_proba(x))
    report["unseen_answers"] = {
        "bank_head": by_dataset(rows, held_a, proba[held_a], y3, y2),
        "reference_head_only": by_dataset(rows, held_a, ref_head.predict_proba(x[held_a]), y3, y2),
        "heldout_with_bank": int((held_a & valid).sum()),
    }
    report["choices"] = {"reference_head": base_choice, "bank_head": bank_choice}
    print(json.dumps(report, indent=2))

    if not args.eval_only:
        args.out.mkdir(parents=True, exist_ok=True)
        source = "SemEval-2013 Task 7 training splits (Beetle + SciEntsBank), CC BY-SA 3.0, Dzikovska et al. 2013"
        config = fit_head(x, list(y3), *base_choice)
        config |= {"trained_on": source, "heldout_unseen_questions": report["unseen_questions"]}
        (args.out / "grader.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        b_full, v_full = bank_matrix(rows, vectors, np.ones(len(rows), dtype=bool))
        config = fit_head(np.hstack([x, b_full])[v_full], list(y3[v_full]), *bank_choice)
        config |= {"trained_on": source + " (leave-one-out answer-bank features)",
                   "heldout_unseen_answers": report["unseen_answers"]["bank_head"]}
        (args.out / "grader_bank.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        bank_path = args.out / "answer_bank_semeval2013.jsonl.gz"
        with gzip.GzipFile(bank_path, "wb", compresslevel=9, mtime=0) as raw, io.TextIOWrapper(raw, "utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"question_id": r["question_id"], "question": r["question"],
                                     "answer": r["student_answer"], "label": r["label_3way"]}) + "\n")
        print(f"wrote grader.json, grader_bank.json and the answer bank to {args.out}")
    print(f"done in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
