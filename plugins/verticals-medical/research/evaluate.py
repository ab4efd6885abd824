"""Measure both tasks on the synthetic development set and on real development files; print Markdown.

    python plugins/verticals-medical/research/evaluate.py [--notes 200] [--seed 13]           # synthetic sets
    # real dev files (from the repo root)
    python plugins/verticals-medical/research/evaluate.py --dev ../shared/data/medical
    # ... plus medspaCy's default ConText
    python plugins/verticals-medical/research/evaluate.py --dev DIR --no-synthetic --baseline

With ``--dev DIR`` it also scores ``DIR/physionet_deid_dev.jsonl`` (real nursing notes with typed PHI
spans) and ``DIR/negex_context_dev.jsonl`` (NegEx/ConText concept-in-sentence items); see
``research/deveval.py`` for the rules (Safe Harbor mapping, overlap rule).

De-identification, per category:

- ``recall``: gold spans whose every character is covered by predicted spans
  (of any category): what matters for a leak.
- ``typed recall``: gold spans overlapped by a predicted span of the same category.
- ``precision``: predicted spans of the category that overlap some gold span.
- ``F2`` from recall and precision (recall weighted higher).
- ``exact``: gold spans predicted with the same offsets and category.

Entities: per assertion attribute, F1 of the binary attribute over the concept
mentions of the assertion sentences, plus accuracy of the combined label.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from verticals_medical.deidentify import DeidentifyTask
from verticals_medical.entities import EntitiesTask
from verticals_medical.synth import generate_assertions, generate_notes

from verticals import RunContext


def f_beta(p: float, r: float, beta: float) -> float:
    return 0.0 if p == 0 and r == 0 else (1 + beta**2) * p * r / (beta**2 * p + r)


def deid_scores(notes: list[dict[str, Any]], outputs: list[Any]) -> dict[str, dict[str, float]]:
    gold_n, covered, typed, exact = Counter(), Counter(), Counter(), Counter()
    pred_n, pred_ok = Counter(), Counter()
    for note, out in zip(notes, outputs, strict=True):
        mask = [False] * len(note["text"])
        for s in out.spans:
            for i in range(s.start, s.end):
                mask[i] = True
        preds = [(s.start, s.end, s.category) for s in out.spans]
        for g in note["phi"]:
            c = g["category"]
            gold_n[c] += 1
            covered[c] += all(mask[g["start"]:g["end"]])
            typed[c] += any(p[2] == c and p[0] < g["end"] and g["start"] < p[1] for p in preds)
            exact[c] += (g["start"], g["end"], c) in preds
        for p in preds:
            pred_n[p[2]] += 1
            pred_ok[p[2]] += any(p[0] < g["end"] and g["start"] < p[1] for g in note["phi"])
    table: dict[str, dict[str, float]] = {}
    for c in sorted(set(gold_n) | set(pred_n)):
        r = covered[c] / gold_n[c] if gold_n[c] else float("nan")
        p = pred_ok[c] / pred_n[c] if pred_n[c] else float("nan")
        table[c] = {"gold": gold_n[c], "predicted": pred_n[c], "recall": r,
                    "typed_recall": typed[c] / gold_n[c] if gold_n[c] else float("nan"), "precision": p,
                    "f2": f_beta(p, r, 2) if gold_n[c] and pred_n[c] else float("nan"),
                    "exact": exact[c] / gold_n[c] if gold_n[c] else float("nan")}
    g, pn = sum(gold_n.values()), sum(pred_n.values())
    r, p = sum(covered.values()) / g, sum(pred_ok.values()) / pn
    table["ALL (micro)"] = {"gold": g, "predicted": pn, "recall": r, "typed_recall": sum(typed.values()) / g,
                            "precision": p, "f2": f_beta(p, r, 2), "exact": sum(exact.values()) / g}
    return table


ATTRIBUTES = {"negated": "absent", "uncertain": "possible", "historical": "historical",
              "hypothetical": "hypothetical", "family": "family"}


def assertion_scores(rows: list[dict[str, Any]], outputs: list[Any]) -> tuple[dict[str, dict[str, float]], dict]:
    tp, fp, fn = Counter(), Counter(), Counter()
    found = correct = 0
    confusion: Counter[tuple[str, str]] = Counter()
    for row, out in zip(rows, outputs, strict=True):
        match = next((e for e in out.entities if e.start < row["end"] and row["start"] < e.end), None)
        predicted = match.assertion if match else "missed"
        found += match is not None
        correct += predicted == row["assertion"]
        confusion[(row["assertion"], predicted)] += 1
        for attribute, label in ATTRIBUTES.items():
            gold = row["assertion"] == label
            pred = bool(match and getattr(match, attribute))
            tp[attribute] += gold and pred
            fp[attribute] += pred and not gold
            fn[attribute] += gold and not pred
    table = {}
    for attribute in ATTRIBUTES:
        p = tp[attribute] / (tp[attribute] + fp[attribute]) if tp[attribute] + fp[attribute] else 0.0
        r = tp[attribute] / (tp[attribute] + fn[attribute]) if tp[attribute] + fn[attribute] else 0.0
        table[attribute] = {"gold": tp[attribute] + fn[attribute], "precision": p, "recall": r, "f1": f_beta(p, r, 1)}
    summary = {"mentions": len(rows), "concept_found": found / len(rows), "label_accuracy": correct / len(rows),
               "confusion": confusion}
    return table, summary


def _fmt(x: float | int) -> str:
    if isinstance(x, int):
        return str(x)
    return "n/a" if x != x else f"{x:.3f}"


def run_deid(notes: list[dict[str, Any]], title: str) -> None:
    deid = DeidentifyTask()
    started = time.perf_counter()
    outputs = []
    for i in range(0, len(notes), deid.batch_size):
        batch = [deid.Input(text=n["text"], id=n["id"]) for n in notes[i:i + deid.batch_size]]
        outputs += deid.run(batch, {}, RunContext(job_id="eval", params=deid.Params()))
    seconds = time.perf_counter() - started
    table = deid_scores(notes, outputs)
    print(f"## {title}: {len(notes)} notes, {sum(len(n['phi']) for n in notes)} gold PHI spans\n")
    print("| category | gold | predicted | recall | typed recall | precision | F2 | exact |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c, row in table.items():
        print(f"| {c} | " + " | ".join(_fmt(row[k]) for k in
                                      ("gold", "predicted", "recall", "typed_recall", "precision", "f2", "exact"))
              + " |")
    print(f"\nThroughput: {len(notes) / seconds:.1f} notes/s on this machine (one process, after model load).\n")


def run_assertions(rows: list[dict[str, Any]], title: str) -> None:
    ents = EntitiesTask()
    outputs = []
    for i in range(0, len(rows), ents.batch_size):
        batch = [ents.Input(text=r["text"]) for r in rows[i:i + ents.batch_size]]
        outputs += ents.run(batch, {}, RunContext(job_id="eval", params=ents.Params()))
    attr_table, summary = assertion_scores(rows, outputs)
    print(f"## {title}: {summary['mentions']} sentences\n")
    print(f"Concept found: {summary['concept_found']:.3f}; combined label accuracy: "
          f"{summary['label_accuracy']:.3f}\n")
    print("| attribute | gold | precision | recall | F1 |")
    print("|---|---:|---:|---:|---:|")
    for attribute, row in attr_table.items():
        print(f"| {attribute} | {row['gold']} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | "
              f"{_fmt(row['f1'])} |")
    errors = {k: v for k, v in summary["confusion"].items() if k[0] != k[1]}
    if errors:
        print("\nErrors (gold -> predicted: count): " + ", ".join(
            f"{g} -> {p}: {n}" for (g, p), n in sorted(errors.items(), key=lambda kv: -kv[1])))
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--dev", metavar="DIR", help="folder holding physionet_deid_dev.jsonl and/or "
                                                     "negex_context_dev.jsonl (relative to the current folder)")
    parser.add_argument("--no-synthetic", action="store_true", help="skip the synthetic sets")
    parser.add_argument("--baseline", action="store_true", help="also score medspaCy's default ConText rules")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N dev notes/items (0: all)")
    parser.add_argument("--errors", type=int, default=0,
                        help="print up to N missed and N spurious dev spans (PHI: for your terminal only)")
    args = parser.parse_args(argv)
    if args.dev:
        import deveval

        deveval.main(args.dev, baseline=args.baseline, limit=args.limit, errors=args.errors)
    if args.no_synthetic:
        return
    run_deid(generate_notes(args.notes, args.seed),
             f"De-identification, development templates (seed {args.seed}; rules tuned on these)")
    run_deid(generate_notes(args.notes // 2, args.seed + 1, fresh=True),
             f"De-identification, fresh templates (seed {args.seed + 1}; not used for tuning)")
    run_assertions(generate_assertions(args.seed), f"Assertion status, development sentences (seed {args.seed})")
    run_assertions(generate_assertions(args.seed + 1, fresh=True),
                   f"Assertion status, fresh sentences (seed {args.seed + 1}; not used for tuning)")


if __name__ == "__main__":
    main()
