"""Hint leak rate on 100 cases built from the SemEval-2013 training questions.

    HF_HUB_OFFLINE=1 python -m verticals_tutor.eval_hints [--n 100] [--max-new-tokens 48]

Each case: a training question, its best reference answer, and one student answer labelled incorrect or
contradictory (seeded draw, one case per question, levels cycling 1-3). Reports the leak rate of the
first LLM generation (before the guardrail), the final leak rate after the guardrail, the share of each
path, and an independent stricter check (any reference key word at >= 40% overlap, or cosine >= 0.7).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import numpy as np

from verticals_tutor.semeval import load_answers, load_questions, reference_texts

SEED = 11


def build_cases(n: int) -> list[dict]:
    questions = load_questions()
    wrong: dict[str, list[dict]] = {}
    for r in load_answers():
        if r["label_2way"] == "incorrect" and r["question_id"] in questions:
            wrong.setdefault(r["question_id"], []).append(r)
    rng = np.random.default_rng(SEED)
    qids = sorted(wrong)
    rng.shuffle(qids)
    cases = []
    for k, qid in enumerate(qids[:n]):
        answer = wrong[qid][int(rng.integers(len(wrong[qid])))]
        q = questions[qid]
        cases.append({"question": q["question"], "reference_answer": reference_texts(q)[0],
                      "answer": answer["student_answer"], "level": k % 3 + 1})
    return cases


def main(argv: list[str] | None = None) -> None:
    from verticals import RunContext
    from verticals.core.models import ModelHost
    from verticals.plugins import get_registry
    from verticals_tutor.hints import leak_check
    from verticals_tutor.tasks import TutorHint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args(argv)
    host = ModelHost(get_registry().models)
    models = {"llm": host.get("smollm2"), "encoder": host.get("minilm")}
    items = [TutorHint.Input(**c) for c in build_cases(args.n)]
    started = time.perf_counter()
    # first pass only (no regeneration, guardrail off) to measure what the raw LLM leaks
    raw_params = TutorHint.Params(max_new_tokens=args.max_new_tokens, max_overlap=1.0, max_similarity=1.0,
                                  regenerations=0)
    raw = TutorHint().run(items, models, RunContext(job_id="eval-raw", params=raw_params))
    guarded_params = TutorHint.Params(max_new_tokens=args.max_new_tokens)
    guarded = TutorHint().run(items, models, RunContext(job_id="eval", params=guarded_params))
    seconds = time.perf_counter() - started
    enc = models["encoder"]

    def rates(outs, overlap, similarity):
        hv = enc.embed([o.hint for o in outs])
        rv = enc.embed([i.reference_answer for i in items])
        leaks = [leak_check(o.hint, i.reference_answer, i.question, i.answer, h, r, overlap, similarity).leaked
                 for o, i, h, r in zip(outs, items, hv, rv, strict=True)]
        return float(np.mean(leaks))

    default = TutorHint.Params()
    report = {
        "cases": len(items), "max_new_tokens": args.max_new_tokens,
        "raw_llm_leak_rate": rates(raw, default.max_overlap, default.max_similarity),
        "guarded_leak_rate": rates(guarded, default.max_overlap, default.max_similarity),
        "raw_llm_leak_rate_strict": rates(raw, 0.4, 0.7),
        "guarded_leak_rate_strict": rates(guarded, 0.4, 0.7),
        "paths": dict(Counter(o.path for o in guarded)),
        "seconds_both_passes": round(seconds, 1),
        "examples": [{"level": i.level, "path": o.path, "hint": o.hint} for i, o in zip(items[:6], guarded[:6],
                                                                                         strict=True)],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
