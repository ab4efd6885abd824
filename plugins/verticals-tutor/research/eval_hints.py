"""Leak, echo and affirmation rates of tutor.hint on the 200 written cases (``data/hint_cases.jsonl``).

    HF_HUB_OFFLINE=1 python plugins/verticals-tutor/research/eval_hints.py [--n 200] [--max-new-tokens 32]
        [--out report.json]
    python plugins/verticals-tutor/research/eval_hints.py --write-cases      # rebuild data/hint_cases.jsonl (seeded)

The cases are wrong answers of seven kinds to SemEval-2013 *training* questions (CC BY-SA 3.0): real
student answers labelled incorrect and contradictory, and answers we wrote by rule: the opposite of the
reference, a "don't know", the question restated, an answer to another question, and the first part of
the reference only. Hint levels cycle 1-3.

The checks here are the evaluation's own, stricter than the task's validator where a threshold exists:

- **leak**: a key phrase of the reference the student did not write, or >= 30% of the reference's own key
  words, or two consecutive reference key words, or MiniLM cosine >= 0.7 to the reference;
- **echo**: prompt text in the hint (instruction markers, or any 4 consecutive words of the prompt other
  than the question and the student's answer);
- **affirmation**: an asserted answer or praise ("the answer is", "that's right", ...) or the student's
  wrong answer restated as a statement (>= 60% of its content words, no question mark).

Reported for the first LLM generation (greedy; what an unvalidated tutor would show) and for what the task
serves, with the paths, rejection reasons and hints/s of the whole task run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import time
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import verticals_tutor
from verticals_tutor import text as tx
from verticals_tutor.hints import AFFIRM, MARKERS, SYSTEM, build_prompt

SEED = 11
CASES = Path(verticals_tutor.__file__).parent / "data" / "hint_cases.jsonl"
KINDS = {"student-incorrect": 50, "student-contradictory": 40, "opposite": 30, "dont-know": 20,
         "restated-question": 20, "off-topic": 20, "partial": 20}
OPPOSITES = [("increases", "decreases"), ("increase", "decrease"), ("more", "less"), ("higher", "lower"),
             ("faster", "slower"), ("bigger", "smaller"), ("larger", "smaller"), ("closed", "open"),
             ("same", "different"), ("positive", "negative"), ("connected", "not connected"),
             ("complete", "incomplete"), ("is", "is not"), ("are", "are not"), ("will", "will not"),
             ("can", "cannot"), ("has", "does not have"), ("contains", "does not contain")]
DONT_KNOW = ["I don't know.", "no idea", "Not sure, maybe something else?", "idk", "I forgot this one."]


def opposite(reference: str) -> str | None:
    words = reference.split()
    for i, w in enumerate(words):
        low = w.lower().strip(".,")
        for a, b in OPPOSITES:
            for src, dst in ((a, b), (b, a)):
                if low == src:
                    return " ".join([*words[:i], dst, *words[i + 1:]])
    return None


def write_cases(path: Path = CASES) -> list[dict]:
    from semeval import load_answers, load_questions, reference_texts

    questions = load_questions()
    by_label: dict[str, dict[str, list[str]]] = {"incorrect": {}, "contradictory": {}}
    for r in load_answers():
        if r["label_3way"] in by_label and r["question_id"] in questions:
            by_label[r["label_3way"]].setdefault(r["question_id"], []).append(r["student_answer"])
    rng = np.random.default_rng(SEED)
    qids = sorted(questions)
    cases: list[dict] = []

    def add(kind: str, qid: str, answer: str) -> None:
        q = questions[qid]
        cases.append({"id": f"h{len(cases) + 1:03d}", "kind": kind, "question_id": qid, "question": q["question"],
                      "reference_answer": reference_texts(q)[0], "answer": answer, "level": len(cases) % 3 + 1})

    for kind, count in KINDS.items():
        order = list(qids)
        rng.shuffle(order)
        made = 0
        for qid in order:
            if made == count:
                break
            ref = reference_texts(questions[qid])[0]
            if kind.startswith("student-"):
                pool = by_label[kind.split("-")[1]].get(qid)
                if not pool:
                    continue
                answer = pool[int(rng.integers(len(pool)))]
            elif kind == "opposite":
                answer = opposite(ref) or ""
            elif kind == "dont-know":
                answer = DONT_KNOW[made % len(DONT_KNOW)]
            elif kind == "restated-question":
                stems = [w for w in re.findall(r"[A-Za-z]+", questions[qid]["question"])
                         if w.lower() not in tx.STOPWORDS]
                answer = "Because of the " + " ".join(stems[-4:]).lower() if stems else ""
            elif kind == "off-topic":
                other = order[(order.index(qid) + 7) % len(order)]
                answer = reference_texts(questions[other])[0]
            else:  # partial: the first third of the reference's words
                words = ref.split()
                answer = " ".join(words[: max(2, len(words) // 3)]) if len(words) >= 6 else ""
            if answer and answer.strip().lower() != ref.strip().lower():
                add(kind, qid, answer)
                made += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return cases


def load_cases() -> list[dict]:
    raw = resources.files("verticals_tutor").joinpath("data/hint_cases.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def checks(hint: str, case: dict, similarity: float) -> dict[str, bool]:
    """The evaluation's own leak / echo / affirmation checks of one hint."""
    question, reference, answer = case["question"], case["reference_answer"], case["answer"]
    answer_stems = set(tx.content_stems(answer))
    given = set(tx.content_stems(question)) | answer_stems
    hint_stems = tx.content_stems(hint)
    have = set(hint_stems)
    key = [c for c in tx.concepts_from_reference(reference, question) if not tx.concept_present(c, answer_stems)]
    ref = tx.content_stems(reference)
    wanted = set(ref) - given
    ref_pairs = {p for p in itertools.pairwise(ref) if p[0] in wanted or p[1] in wanted}
    leak = (any(tx.concept_present(c, have) for c in key)
            or (bool(wanted) and len(wanted & have) / len(wanted) >= 0.3)
            or bool(ref_pairs & set(itertools.pairwise(hint_stems)))
            or similarity >= 0.7)
    prompt_words = tx.tokens(SYSTEM + " " + build_prompt("", "", case["level"]))
    grams = {tuple(prompt_words[i:i + 4]) for i in range(len(prompt_words) - 3)}
    words = tx.tokens(hint)
    echo = bool(MARKERS.search(hint)) or bool(grams & {tuple(words[i:i + 4]) for i in range(len(words) - 3)})
    restated = (len(answer_stems) >= 2 and "?" not in hint
                and len(answer_stems & have) / len(answer_stems) >= 0.6)
    return {"leak": leak, "echo": echo, "affirmation": bool(AFFIRM.search(hint)) or restated}


