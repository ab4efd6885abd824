"""The grading cross-encoder: its data split, and its evaluation with the feature heads, before vs after.

    # 1. split the SemEval-2013 training answers by question and write the training pairs and evaluation files
    python plugins/verticals-tutor/research/grader_pairs.py split --out /tmp/grade-pairs
    # 2. train the cross-encoder with the platform (a new version of the model tutor.grade-pair)
    verticals train tutor.grade /tmp/grade-pairs/train_pairs.jsonl --text-column reference --pair-column answer \\
        --label-column label_3way ...          (the exact command: plugins/verticals-tutor/EVAL.md)
    # 3. before (feature heads) vs after (blended with the cross-encoder) on the held-out parts
    HF_HUB_OFFLINE=1 python plugins/verticals-tutor/research/grader_pairs.py evaluate --split /tmp/grade-pairs \\
        --model tutor.grade-pair@v1

The split (seeded; the official test splits are never used), over the 182 training questions:

- **unseen domains**: whole SciEntsBank modules (seeded, until at least 12 questions), all their answers;
- **unseen questions**: 20% of the other questions of each dataset (Beetle and SciEntsBank), all their answers;
- **tune**: 10% of the other questions of each dataset: the blend weight of the cross-encoder is chosen there;
- **train**: the remaining questions; 20% of each of their answers is held out as **unseen answers**.

The cross-encoder trains on the train questions' other answers only (``train_pairs.jsonl``); the feature heads
are refit on the same answers (their hyper-parameters chosen on inner splits of them, as ``train_grader.py``
does), so every figure below is on answers and questions neither model was fitted on. The validation parts
(unseen questions, domains, answers) only ever yield aggregate figures here: no per-item output is printed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from semeval import DEFAULT_DATA, load_answers, load_questions, reference_texts
from train_grader import SEED, answer_split, bank_matrix, build_features, choose, fit_head, question_split, scores_from
from verticals_tutor.grading import LABELS_3WAY, GraderHead, pair_text

PARTS = ("unseen_questions", "unseen_domains", "unseen_answers")
WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)


def make_split(rows: list[dict], questions: dict[str, dict], seed: int = SEED) -> dict[str, list[str]]:
    """Question ids per part (``unseen_domains``, ``unseen_questions``, ``tune``, ``train``) and the ids of the
    train questions' held-out answers (``unseen_answers``)."""
    rng = np.random.default_rng(seed)
    answered = {r["question_id"] for r in rows}
    sci = sorted({q["module"] for q in questions.values() if q["dataset"] == "sciEntsBank"})
    rng.shuffle(sci)
    domains: list[str] = []
    held_domain: list[str] = []
    for module in sci:
        if len(held_domain) >= 12:
            break
        domains.append(module)
        held_domain += sorted(q for q, v in questions.items() if v["module"] == module and q in answered)
    parts: dict[str, list[str]] = {"unseen_domains": held_domain, "unseen_questions": [], "tune": [], "train": []}
    for dataset in ("beetle", "sciEntsBank"):
        qids = sorted(q for q, v in questions.items() if v["dataset"] == dataset and q in answered
                      and q not in held_domain)
        rng.shuffle(qids)
        n_val, n_tune = round(0.2 * len(qids)), round(0.1 * len(qids))
        parts["unseen_questions"] += qids[:n_val]
        parts["tune"] += qids[n_val:n_val + n_tune]
        parts["train"] += qids[n_val + n_tune:]
    train_rows = [r for r in rows if r["question_id"] in set(parts["train"])]
    held = answer_split(train_rows, seed=seed)
    parts["unseen_answers"] = [r["id"] for r, h in zip(train_rows, held, strict=True) if h]
    parts["domains"] = domains
    return parts


def load(data: Path) -> tuple[list[dict], dict[str, dict]]:
    questions = load_questions(data)
    rows = [r for r in load_answers(data) if r["question_id"] in questions]
    for r in rows:
        r["question"] = questions[r["question_id"]]["question"]
    return rows, questions


def row_part(row: dict, parts: dict[str, list[str]]) -> str:
    if row["id"] in parts["_ua"]:
        return "unseen_answers"
    for name in ("unseen_domains", "unseen_questions", "tune", "train"):
        if row["question_id"] in parts["_" + name]:
            return name
    raise KeyError(row["question_id"])


def indexed(parts: dict[str, list[str]]) -> dict[str, list[str]]:
    out = dict(parts)
    out["_ua"] = set(parts["unseen_answers"])  # type: ignore[assignment]
    for name in ("unseen_domains", "unseen_questions", "tune", "train"):
        out["_" + name] = set(parts[name])  # type: ignore[assignment]
    return out


