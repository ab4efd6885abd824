"""The ``testgen.generate`` task."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from verticals import Evidence, Explanation, ItemError, ModelRoles, ModelSpec, OperatorOnly, RunContext, Task
from verticals.contract.evaluators import Evaluator, Record, Scores
from verticals.jail import remove_private_dir
from verticals_testgen.pipeline import Options, generate_tests
from verticals_testgen.sandbox import Limits
from verticals_testgen.strategies import STRATEGIES, SYSTEM, llm_capable
from verticals_testgen.target import TargetError, expand, resolve


class ModuleInput(BaseModel):
    """A module to test: an importable name, a .py path, or source text with a module name."""

    model_config = ConfigDict(extra="ignore")

    # declared first: `module` is only a name when the source comes with it (an API tenant sends source;
    # a module, path or folder on the server is the operator's: OperatorOnly, enforced by the core)
    source: str | None = Field(None, description="module source text (needs `module` as its name)")
    module: Annotated[str | None, OperatorOnly("module", unless="source")] = Field(
        None, description="importable module name (or a .py path); through the API only with `source`")
    path: Annotated[str | None, OperatorOnly("path")] = Field(
        None, description="path of a .py file (CLI only)")
    text: Annotated[str | None, OperatorOnly("path")] = Field(
        None, description="a line of a .txt input: module name or path (CLI only)")

    @model_validator(mode="after")
    def _one_target(self) -> ModuleInput:
        if self.text and not (self.module or self.path):
            value = self.text.strip()
            if value.endswith(".py") or "/" in value:
                self.path = value
            else:
                self.module = value
        if not (self.module or self.path or self.source):
            raise ValueError("give `module` (name), `path` (.py file) or `source` with `module`")
        if self.source is not None and not self.module:
            raise ValueError("`source` needs `module`: the name the tests import it by")
        return self


class CoverageFigures(BaseModel):
    lines_covered: int
    lines_total: int
    line_percent: float
    branches_covered: int
    branches_total: int
    branch_percent: float
    percent: float


class TestRecord(BaseModel):
    name: str
    strategy: str
    status: str  # kept | redundant | flaky | failed | error | killed | rejected_import | rejected_code |
    # dropped_in_file
    message: str = ""
    added_lines: list[int] = []
    added_branches: list[str] = []
    killed_mutants: list[int] = []  # lines of the mutants this kept test kills
    asserts: bool = True  # False: a crash-finding test (documented as such in the file)
    seconds: float = 0.0


class Survivor(BaseModel):
    line: int
    change: str  # "'<' -> '<='", "'return x' -> 'return None'"...
    operator: str  # operator | comparison | condition | constant | return | statement


class MutationFigures(BaseModel):
    score: float | None  # killed / evaluated; None when no mutant was evaluated
    killed: int
    evaluated: int
    total: int
    seconds: float
    survivors: list[Survivor] = []
    note: str = ""
    told_apart: int = 0  # survivors of the first pass for which a targeted explorer round found a telling input


class GeneratedTests(BaseModel):
    module: str
    file: str
    test_file: str
    test_code: str
    coverage_before: CoverageFigures
    coverage_after: CoverageFigures
    uncovered_lines: list[int]
    uncovered_branches: list[str]
    tests: list[TestRecord]
    generated: int
    passed: int
    kept: int
    asserting: int = 0  # kept tests with an assertion (the rest are documented crash-finding tests)
    crash_tests: int = 0
    mutation: MutationFigures | None = None
    strategies: dict[str, dict[str, float]]
    sandbox: dict[str, bool | int | None]
    formatter: str
    seconds: float
    notes: list[str] = []


class GenerateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategies: list[str] = Field(["auto"], description=f"any of {', '.join(STRATEGIES)}, or auto: observed and "
                                  "ghostwriter, plus llm when the configured model passes the capability bar "
                                  "(comma-separated on the CLI)")
    time_budget: float = Field(150.0, ge=5, le=3600, description="seconds per module for search rounds, LLM "
                               "rounds, mutation analysis and verifying the final file (model loading not "
                               "included); the search leaves mutation_share of it to mutation analysis")
    mutation: bool = Field(True, description="mutation analysis after the search: tests that kill mutants are "
                           "kept, the mutation score is reported")
    mutation_share: float = Field(0.35, ge=0.0, le=0.9, description="share of time_budget the search leaves to "
                                  "mutation analysis")
    llm_rounds: int = Field(1, ge=0, le=5, description="coverage-guided LLM rounds")
    llm_max_prompts: int = Field(4, ge=1, le=64, description="prompts per module per round")
    max_new_tokens: int = Field(160, ge=16, le=2048)
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="sampling temperature of rounds after the first")
    explore_seconds: float = Field(20.0, gt=0, le=600, description="at most this long per explorer round")
    test_timeout: float = Field(5.0, gt=0, le=120, description="seconds one candidate test may run")
    memory_mb: int = Field(2048, ge=256, le=65536, description="memory of each jailed run (its cgroup) and "
                           "address space of each of its processes; capped at the server's "
                           "VERTICALS_JAIL_MAX_MEMORY_MB (default 4096)")
    cpu_seconds: int = Field(60, ge=1, le=3600, description="CPU-time limit of one jailed process; capped at "
                             "the server's VERTICALS_JAIL_MAX_CPU_SECONDS (default 300)")
    seed: int = 0

    @field_validator("strategies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [v for v in value if v not in (*STRATEGIES, "auto")]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; use auto or any of {', '.join(STRATEGIES)}")
        return value

    def resolved_strategies(self, llm: ModelSpec | None = None) -> list[str]:
        """``auto`` expanded: observed + ghostwriter, and llm only when the model ``llm`` (the spec of the job's
        llm role) is capable (:func:`~verticals_testgen.strategies.llm_capable`)."""
        if "auto" not in self.strategies:
            return list(self.strategies)
        chosen = [s for s in self.strategies if s != "auto"]
        extra = ["observed", "ghostwriter"] + (["llm"] if llm_capable(llm)[0] else [])
        return list(dict.fromkeys(chosen + extra))


class TestSuiteEvaluator(Evaluator):
    """How good the generated tests are: the mutation score (seeded bugs the kept tests catch) and coverage.

    There is no gold label to compare with: each item's output is measured against its own module
    (``gold_from_output``: the "gold" of an item is its module name, read from the output). Metrics: the mean and
    lowest mutation score over the modules, the mean line+branch coverage, the share of kept tests that assert
    something, the modules and failed items. Items whose score is under ``floor`` (the issue's per-module bar,
    0.65) are listed as wrong. A failed item counts as score 0 and coverage 0 (failures count against the task).
    """

    __test__ = False  # not a pytest test class, despite its name
    kind = "tests"
    main_metric = "mutation_score"
    gold_from_output = True

    def __init__(self, gold_field: str = "module", output_field: str = "mutation.score", floor: float = 0.65):
        super().__init__(gold_field, output_field)
        self.floor = floor

    def predicted(self, output: dict[str, Any] | None) -> Any:
        if not output:
            return None
        after = output.get("coverage_after") or {}
        mutation = output.get("mutation") or {}
        return {"mutation_score": mutation.get("score"), "killed": mutation.get("killed", 0),
                "evaluated": mutation.get("evaluated", 0), "coverage": after.get("percent"),
                "kept": output.get("kept", 0), "asserting": output.get("asserting", 0)}

    def score(self, records: Sequence[Record]) -> Scores:
        scores, coverages, per_module, wrong = [], [], {}, []
        kept = asserting = 0
        for record in records:
            value = record.predicted if isinstance(record.predicted, dict) else {}
            score = 0.0 if record.failed or value.get("mutation_score") is None else float(value["mutation_score"])
            coverage = 0.0 if record.failed or value.get("coverage") is None else float(value["coverage"])
            scores.append(score)
            coverages.append(coverage)
            kept += int(value.get("kept") or 0)
            asserting += int(value.get("asserting") or 0)
            per_module[str(record.gold or record.seq)] = {"mutation_score": round(score, 4),
                                                          "coverage": round(coverage, 1)}
            if score < self.floor:
                wrong.append(record.seq)
        n = len(records)
        metrics = {"mutation_score": round(sum(scores) / n, 4) if n else 0.0,
                   "min_mutation_score": round(min(scores), 4) if n else 0.0,
                   "coverage": round(sum(coverages) / n, 2) if n else 0.0,
                   "asserting_share": round(asserting / kept, 4) if kept else 0.0,
                   "modules": n, "failed": sum(1 for r in records if r.failed)}
        return Scores(metrics, per_module, None, wrong)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "floor": self.floor}


class GenerateTests(Task):
    name = "testgen.generate"
    executes_code = True
    description = ("Generate pytest tests for Python modules; keep those that pass twice in a sandbox and add "
                   "coverage or kill mutants; report coverage and mutation score")
    Input = ModuleInput
    Output = GeneratedTests
    Params = GenerateParams
    models = {"llm": "smollm2"}
    device = "cpu"
    chunk_size = 2  # a module takes up to its time budget: a chunk stays a few minutes
    batch_size = 4
    expected_item_seconds = 150.0  # the default time budget per module (time_budget)
    preview = ("module", "kept", "generated", "line % before=coverage_before.line_percent",
               "line % after=coverage_after.line_percent")  # never the test file itself
    text_field = "module"
    evaluator = TestSuiteEvaluator()
    golden = "golden/samples.jsonl"  # the three bundled sample modules (samples/README.md)

    def models_for(self, params: BaseModel) -> dict[str, str]:
        assert isinstance(params, GenerateParams)
        # the LLM strategy named: load it before the job starts; auto: run() reads the model's spec (not the model)
        # and loads it on first use only when it is capable; no LLM strategy: never loaded
        return dict(self.models) if "llm" in params.strategies else {}

    def read_items(self, rows: Iterable[dict[str, Any]], params: BaseModel) -> Iterator[dict[str, Any]]:
        for row in rows:
            item = {k: row[k] for k in ("module", "path", "source", "text") if row.get(k) not in (None, "")}
            text = str(item.get("text", "")).strip()
            if "text" in item and (not text or text.startswith("#")):
                continue  # blank lines and comments of modules.txt
            if "text" in item:
                item["text"] = text
            if "source" not in item:  # a package or a folder: one item per module in it
                name = item.get("module") or (text if text and not (text.endswith(".py") or "/" in text) else None)
                path = item.get("path") or (text if text and (text.endswith(".py") or "/" in text) else None)
                modules = expand(module=name, path=path)
                if modules is not None:
                    yield from modules
                    continue
            yield item or row

    def run(self, batch: list[BaseModel], models: Mapping[str, Any], ctx: RunContext) -> list[BaseModel | ItemError]:
        params: GenerateParams = ctx.params  # type: ignore[assignment]
        llm_spec = models.spec("llm") if isinstance(models, ModelRoles) and "llm" in models else None
        strategies = params.resolved_strategies(llm_spec)
        if "auto" in params.strategies and "llm" not in strategies:
            ctx.logger.info("testgen: llm strategy off (%s)", llm_capable(llm_spec)[1])
        slots_of: dict[str, int] = {}
        shares: dict[str, float] = {}  # module -> share of its work done (its time budget spent; 1.0 when done)
        lock = threading.Lock()

        def progress(record: dict[str, Any]) -> None:
            # never the module name (an input: it may name a customer's code) in a log line or a progress
            # note; its position in the batch instead
            with lock:
                position = slots_of.setdefault(record["module"], len(slots_of) + 1)
                done = record["stage"] == "done"
                stage = {"explore": "search", "search": "search", "mutate": "mutation analysis",
                         "verify": "verifying the file", "llm": "llm"}.get(record["stage"], record["stage"])
                shares[record["module"]] = 1.0 if done else min(0.95, record["seconds"] / params.time_budget)
                finished = sum(share >= 1.0 for share in shares.values())
                ctx.progress(sum(shares.values()), len(batch),
                             note=f"module {position}/{len(batch)} {stage}"
                                  + (f" round {record['round'] + (record['stage'] == 'explore')}"
                                     if record["stage"] in ("explore", "search") else "")
                                  + f": {record['candidates']} candidates, {record['coverage']:.0f}% covered"
                                  + (f" ({finished} done)" if finished and not done else ""))
            if record["stage"] != "explore":
                ctx.logger.info("testgen: module %d/%d %s%s: %d candidates, coverage %.1f%%, %.0fs",
                                position, len(batch), stage,
                                f" round {record['round']}" if record["stage"] == "search" else "",
                                record["candidates"], record["coverage"], record["seconds"])

        options = Options(
            strategies=tuple(strategies), llm_rounds=params.llm_rounds, llm_max_prompts=params.llm_max_prompts,
            max_new_tokens=params.max_new_tokens, time_budget=params.time_budget,
            explore_seconds=params.explore_seconds, test_timeout=params.test_timeout, seed=params.seed,
            mutation=params.mutation, mutation_share=params.mutation_share,
            limits=Limits(cpu_seconds=params.cpu_seconds, memory_mb=params.memory_mb,
                          test_timeout=params.test_timeout, cancelled=ctx.cancelled),
            progress=progress,
        )
        generate = None
        if "llm" in options.strategies and "llm" in models:
            llm = models["llm"]  # loads on first use: jobs without the LLM strategy never load it
            rounds = {"n": 0}

            def generate(prompts: list[str]) -> list[str]:
                temperature = 0.0 if rounds["n"] == 0 else params.temperature
                rounds["n"] += 1
                with lock:
                    ctx.progress(sum(shares.values()), len(batch),
                                 note=f"llm round {rounds['n']}: generating {len(prompts)} test(s)")
                return llm.generate(prompts, max_new_tokens=params.max_new_tokens, temperature=temperature,
                                    system=SYSTEM, seed=params.seed + rounds["n"])

        targets, slots = [], []
        results: list[BaseModel | ItemError | None] = [None] * len(batch)
        try:
            for index, item in enumerate(batch):
                assert isinstance(item, ModuleInput)
                try:
                    targets.append(resolve(module=item.module, path=item.path, source=item.source))
                    slots.append(index)
                except TargetError as error:
                    results[index] = ItemError(str(error), code="bad_target")
            outputs = generate_tests(targets, options, generate, parallel=min(len(targets), os.cpu_count() or 1))
        finally:  # tenant source folders go whatever happens (a killed worker's: the next process sweeps them)
            for target in targets:
                if target.workdir:
                    remove_private_dir(target.workdir)
        for index, output in zip(slots, outputs, strict=True):
            results[index] = GeneratedTests(**output)
        ctx.logger.info("testgen: %d module(s) done", len(slots))
        return results  # type: ignore[return-value]

    def files(self, item: BaseModel, output: BaseModel) -> dict[str, str]:
        assert isinstance(output, GeneratedTests)
        return {output.test_file: output.test_code} if output.test_code else {}

    def explain(self, batch: list[BaseModel], outputs: list[BaseModel], models: Mapping[str, Any],
                ctx: RunContext) -> list[Explanation | None]:
        """Why each test was kept: the lines and branches it added to the coverage and the mutants it kills, in
        the order the search kept them, and the lines still uncovered. Read from the run's own records: nothing
        runs again."""
        return [tests_explanation(output) for output in outputs]  # type: ignore[arg-type]

    def summarize(self, outputs: Iterable[BaseModel], ctx: RunContext) -> dict[str, Any] | None:
        """Per module: line+branch coverage before and after, the mutation score with killed/evaluated mutants,
        kept (asserting) tests and seconds, few enough columns for an 80-column terminal; then the surviving
        mutants of each module on one wrapped line (:func:`survivors_line`; the list, up to 100, is in each
        result's ``mutation.survivors``). ``table`` is the same as plain text, for files."""
        rows: list[dict[str, Any]] = []
        survivors: dict[str, str] = {}
        before: dict[str, float] = {}
        asserting: dict[str, int] = {}
        generated = 0
        for output in outputs:
            assert isinstance(output, GeneratedTests)
            mutation = output.mutation
            scored = mutation is not None and mutation.score is not None
            rows.append({  # coverage before is in the preview and the results (coverage_before)
                "module": output.module, "coverage": round(output.coverage_after.percent, 1),
                "mutation_score": mutation.score if mutation else None,
                "killed": f"{mutation.killed}/{mutation.evaluated}" if mutation and scored else "-",
                "kept": output.kept, "s": round(output.seconds),
            })
            # in the text table only (the terminal's has no room): coverage before, asserting tests
            before[output.module] = output.coverage_before.percent
            asserting[output.module] = output.asserting
            generated += output.generated
            if mutation is not None and scored:
                survivors[output.module] = survivors_line(mutation)
        if not rows:
            return None
        header = f"{'module':<34} {'coverage %':>14} {'mutants killed':>17} {'kept (asserting)':>16} {'sec':>5}"
        lines = [header, "-" * len(header)]
        for r in rows:
            score = (f"{r['killed']} {100 * r['mutation_score']:3.0f}%" if r["mutation_score"] is not None
                     else "-")
            kept = f"{r['kept']} ({asserting[r['module']]})"
            lines.append(f"{r['module'][:34]:<34} {before[r['module']]:>5.1f} -> {r['coverage']:>5.1f} "
                         f"{score:>17} {kept:>16} {r['s']:>5}")
        if survivors:
            lines += ["", "surviving mutants (line: change)"] + [f"{m}: {text}" for m, text in survivors.items()]
        scores = [r["mutation_score"] for r in rows if r["mutation_score"] is not None]
        return {"modules": rows, "surviving_mutants": survivors, "table": "\n".join(lines),
                "kept": sum(r["kept"] for r in rows), "asserting": sum(asserting.values()), "generated": generated,
                "mean_coverage": round(sum(r["coverage"] for r in rows) / len(rows), 1),
                "mean_mutation_score": round(sum(scores) / len(scores), 3) if scores else None}


SURVIVORS_SHOWN = 5  # surviving mutants named per module in the summary (then "and N more")
CHANGE_WIDTH = 32  # a longer change (a string constant) is cut with an ellipsis


def survivors_line(mutation: MutationFigures, shown: int = SURVIVORS_SHOWN) -> str:
    """The surviving mutants of a module on one line: ``LINE: CHANGE`` for the first survivor of each of the
    first ``shown`` lines that have one (a line with many survivors takes one place), then ``and N more``
    (N counts every survivor not named, including those past the 100 a result lists); ``none`` when every
    evaluated mutant was killed."""
    left = mutation.evaluated - mutation.killed
    if left <= 0:
        return "none"
    named, lines = [], set()
    for survivor in mutation.survivors:
        if survivor.line in lines:
            continue
        lines.add(survivor.line)
        change = " ".join(survivor.change.split())
        if len(change) > CHANGE_WIDTH:
            change = change[:CHANGE_WIDTH - 1] + "\u2026"
        named.append(f"{survivor.line}: {change}")
        if len(named) >= shown:
            break
    more = left - len(named)
    if not named:
        return f"{more} (not listed)"
    return "; ".join(named) + (f"; and {more} more" if more > 0 else "")


def _ranges(numbers: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``3-5, 9``."""
    out: list[str] = []
    for n in sorted(set(numbers)):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def tests_explanation(output: GeneratedTests) -> Explanation:
    """The evidence contract's view of a generated test file (:meth:`GenerateTests.explain`)."""
    evidence: list[Evidence] = []
    for record in output.tests:
        if record.status != "kept":
            continue
        parts = [f"lines {_ranges(record.added_lines)}" if record.added_lines else "no new line",
                 f"branches {', '.join(record.added_branches[:20])}" if record.added_branches else "no new branch"]
        if record.killed_mutants:
            parts.append(f"kills mutants on lines {_ranges(record.killed_mutants)}")
        if not record.asserts:
            parts.append("crash-finding (no assertion)")
        evidence.append(Evidence(kind="test", text=record.name[:2000], source=f"strategy:{record.strategy}"[:200],
                                 weight=float(len(record.added_lines) + len(record.added_branches)),
                                 detail=("adds " + "; ".join(parts))[:500]))
    if output.uncovered_lines or output.uncovered_branches:
        evidence.append(Evidence(kind="line", weight=-float(len(output.uncovered_lines)), field="source",
                                 detail=(f"still uncovered: lines {_ranges(output.uncovered_lines)}"
                                         + (f"; branches {', '.join(output.uncovered_branches[:20])}"
                                            if output.uncovered_branches else ""))[:500]))
    before, after = output.coverage_before.percent, output.coverage_after.percent
    best = max((e for e in evidence if e.kind == "test"), key=lambda e: e.weight, default=None)
    summary = (f"{output.kept} of {output.generated} generated tests kept: coverage {before:.1f}% -> {after:.1f}%"
               + (f"; most from {best.text[:60]} (+{best.weight:.0f} lines and branches)" if best and best.text
                  else "")
               + (f"; {len(output.uncovered_lines)} lines still uncovered" if output.uncovered_lines else ""))
    return Explanation(summary=summary[:500], method="coverage", target=f"the tests kept for {output.module}"[:200],
                       evidence=evidence)