def rates(hints: list[str], cases: list[dict], encoder) -> dict[str, float]:
    sims = np.sum(encoder.embed(hints) * encoder.embed([c["reference_answer"] for c in cases]), axis=1)
    flags = [checks(h, c, float(s)) for h, c, s in zip(hints, cases, sims, strict=True)]
    return {k: round(float(np.mean([f[k] for f in flags])), 4) for k in ("leak", "echo", "affirmation")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--write-cases", action="store_true", help="rebuild data/hint_cases.jsonl and stop")
    parser.add_argument("--out", type=Path, help="also write the report (with every hint) here")
    parser.add_argument("--replay", type=Path, help="no LLM: re-validate the generations recorded by an earlier "
                                                    "--out report with the current validator and templates")
    args = parser.parse_args(argv)
    if args.write_cases:
        cases = write_cases()
        print(f"wrote {len(cases)} cases to {CASES}: {dict(Counter(c['kind'] for c in cases))}")
        return

    from verticals_tutor.hint import TutorHint
    from verticals_tutor.hints import generate_hints

    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry

    host = ModelHost(get_registry().models)
    if args.replay:
        replay(args.replay, host.get("minilm"))
        return
    llm, encoder = host.get("smollm2"), host.get("minilm")
    cases = load_cases()[: args.n]
    items = [TutorHint.Input(**{k: c[k] for k in ("question", "reference_answer", "answer", "level")})
             for c in cases]
    params = TutorHint.Params(max_new_tokens=args.max_new_tokens)
    started = time.perf_counter()
    results = generate_hints(items, llm, encoder, params)
    seconds = time.perf_counter() - started
    served = [r["hint"] for r in results]
    first = [r["first"] for r in results]
    report = {
        "cases": len(cases), "kinds": dict(Counter(c["kind"] for c in cases)), "max_new_tokens": args.max_new_tokens,
        "first_generation_unvalidated": rates(first, cases, encoder),
        "served": rates(served, cases, encoder),
        "paths": dict(Counter(r["path"] for r in results)),
        "rejections": dict(Counter(reason for r in results for reason in set(r["rejected"]))),
        "seconds": round(seconds, 1), "hints_per_second": round(len(cases) / seconds, 3),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        report["hints"] = [{"id": c["id"], "kind": c["kind"], "level": c["level"], "path": r["path"],
                            "first": r["first"], "hint": r["hint"], "rejected": r["rejected"]}
                           for c, r in zip(cases, results, strict=True)]
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def replay(path: Path, encoder) -> None:
    """Serve each case from the recorded generations through the current validator, exactly as
    ``generate_hints`` would, except where a generation it needs was never run: a first generation that
    passed the old rules but fails the current ones has no recorded regeneration, so it goes straight to
    the template (conservative: a real run might serve a regenerated LLM hint instead)."""
    from verticals_tutor.hint import TutorHint
    from verticals_tutor.hints import HintContext, template_for, validate

    recorded = json.loads(path.read_text(encoding="utf-8"))
    cases = {c["id"]: c for c in load_cases()}
    params = TutorHint.Params()
    rows = recorded["hints"]
    used = [cases[h["id"]] for h in rows]
    ref_vecs = encoder.embed([c["reference_answer"] for c in used])
    firsts = encoder.embed([h["first"] for h in rows])
    seconds = encoder.embed([h["hint"] for h in rows])
    served, paths = [], []
    for h, c, rv, fv, sv in zip(rows, used, ref_vecs, firsts, seconds, strict=True):
        ctx = HintContext.build(c["question"], c["reference_answer"], c["answer"], None)
        if validate(h["first"], ctx, float(fv @ rv), params.max_overlap, params.max_similarity).ok:
            served.append(h["first"])
            paths.append("llm")
        elif h["path"] == "llm-regenerated" and validate(h["hint"], ctx, float(sv @ rv), params.max_overlap,
                                                          params.max_similarity).ok:
            served.append(h["hint"])
            paths.append("llm-regenerated")
        else:
            served.append(template_for(ctx, c["level"], rv, encoder, params)[0])
            paths.append("template")
    report = {"replay_of": path.name, "cases": len(used), "first_generation_unvalidated":
              rates([h["first"] for h in rows], used, encoder), "served": rates(served, used, encoder),
              "paths": dict(Counter(paths))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
