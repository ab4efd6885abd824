"""Compare our numpy BKT with pyBKT on the same ASSISTments split. Runs in a separate venv that has pyBKT:

    python -m venv /tmp/pybkt-venv
    /tmp/pybkt-venv/bin/pip install "numpy<2.4" "scikit-learn<1.8" pandas pyBKT
    .venv/bin/python plugins/verticals-tutor/research/fit_bkt.py --export-split /tmp/bktsplit     # our fit + the split
    /tmp/pybkt-venv/bin/python plugins/verticals-tutor/research/compare_pybkt.py /tmp/bktsplit 20

The optional second argument restricts the comparison to N skills (seeded draw among skills with 500-8000
responses); BKT skills are fitted independently, so our parameters for them are unchanged.

Needs only numpy/pandas/pyBKT (it never imports verticals).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from semeval import DEFAULT_DATA
from verticals_tutor import bkt
from verticals_tutor.metrics import auc, rmse

DATA = DEFAULT_DATA / "assistments2009_train_long.csv"


def main() -> None:
    import pandas as pd
    from pyBKT.models import Model

    split = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bktsplit")
    n_skills = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # 0: all skills (pyBKT's pure-python EM is slow)
    held = set(json.loads((split / "held_students.json").read_text()))
    ours = bkt.ParamTable.from_json((split / "ours_train_params.json").read_text())
    df = pd.read_csv(DATA, dtype={"user_id": str, "skill_name": str})
    df["order_id"] = np.arange(len(df))
    if n_skills:
        sizes = df.skill_name.value_counts()
        eligible = sorted(sizes[(sizes >= 500) & (sizes <= 8000)].index)
        chosen = np.random.default_rng(5).choice(eligible, size=min(n_skills, len(eligible)), replace=False)
        df = df[df.skill_name.isin(set(chosen))].copy()
    train = df[~df.user_id.isin(held)].copy()
    test = df[df.user_id.isin(held)].copy()
    model = Model(seed=42, num_fits=1)
    started = time.perf_counter()
    model.fit(data=train)
    fit_seconds = time.perf_counter() - started
    pred = model.predict(data=test)
    theirs = pred["correct_predictions"].to_numpy()
    truth = test["correct"].to_numpy()

    # our predictions on the same rows (same order: grouped by student and skill, in response order)
    keys, chains = bkt.sequences_from_rows(zip(test.user_id, test.skill_name, test.correct, strict=True))
    params = np.stack([list(vars(ours.get(k)[0]).values())[:5] for _, k in keys], axis=1)
    per_chain, _, _ = bkt.predict(chains, list(range(len(chains))), params)
    ours_pred = pd.Series(index=test.index, dtype=float)
    positions: dict[tuple[str, str], list[int]] = {}
    for idx, u, s in zip(test.index, test.user_id, test.skill_name, strict=True):
        positions.setdefault((u, s), []).append(idx)
    for key, values in zip(keys, per_chain, strict=True):
        ours_pred.loc[positions[key]] = values
    mine = ours_pred.loc[test.index].to_numpy()

    p = model.params()
    diffs = {name: [] for name in ("prior", "learns", "guesses", "slips")}
    ours_key = {"prior": "prior", "learns": "learn", "guesses": "guess", "slips": "slip"}
    for skill in ours.skills:
        for name in diffs:
            try:
                value = float(p.loc[(skill, name)]["value"].iloc[0])
            except KeyError:
                continue
            diffs[name].append((value, getattr(ours.skills[skill], ours_key[name])))
    report = {
        "skills": int(df.skill_name.nunique()), "train_responses": len(train),
        "pybkt_fit_seconds": round(fit_seconds, 1), "test_responses": len(truth),
        "pybkt": {"auc": auc(truth, theirs), "rmse": rmse(truth, theirs)},
        "ours": {"auc": auc(truth, mine), "rmse": rmse(truth, mine)},
        "prediction_agreement": {"pearson": float(np.corrcoef(theirs, mine)[0, 1]),
                                 "mean_abs_diff": float(np.mean(np.abs(theirs - mine))),
                                 "share_within_0.05": float(np.mean(np.abs(theirs - mine) <= 0.05))},
        "parameter_agreement": {name: {"median_abs_diff": float(np.median([abs(a - b) for a, b in v])),
                                       "pearson": float(np.corrcoef(*zip(*v, strict=True))[0, 1])}
                                for name, v in diffs.items() if v},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