def cmd_split(args: argparse.Namespace) -> None:
    rows, questions = load(args.data)
    parts = make_split(rows, questions)
    index = indexed(parts)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "split.json").write_text(json.dumps(parts, indent=1) + "\n", encoding="utf-8")
    files = {name: open(args.out / f"{name}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
             for name in ("train_pairs", "train_bank", "tune", *PARTS)}
    counts: dict[str, int] = {}
    try:
        for r in rows:
            part = row_part(r, index)
            refs = reference_texts(questions[r["question_id"]])
            if part == "train":
                record = {"reference": pair_text(r["question"], refs), "answer": r["student_answer"],
                          "label_3way": r["label_3way"], "question_id": r["question_id"], "dataset": r["dataset"]}
                name = "train_pairs"
                # the graded answers an unseen answer's question has (--answer-bank for `verticals eval`)
                files["train_bank"].write(json.dumps({"question_id": r["question_id"], "question": r["question"],
                                                      "answer": r["student_answer"], "label": r["label_3way"]}) + "\n")
            else:  # tutor.grade's input fields + the gold labels: `verticals eval tutor.grade FILE`
                record = {"question": r["question"], "reference_answers": refs, "answer": r["student_answer"],
                          "question_id": r["question_id"], "dataset": r["dataset"], "label_2way": r["label_2way"],
                          "label_3way": r["label_3way"]}
                name = part
            files[name].write(json.dumps(record) + "\n")
            counts[name] = counts.get(name, 0) + 1
    finally:
        for handle in files.values():
            handle.close()
    print(json.dumps({"answers": counts, "questions": {k: len(parts[k]) for k in
                                                       ("train", "tune", "unseen_questions", "unseen_domains")},
                      "held_out_domains": parts["domains"]}, indent=1))


def cross_encoder_proba(model_ref: str, rows: list[dict], questions: dict[str, dict]) -> tuple[np.ndarray, float]:
    """P(correct, contradictory, incorrect) of the cross-encoder for every row, and items/s."""
    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry

    registry = get_registry()
    overrides = {}
    if "@" in model_ref or "/" in model_ref or Path(model_ref).exists():
        path = Path(model_ref)
        if not path.exists():  # SPEC@VERSION in the local model store
            from verticals.core.models.versions import ModelStore

            spec, version = model_ref.split("@")
            path = ModelStore().get(spec, version).path
        overrides["tutor.grade-pair"] = str(path)
    host = ModelHost(registry.models, overrides=overrides)
    model = host.get("tutor.grade-pair")
    texts = [pair_text(r["question"], reference_texts(questions[r["question_id"]])) for r in rows]
    started = time.perf_counter()
    raw = model.classify(texts, [r["student_answer"] for r in rows])
    rate = len(rows) / (time.perf_counter() - started)
    order = [model.labels.index(label) for label in LABELS_3WAY]
    return raw[:, order], rate


def blend(head: np.ndarray, ce: np.ndarray, weight: float) -> np.ndarray:
    return (1 - weight) * head + weight * ce


def cmd_evaluate(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    parts = json.loads((args.split / "split.json").read_text(encoding="utf-8"))
    index = indexed(parts)
    cache = args.split / "features.npz"  # the feature heads' inputs do not depend on the cross-encoder
    if cache.exists():
        saved = np.load(cache)
        x, vectors = saved["x"], saved["vectors"]
        rows, _ = load(args.data)
    else:
        x, vectors, rows = build_features(args.data)
        np.savez(cache, x=x, vectors=vectors)
    questions = load_questions(args.data)
    print(f"features for {len(rows)} answers in {time.perf_counter() - started:.1f}s")
    part = np.array([row_part(r, index) for r in rows])
    y3 = np.array([r["label_3way"] for r in rows])
    y2 = np.array([r["label_2way"] for r in rows])
    fit = part == "train"  # the answers the cross-encoder trained on

    # the feature heads, refit on the same answers (hyper-parameters on inner splits of them)
    fit_rows = [r for r, f in zip(rows, fit, strict=True) if f]
    inner_q = question_split(fit_rows, seed=SEED + 1)
    ref_choice = choose(x[fit], y3[fit], y2[fit], inner_q, "reference head")
    ref_head = GraderHead(fit_head(x[fit], list(y3[fit]), *ref_choice))
    inner_a = answer_split(fit_rows, seed=SEED + 1)
    b_inner, v_inner = bank_matrix(fit_rows, vectors[fit], ~inner_a)
    xb_inner = np.hstack([x[fit], b_inner])
    bank_choice = choose(xb_inner[v_inner], y3[fit][v_inner], y2[fit][v_inner], inner_a[v_inner], "bank head")
    b_all, valid = bank_matrix(rows, vectors, fit)  # the bank: the train questions' training answers
    xb = np.hstack([x, b_all])
    bank_head = GraderHead(fit_head(xb[fit & valid], list(y3[fit & valid]), *bank_choice))
    head_proba = ref_head.predict_proba(x)
    use_bank = (part == "unseen_answers") & valid  # new questions (tune, unseen questions/domains) have no bank
    head_proba[use_bank] = bank_head.predict_proba(xb[use_bank])

    scored = part != "train"
    ce = np.zeros_like(head_proba)
    ce_rows = [r for r, s in zip(rows, scored, strict=True) if s]
    ce[scored], rate = cross_encoder_proba(args.model, ce_rows, questions)
    print(f"cross-encoder: {len(ce_rows)} answers, {rate:.1f} answers/s")

    tune = part == "tune"
    tuning = {}
    for weight in WEIGHTS:
        s = scores_from(blend(head_proba[tune], ce[tune], weight), list(y3[tune]), list(y2[tune]))
        tuning[str(weight)] = round(s["acc_2way"], 4)
    chosen = max(WEIGHTS, key=lambda w: (tuning[str(w)], -abs(w - 0.5)))
    print(f"tune ({int(tune.sum())} answers, {len(parts['tune'])} questions): 2-way accuracy by weight {tuning}; "
          f"chosen {chosen}")

    report: dict = {"chosen_weight": chosen, "tune_2way_by_weight": tuning, "cross_encoder_items_per_s": rate,
                    "choices": {"reference_head": ref_choice, "bank_head": bank_choice}}
    for name in PARTS:
        mask = part == name
        datasets = np.array([r["dataset"] for r in rows])
        entry: dict = {"answers": int(mask.sum())}
        for label, proba in (("before", head_proba), ("cross_encoder", ce), ("after", blend(head_proba, ce, chosen))):
            entry[label] = {}
            for dataset in ("all", "beetle", "sciEntsBank"):
                m = mask & ((datasets == dataset) | (dataset == "all"))
                if m.any():
                    s = scores_from(proba[m], list(y3[m]), list(y2[m]))
                    entry[label][dataset] = {k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}
        report[name] = entry
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.ship:
        source = ("SemEval-2013 Task 7 training splits (Beetle + SciEntsBank), train questions of "
                  "research/grader_pairs.py's split, CC BY-SA 3.0, Dzikovska et al. 2013")
        for name, head in (("grader.json", ref_head), ("grader_bank.json", bank_head)):
            config = dict(head.config) | {"trained_on": source, "cross_encoder_weight": chosen}
            config["validation"] = {p: report[p]["after"]["all"] for p in PARTS}
            (args.ship / name).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        print(f"wrote grader.json and grader_bank.json (cross-encoder weight {chosen}) to {args.ship}")
    print(f"done in {time.perf_counter() - started:.1f}s")


def cmd_speed(args: argparse.Namespace) -> None:
    """tutor.grade's items/s with the cross-encoder off (the previous grader) and on, same items, same process."""
    from verticals_tutor.grade import TutorGrade

    from verticals import RunContext
    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry

    rows = [json.loads(line) for line in (args.split / "tune.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = rows[: args.n]
    items = [TutorGrade.Input(question=r["question"], reference_answers=r["reference_answers"], answer=r["answer"])
             for r in rows]
    host = ModelHost(get_registry().models)
    models = {"encoder": host.get("minilm"), "cross_encoder": host.get("tutor.grade-pair")}
    task = TutorGrade()
    task.run(items[:8], models, RunContext(job_id="warm", params=TutorGrade.Params()))  # loads, merges the adapter
    figures = {}
    for _ in range(2):  # alternated twice: the shared CPU's load moves
        for weight in (0.0, args.weight):
            params = TutorGrade.Params(shipped_bank=False, cross_encoder_weight=weight)
            started = time.perf_counter()
            task.run(items, models, RunContext(job_id="speed", params=params))
            rate = len(items) / (time.perf_counter() - started)
            key = f"cross_encoder_weight={weight}" + (" (feature head only)" if weight == 0 else "")
            figures[key] = max(figures.get(key, 0.0), round(rate, 1))
    print(json.dumps({"items": len(items), "items_per_s": figures}, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    sub = parser.add_subparsers(dest="command", required=True)
    split = sub.add_parser("split", help="write the split, the training pairs and the evaluation files")
    split.add_argument("--out", type=Path, required=True)
    evaluate = sub.add_parser("evaluate", help="before vs after on the held-out parts")
    evaluate.add_argument("--split", type=Path, required=True, help="the folder `split` wrote")
    evaluate.add_argument("--model", default="tutor.grade-pair",
                          help="the cross-encoder: SPEC@VERSION in the model store, a folder, or the spec's own")
    evaluate.add_argument("--report", type=Path, help="write the figures here (JSON)")
    evaluate.add_argument("--ship", type=Path, help="write the refit heads with the chosen weight to this folder")
    speed = sub.add_parser("speed", help="tutor.grade items/s with and without the cross-encoder")
    speed.add_argument("--split", type=Path, required=True, help="the folder `split` wrote (its tune answers)")
    speed.add_argument("--n", type=int, default=300)
    speed.add_argument("--weight", type=float, default=0.5, help="the cross-encoder's weight for the 'on' figure")
    args = parser.parse_args(argv)
    {"split": cmd_split, "evaluate": cmd_evaluate, "speed": cmd_speed}[args.command](args)


if __name__ == "__main__":
    main()
