"""Measure each strategy alone and combined: coverage, tests kept / generated, time per module.

    HF_HUB_OFFLINE=1 python -m verticals_testgen.evaluate            # all configurations
    python -m verticals_testgen.evaluate --configs observed,ghostwriter --no-llm

Prints a Markdown table (the one in EVAL.md) and writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from verticals_testgen.pipeline import Options, generate_tests
from verticals_testgen.sandbox import protections
from verticals_testgen.target import resolve

STDLIB = ["colorsys", "textwrap", "fnmatch", "shlex", "html"]
SAMPLES = ["verticals_testgen.samples.shapes", "verticals_testgen.samples.textstats",
           "verticals_testgen.samples.inventory"]
CONFIGS = {
    "observed": ("observed",),
    "ghostwriter": ("ghostwriter",),
    "observed+ghostwriter": ("observed", "ghostwriter"),
    "llm": ("llm",),
    "all": ("observed", "ghostwriter", "llm"),
}


def _llm(max_new_tokens: int):
    from verticals.core.models import ModelHost
    from verticals.plugins import get_registry
    from verticals_testgen.strategies import SYSTEM

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
    parser.add_argument("--modules", default=",".join(STDLIB + SAMPLES))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--llm-modules", default=",".join(SAMPLES), help="modules the LLM configurations run on")
    parser.add_argument("--llm-prompts", type=int, default=2)
    parser.add_argument("--llm-rounds", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--explore-seconds", type=float, default=5.0)
    parser.add_argument("--parallel", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--json", default="testgen_eval.json")
    args = parser.parse_args()
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
                          max_new_tokens=args.max_new_tokens, explore_seconds=args.explore_seconds, test_timeout=3)
        started = time.perf_counter()
        outputs = generate_tests(targets, options, generate if uses_llm else None, parallel=args.parallel)
        print(f"{config}: {len(targets)} modules in {time.perf_counter() - started:.1f}s", flush=True)
        for out in outputs:
            rows.append({"config": config, "module": out["module"], "before": out["coverage_before"],
                         "after": out["coverage_after"], "generated": out["generated"], "passed": out["passed"],
                         "kept": out["kept"], "seconds": out["seconds"], "strategies": out["strategies"]})
    Path(args.json).write_text(json.dumps({"rows": rows, "sandbox": protections()}, indent=1))
    print("\n| config | module | line % before -> after | branch % before -> after | kept / passed / generated "
          "| s / module |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        b, a = r["before"], r["after"]
        print(f"| {r['config']} | {r['module']} | {b['line_percent']} -> {a['line_percent']} | "
              f"{b['branch_percent']} -> {a['branch_percent']} | {r['kept']} / {r['passed']} / {r['generated']} | "
              f"{r['seconds']:.1f} |")
    print("\n| config | modules | mean line % after | mean branch % after | kept / generated | mean s / module |")
    print("|---|---|---|---|---|---|")
    for config in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == config]
        n = len(mine)
        print(f"| {config} | {n} | {sum(r['after']['line_percent'] for r in mine) / n:.1f} | "
              f"{sum(r['after']['branch_percent'] for r in mine) / n:.1f} | "
              f"{sum(r['kept'] for r in mine)} / {sum(r['generated'] for r in mine)} | "
              f"{sum(r['seconds'] for r in mine) / n:.1f} |")
    print(f"\nsandbox layers: {protections()}")


if __name__ == "__main__":
    main()
