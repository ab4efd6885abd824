"""Fit the next-answer model of tutor.mastery (``verticals_tutor.kt``); evaluate it on held-out students.

    # ASSISTments 2009 train file: eval + ship weights
    python plugins/verticals-tutor/research/fit_mastery.py
    python plugins/verticals-tutor/research/fit_mastery.py LOG.csv -o my_model.json --no-eval
    # also score per-skill BKT (+ forgetting) on the split
    python plugins/verticals-tutor/research/fit_mastery.py --with-bkt

The log has columns ``student`` (or ``user_id``), ``skill`` (or ``skill_name``) and ``correct`` (0/1), in
response order per student. The evaluation holds out 20% of the students (seeded, the same split as
``fit_bkt``): the skill rates and the weights are fitted on the other 80% only, and every held-out answer
is predicted from that student's earlier answers only. Needs scikit-learn (``verticals-tutor[train]``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import verticals_tutor
from fit_bkt import SEED, read_log
from semeval import DEFAULT_DATA
from verticals_tutor import bkt
from verticals_tutor.kt import FEATURE_NAMES, KTModel, SkillRates, student_features
from verticals_tutor.metrics import auc, rmse

MIN_BKT_RESPONSES = 200
SHIPPED = Path(verticals_tutor.__file__).parent / "weights" / "mastery_kt_assistments2009.json"


def by_student(rows: list[tuple[str, str, int]]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for student, skill, correct in rows:
        out.setdefault(student, []).append((skill, correct))
    return out


def fit_bkt_forget(students: dict[str, list[tuple[str, int]]], max_iter: int = 30):
    """Per-skill BKT with forgetting (one EM start, at most ``max_iter`` iterations: the fit-time budget)."""
    rows = [(s, k, c) for s, attempts in students.items() for k, c in attempts]
    keys, chains = bkt.sequences_from_rows(rows)
    skills = sorted({k for _, k in keys})
    index = {k: i for i, k in enumerate(skills)}
    chain_skill = [index[k] for _, k in keys]
    params, _, _ = bkt.fit(chains, chain_skill, len(skills), fit_forget=True, max_iter=max_iter,
                           inits=(bkt.DEFAULT_INITS[0],))
    weights = np.bincount(chain_skill, weights=[len(c) for c in chains], minlength=len(skills))
    # skills with few responses get the response-weighted default (their own EM fit is unreliable)
    table = {k: [round(float(v), 6) for v in params[:, i]] for i, k in enumerate(skills)
             if weights[i] >= MIN_BKT_RESPONSES}
    default = [round(float(np.average(params[j], weights=weights)), 6) for j in range(5)]
    return table, default


def fit(students: dict[str, list[tuple[str, int]]], c: float = 1.0) -> dict:
    from sklearn.linear_model import LogisticRegression

    bkt_table, bkt_default = fit_bkt_forget(students)
    counts: dict[str, list[int]] = {}
    for attempts in students.values():
        for skill, correct in attempts:
            n = counts.setdefault(skill, [0, 0])
            n[0] += 1
            n[1] += correct
    total = sum(n for n, _ in counts.values())
    global_rate = sum(k for _, k in counts.values()) / total
    rates = SkillRates({k: (v[0], v[1]) for k, v in counts.items()}, global_rate,
                       {k: tuple(v) for k, v in bkt_table.items()}, tuple(bkt_default))
    x = np.concatenate([student_features(a, rates) for a in students.values()])
    y = np.concatenate([[c for _, c in a] for a in students.values()])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=1000).fit((x - mean) / scale, y)
    return {"features": list(FEATURE_NAMES), "global_rate": round(global_rate, 6),
            "skills": {k: v for k, v in sorted(counts.items())},
            "bkt": {"params": list(bkt.PARAM_NAMES), "skills": bkt_table, "default": bkt_default},
            "mean": mean.tolist(), "scale": scale.tolist(),
            "weight": model.coef_[0].tolist(), "bias": float(model.intercept_[0]), "C": c}


def score(model: KTModel, students: dict[str, list[tuple[str, int]]]) -> dict:
    truth = np.concatenate([[c for _, c in a] for a in students.values()]).astype(float)
    predicted = np.concatenate([model.predict(a) for a in students.values()])
    return {"auc": round(auc(truth, predicted), 4), "rmse": round(rmse(truth, predicted), 4),
            "students": len(students), "responses": len(truth)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, nargs="?", default=DEFAULT_DATA / "assistments2009_train_long.csv")
    parser.add_argument("-o", "--out", type=Path, default=None, help=f"model file (default: {SHIPPED})")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--eval-only", action="store_true", help="do not write the model")
    parser.add_argument("--with-bkt", action="store_true", help="also score per-skill BKT with forgetting")
    args = parser.parse_args(argv)
    rows = read_log(args.log)
    students = by_student(rows)
    report: dict = {"log": args.log.name, "responses": len(rows), "students": len(students)}
    if not args.no_eval:
        names = sorted(students)
        rng = np.random.default_rng(SEED)
        held = set(rng.choice(names, size=round(0.2 * len(names)), replace=False).tolist())
        train = {s: a for s, a in students.items() if s not in held}
        test = {s: a for s, a in students.items() if s in held}
        started = time.perf_counter()
        config = fit(train)
        report["fit_seconds_80pct"] = round(time.perf_counter() - started, 1)
        report["heldout_students"] = score(KTModel(config), test)
        if args.with_bkt:
            from fit_bkt import evaluate

            train_students = set(train)
            for forget in (False, True):
                result = evaluate(rows, train_students, fit_forget=forget)
                result.pop("table")
                report[f"bkt{'_forget' if forget else ''}_heldout"] = {
                    k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}
        print(json.dumps(report, indent=2), flush=True)
    if args.eval_only:
        return
    started = time.perf_counter()
    config = fit(students)
    seconds = time.perf_counter() - started
    config["meta"] = {"source": args.log.name, "responses": len(rows), "fit_seconds": round(seconds, 1),
                      "heldout_students": report.get("heldout_students")}
    if args.log.name == "assistments2009_train_long.csv":
        config["meta"]["citation"] = ("ASSISTments 2009-2010 skill-builder data (Feng, Heffernan & Koedinger "
                                      "2009), DKT training split via CAHLR/pyBKT-examples data/builder_train.csv")
    out = args.out or SHIPPED
    out.write_text(json.dumps(config, indent=0) + "\n", encoding="utf-8")
    print(f"fitted on {len(rows)} responses in {seconds:.1f}s; wrote {out}")


if __name__ == "__main__":
    main()
