"""Fit BKT on an attempt log; evaluate next-response AUC/RMSE on held-out students; write a parameter table.

    # ASSISTments 2009 train file: eval + ship params
    python plugins/verticals-tutor/research/fit_bkt.py
    python plugins/verticals-tutor/research/fit_bkt.py LOG.csv -o params.json --no-eval

The log has columns ``student`` (or ``user_id``), ``skill`` (or ``skill_name``)
and ``correct`` (0/1), in response order per student. The evaluation holds out
20% of the students (seeded) and scores every response of theirs with the
parameters fitted on the other 80%, predicting each answer from the earlier
ones only (forward filtering).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import verticals_tutor
from semeval import DEFAULT_DATA
from verticals_tutor import bkt
from verticals_tutor.metrics import auc, rmse

SEED = 7
SHIPPED = Path(verticals_tutor.__file__).parent / "weights" / "bkt_assistments2009.json"
STUDENT_COLUMNS = ("student", "user_id", "student_id")
SKILL_COLUMNS = ("skill", "skill_name", "skill_id", "kc")


def pick(header: list[str], names: tuple[str, ...], what: str) -> str:
    for name in names:
        if name in header:
            return name
    raise SystemExit(f"no {what} column: expected one of {', '.join(names)}; found {', '.join(header)}")


def read_log(path: Path) -> list[tuple[str, str, int]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        s_col, k_col = pick(header, STUDENT_COLUMNS, "student"), pick(header, SKILL_COLUMNS, "skill")
        return [(r[s_col], str(r[k_col]), int(float(r["correct"]))) for r in reader]


def fit_rows(rows: list[tuple[str, str, int]], fit_forget: bool = False):
    keys, chains = bkt.sequences_from_rows(rows)
    skills = sorted({k for _, k in keys})
    index = {k: i for i, k in enumerate(skills)}
    chain_skill = [index[k] for _, k in keys]
    params, _, iterations = bkt.fit(chains, chain_skill, len(skills), fit_forget=fit_forget)
    counts = np.bincount(chain_skill, weights=[len(c) for c in chains], minlength=len(skills))
    return skills, params, counts, iterations


def evaluate(rows, train_students: set[str], fit_forget: bool = False) -> dict:
    train = [r for r in rows if r[0] in train_students]
    test = [r for r in rows if r[0] not in train_students]
    started = time.perf_counter()
    skills, params, counts, iterations = fit_rows(train, fit_forget)
    fit_seconds = time.perf_counter() - started
    table = bkt.ParamTable.from_fit(skills, params, counts)
    keys, chains = bkt.sequences_from_rows(test)
    full = np.stack([list(vars(table.get(k)[0]).values())[:5] for _, k in keys], axis=1)
    # one "skill" per chain so that unseen skills get the default parameters
    per_chain, _, _ = bkt.predict(chains, list(range(len(chains))), full)
    truth = np.concatenate(chains)
    predicted = np.concatenate(per_chain)
    return {"auc": auc(truth, predicted), "rmse": rmse(truth, predicted), "test_responses": len(truth),
            "test_students": len({s for s, _ in keys}), "train_responses": len(train),
            "fit_seconds": round(fit_seconds, 2), "em_iterations": iterations, "table": table}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, nargs="?", default=DEFAULT_DATA / "assistments2009_train_long.csv")
    parser.add_argument("-o", "--out", type=Path, default=None, help=f"parameter table (default: {SHIPPED})")
    parser.add_argument("--forget", action="store_true", help="also fit a forgetting rate")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--export-split", type=Path, default=None,
                        help="write the train/test split and our held-out predictions here (for compare_pybkt)")
    args = parser.parse_args(argv)
    rows = read_log(args.log)
    report: dict = {"log": str(args.log), "responses": len(rows)}
    if not args.no_eval:
        students = sorted({r[0] for r in rows})
        rng = np.random.default_rng(SEED)
        held = set(rng.choice(students, size=round(0.2 * len(students)), replace=False).tolist())
        train_students = set(students) - held
        result = evaluate(rows, train_students, args.forget)
        table = result.pop("table")
        report["heldout_students"] = result
        print(json.dumps(report, indent=2))
        if args.export_split:
            args.export_split.mkdir(parents=True, exist_ok=True)
            (args.export_split / "held_students.json").write_text(json.dumps(sorted(held)))
            (args.export_split / "ours_train_params.json").write_text(table.to_json())
    started = time.perf_counter()
    skills, params, counts, iterations = fit_rows(rows, args.forget)
    seconds = time.perf_counter() - started
    meta = {"source": str(args.log.name), "responses": len(rows), "forget": args.forget,
            "fit_seconds": round(seconds, 2), "em_iterations": iterations}
    if args.log.name == "assistments2009_train_long.csv":
        meta["citation"] = ("ASSISTments 2009-2010 skill-builder data (Feng, Heffernan & Koedinger 2009), DKT "
                            "training split via CAHLR/pyBKT-examples data/builder_train.csv")
    table = bkt.ParamTable.from_fit(skills, params, counts, meta)
    out = args.out or SHIPPED
    out.write_text(table.to_json(), encoding="utf-8")
    print(f"fitted {len(skills)} skills on {len(rows)} responses in {seconds:.1f}s ({iterations} EM iterations max); "
          f"wrote {out}")


if __name__ == "__main__":
    main()
