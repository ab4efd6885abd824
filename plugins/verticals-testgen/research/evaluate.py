"""Measure the defaults (and each strategy alone or combined): coverage, tests kept / generated, time per module.

    python plugins/verticals-testgen/research/evaluate.py --configs default --parallel 2            # the EVAL.md table
    # with a before column
    python plugins/verticals-testgen/research/evaluate.py --configs default --baseline baseline.json
    HF_HUB_OFFLINE=1 python plugins/verticals-testgen/research/evaluate.py --configs llm
        --modules verticals_testgen.samples.shapes

Coverage is coverage.py's (branch mode), measured in the jail on the final file (the kept tests only), which
is run twice there. Prints Markdown tables (the ones in EVAL.md) and writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from verticals_testgen.generate import GenerateParams
from verticals_testgen.pipeline import Options, generate_tests
from verticals_testgen.sandbox import protections
from verticals_testgen.target import resolve

STDLIB = ["colorsys", "textwrap", "fnmatch", "shlex", "html", "graphlib", "string", "quopri", "getopt", "reprlib",
          "email.quoprimime", "base64"]
PYPI = ["toposort", "inflection", "docstring_parser.rest", "docstring_parser.google", "roman", "mdurl._parse"]
SAMPLES = ["verticals_testgen.samples.shapes", "verticals_testgen.samples.textstats",
           "verticals_testgen.samples.inventory"]
CONFIGS = {
    "default": ("observed", "ghostwriter"),  # what `strategies=auto` resolves to with the packaged 135M model
    "observed": ("observed",),
    "ghostwriter": ("ghostwriter",),
    "observed+ghostwriter": ("observed", "ghostwriter"),
    "llm": ("llm",),
    "all": ("observed", "ghostwriter", "llm"),
}


def _llm(max_new_tokens: int):
    from verticals_testgen.strategies import SYSTEM

    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry

    host = ModelHost(get_registry().models)
    started = time.perf_counter()
    model = host.get("smollm2")
    print(f"loaded smollm2 in {time.perf_counter() - started:.1f}s on {model.device}", flush=True)
    calls = {"n": 0}

    def generate(prompts: list[str]) -> list[str]:
        calls["n"] += 1
        temperature = 0.0 if calls["n"] == 1 else 0.7
        return model.generate(prompts, max_new_tokens=max_new_tokens, temperature=temperature, system=SYSTEM,
                              seed=calls["n"])

    return generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", default=",".join(STDLIB + PYPI),
                        help="the pinned PyPI ones: pip install -r plugins/verticals-testgen/eval-requirements.txt")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--llm-modules", default=",".join(SAMPLES), help="modules the LLM configurations run on")
    parser.add_argument("--llm-prompts", type=int, default=2)
    parser.add_argument("--llm-rounds", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--explore-seconds", type=float, default=20.0, help="at most this long per explorer round")
    parser.add_argument("--time-budget", type=float, default=GenerateParams.model_fields["time_budget"].default,
                        help="seconds per module (the task's default)")
    parser.add_argument("--baseline", help="JSON written by an earlier run: its figures become the 'before' column")
    parser.add_argument("--parallel", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--json", default="testgen_eval.json")
    parser.add_argument("--tests-dir", help="also write each module's test file to DIR/CONFIG/")
    parser.add_argument("--score", action="store_true", help="also score each final file against every mutant "
                        "(the same scorer for every version: ModuleRun.score_tests; not counted in the time)")
    parser.add_argument("--score-dir", help="only score the files DIR/test_<module>.py that an earlier version "
                        "wrote (no generation)")
    args = parser.parse_args()
    if args.score_dir:
        rows = score_files([m for m in args.modules.split(",") if m], Path(args.score_dir), args.parallel)
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))
        print("\n| module | tests passing / in file | asserting | mutation score | killed / mutants |")
        print("|---|---|---|---|---|")
        for r in rows:
            s = r["score"]
            print(f"| {r['module']} | {r['passing']} / {r['tests']} | {r['asserting']} | "
                  f"{'-' if s is None else f'{s:.3f}'} | {r['killed']} / {r['evaluated']} |")
        scores = [r["score"] or 0.0 for r in rows]
        print(f"\nmean mutation score {sum(scores) / max(1, len(scores)):.3f} over {len(rows)} modules")
        return
    modules = [m for m in args.modules.split(",") if m]
    llm_modules = [m for m in args.llm_modules.split(",") if m]
    generate = None
    rows = []
    for config in [c for c in args.configs.split(",") if c]:
        strategies = CONFIGS[config]
        uses_llm = "llm" in strategies
        if uses_llm and generate is None:
            generate = _llm(args.max_new_tokens)
        targets = [resolve(module=m) for m in (llm_modules if uses_llm else modules)]
        options = Options(strategies=strategies, llm_rounds=args.llm_rounds, llm_max_prompts=args.llm_prompts,
                          max_new_tokens=args.max_new_tokens, explore_seconds=args.explore_seconds,
                          time_budget=args.time_budget)
        started = time.perf_counter()
        outputs = generate_tests(targets, options, generate if uses_llm else None, parallel=args.parallel)
        print(f"{config}: {len(targets)} modules in {time.perf_counter() - started:.1f}s", flush=True)
        scored = {}
        if args.score:
            scored = {r["module"]: r for r in score_codes({o["module"]: o["test_code"] for o in outputs},
                                                         args.parallel)}
        for out in outputs:
            mutation = out.get("mutation") or {}
            rows.append({"config": config, "module": out["module"], "before": out["coverage_before"],
                         "mutation": mutation, "scored": scored.get(out["module"]),
                         "asserting": out.get("asserting"), "crash_tests": out.get("crash_tests"),
                         "after": out["coverage_after"], "generated": out["generated"], "passed": out["passed"],
                         "kept": out["kept"], "seconds": out["seconds"], "strategies": out["strategies"],
                         "verified": bool(out["test_code"]) or out["kept"] == 0,
                         "uncovered_lines": out["uncovered_lines"], "uncovered_branches": out["uncovered_branches"]})
            if args.tests_dir and out["test_code"]:
                folder = Path(args.tests_dir) / config
                folder.mkdir(parents=True, exist_ok=True)
                (folder / out["test_file"]).write_text(out["test_code"], encoding="utf-8")
    Path(args.json).write_text(json.dumps({"rows": rows, "sandbox": protections()}, indent=1))
    base = {}
    if args.baseline:
        base = {r["module"]: r for r in json.loads(Path(args.baseline).read_text())["rows"]}
    print("\n| config | module | line+branch % (baseline ->) after | line % | branch % | mutation score (product) "
          "| mutation score (all mutants) | kept / passed / generated | asserting | s / module |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a = r["after"]
        before = f"{base[r['module']]['after']['percent']} -> " if r["module"] in base else ""
        m = r.get("mutation") or {}
        own = f"{m['score']:.3f} ({m['killed']}/{m['evaluated']} of {m['total']})" if m.get("score") is not None \
            else "-"
        s = r.get("scored") or {}
        full = f"**{s['score']:.3f}** ({s['killed']}/{s['evaluated']})" if s.get("score") is not None else "-"
        print(f"| {r['config']} | {r['module']} | {before}**{a['percent']}** | {a['line_percent']} | "
              f"{a['branch_percent']} | {own} | {full} | {r['kept']} / {r['passed']} / {r['generated']} | "
              f"{r.get('asserting')} | {r['seconds']:.0f} |")
    print("\n| config | modules | mean line+branch % (baseline ->) after | mean line % | mean branch % "
          "| kept / generated | mean s / module |")
    print("|---|---|---|---|---|---|---|")
    for config in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == config]
        n = len(mine)
        known = [base[r["module"]]["after"]["percent"] for r in mine if r["module"] in base]
        before = f"{sum(known) / len(known):.1f} -> " if len(known) == n else ""
        print(f"| {config} | {n} | {before}**{sum(r['after']['percent'] for r in mine) / n:.1f}** | "
              f"{sum(r['after']['line_percent'] for r in mine) / n:.1f} | "
              f"{sum(r['after']['branch_percent'] for r in mine) / n:.1f} | "
              f"{sum(r['kept'] for r in mine)} / {sum(r['generated'] for r in mine)} | "
              f"{sum(r['seconds'] for r in mine) / n:.1f} |")
    for config in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == config and r.get("scored")]
        if mine:
            scores = [r["scored"]["score"] or 0.0 for r in mine]
            print(f"{config}: mean mutation score (all mutants) {sum(scores) / len(scores):.3f}, "
                  f"lowest {min(scores):.3f}, over {len(mine)} modules")
    print(f"\nsandbox layers: {protections()}")


def score_codes(codes: dict[str, str], parallel: int = 1) -> list[dict]:
    """The mutation score of each module's test file against every mutant (ModuleRun.score_tests)."""
    from concurrent.futures import ThreadPoolExecutor

    from verticals_testgen.pipeline import ModuleRun

    def one(item: tuple[str, str]) -> dict:
        module, code = item
        run = ModuleRun(resolve(module=module), Options(time_budget=900.0))
        try:
            if not code:
                return {"module": module, "score": 0.0, "killed": 0, "evaluated": 0, "total": 0, "tests": 0,
                        "passing": 0, "asserting": 0}
            return {"module": module, **run.score_tests(code)}
        finally:
            run.close()

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, codes.items()))


def score_files(modules: list[str], folder: Path, parallel: int = 1) -> list[dict]:
    codes = {}
    for module in modules:
        path = folder / f"test_{module.replace('.', '_')}.py"
        codes[module] = path.read_text(encoding="utf-8") if path.exists() else ""
    return score_codes(codes, parallel)


if __name__ == "__main__":
    main()
