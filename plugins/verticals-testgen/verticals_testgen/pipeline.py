"""Generate -> filter -> minimise -> compose -> verify, for one module at a time (LLM calls batched across modules).

The filter keeps a candidate only if it (1) imports nothing but the target,
the standard library, pytest and hypothesis, (2) passes in the sandbox,
(3) passes again in a fresh sandbox process, in reverse order (not flaky,
not order dependent), and (4) adds line or branch coverage over the module's
import-time baseline and the tests already kept (greedy set cover, largest
gain first, so the kept set is minimal in that greedy sense). The composed,
formatted file is then run twice more; a test that fails there is dropped.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verticals_testgen import strategies as strat
from verticals_testgen.allowlist import TargetNames, check_test_code
from verticals_testgen.analysis import FileAnalysis
from verticals_testgen.candidates import (
    Candidate,
    asserts,
    compose,
    disallowed_imports,
    format_code,
    group_by_subject,
    renumber,
    unique_name,
)
from verticals_testgen.render import clean_events
from verticals_testgen.sandbox import Limits, RunResult, Sandbox
from verticals_testgen.target import Target

log = logging.getLogger(__name__)

STATUS_ORDER = ("kept", "redundant", "flaky", "failed", "error", "killed", "rejected_import", "rejected_code",
                "dropped_in_file")


@dataclass
class Options:
    strategies: tuple[str, ...] = ("observed", "ghostwriter")
    llm_rounds: int = 2
    llm_max_prompts: int = 8
    max_new_tokens: int = 256
    time_budget: float = 150.0  # seconds per module: search, LLM, mutation analysis, the final file (not model loading)
    explore_seconds: float = 20.0  # at most this long per explorer round
    max_rounds: int = 8
    test_timeout: float = 5.0
    limits: Limits = field(default_factory=Limits)
    seed: int = 0
    progress: Callable[[dict[str, Any]], None] | None = None  # called after each round with a progress record
    mutation: bool = True  # mutation analysis after the search (kills choose tests; the score is reported)
    mutation_share: float = 0.35  # share of time_budget kept from the search for mutation analysis


FINISH_RESERVE = 12.0  # seconds kept for composing and verifying the final file
TARGETED_ROUNDS = 4  # explorer rounds aimed at surviving mutants after the first mutation pass (budget allowing)


class ModuleRun:
    """All the work for one target module."""

    def __init__(self, target: Target, options: Options):
        self.target = target
        self.options = options
        self.analysis = FileAnalysis(target.file, target.source)
        self.names = TargetNames(target.name, target.source)
        self._names: set[str] = set()
        self.mutation: dict[str, Any] = {"score": None, "killed": 0, "evaluated": 0, "total": 0, "seconds": 0.0,
                                         "survivors": [], "note": "not run", "told_apart": 0}
        self._kills: dict[int, str] = {}  # mutant index -> name of the test that killed it
        self.dropped_records: list[dict] = []  # explorer records with a part the renderer does not allow
        self.sandbox = Sandbox(options.limits)
        # no test may hold a path of this machine (the sandbox, the target's folder, the home folder)
        self._machine_paths = {str(self.sandbox.root), str(Path(target.file).parent), str(Path.home())}
        self.candidates: list[Candidate] = []
        self.baseline: tuple[set[int], set[tuple[int, int]]] = (set(), set())
        self.covered_lines: set[int] = set()
        self.covered_branches: set[tuple[int, int]] = set()
        self.notes: list[str] = []
        self.seconds: defaultdict[str, float] = defaultdict(float)  # per strategy
        self.started = time.perf_counter()
        self.import_error: str | None = None
        self._file_index = 0
        self.rounds = 0
        self._slowest_test_run = 0.0
        self.deadline = self.started + options.time_budget

    def start_clock(self) -> None:
        """The module's time budget starts when its work starts (modules of a batch may wait for a worker)."""
        self.started = time.perf_counter()
        self.deadline = self.started + self.options.time_budget

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def reserve(self) -> float:
        """Seconds kept for the final file: two jailed runs, as long as the slowest test run so far took."""
        return max(FINISH_RESERVE, 2.5 * self._slowest_test_run)

    def coverage_now(self) -> float:
        return self.analysis.summary(self.covered_lines, self.covered_branches)["percent"]

    def report(self, stage: str) -> None:
        if self.options.progress is not None:
            self.options.progress({"module": self.target.name, "stage": stage, "round": self.rounds,
                                   "candidates": len(self.candidates),
                                   "passed": sum(c.status == "passed" for c in self.candidates),
                                   "coverage": self.coverage_now(),
                                   "seconds": round(time.perf_counter() - self.started, 1)})

    def close(self) -> None:
        self.sandbox.close()
        if self.target.workdir:
            shutil.rmtree(self.target.workdir, ignore_errors=True)

    # ------------------------------------------------------------ sandbox runs

    def _config(self, mode: str, **extra: Any) -> dict[str, Any]:
        target = {"name": self.target.name, "file": self.target.file, "sys_path": self.target.sys_path}
        return {"mode": mode, "target": target, "test_timeout": self.options.test_timeout, **extra}

    def _run(self, config: dict[str, Any], files: dict[str, str], count: int, wall: float | None = None,
             hash_seed: int = 0) -> RunResult:
        self.sandbox.reset()
        for name, text in files.items():
            self.sandbox.write(name, text)
        limits = self.sandbox.limits
        wall = min(limits.wall_seconds, wall or 30 + count * (1 + self.options.test_timeout / 4))
        saved = limits.wall_seconds
        limits.wall_seconds = wall
        try:
            result = self.sandbox.run(config, [*self.target.sys_path, str(Path(self.target.file).parent)],
                                      hash_seed=hash_seed)
        finally:
            limits.wall_seconds = saved
        result.events = clean_events(result.events)  # the target writes in the same process: hostile records
        return result

    def _record_baseline(self, events: list[dict]) -> None:
        for event in events:
            if event.get("event") == "baseline" and not self.baseline[0]:
                self.baseline = self.analysis.normalise(event["arcs"])
                self.covered_lines |= self.baseline[0]
                self.covered_branches |= self.baseline[1]
            elif event.get("event") == "import_error":
                self.import_error = event["message"]

    def run_tests(self, files: dict[str, str], reverse: bool = False, hash_seed: int = 0) -> dict[str, dict]:
        """Run test files in the sandbox; return file name -> {outcome, message, arcs, seconds}.

        A test that kills the sandbox process (timeout, memory, CPU) is reported
        as ``killed``; the files after it run again in a new process.
        """
        pending = list(files)
        if reverse:
            pending.reverse()
        results: dict[str, dict] = {}
        while pending:
            run = self._run(self._config("run", files=pending), {n: files[n] for n in pending}, len(pending),
                            hash_seed=hash_seed)
            self._slowest_test_run = max(self._slowest_test_run, run.seconds)
            self._record_baseline(run.events)
            if self.import_error:
                for name in pending:
                    results[name] = {"outcome": "error", "message": f"target import failed: {self.import_error}"}
                break
            started: str | None = None
            for event in run.events:
                kind = event.get("event")
                if kind in ("start", "result", "collect_error"):
                    name = event["nodeid"].split("::")[0]
                    if name not in files:
                        continue
                    if kind == "start":
                        started = name
                        continue
                    entry = results.setdefault(name, {"outcome": "passed", "message": "", "arcs": [],
                                                      "seconds": 0.0, "tests": 0})
                    if kind == "collect_error":
                        entry.update(outcome="error", message=event["message"][-300:])
                        continue
                    entry["tests"] += 1
                    entry["arcs"] = entry["arcs"] + event.get("arcs", [])
                    entry["seconds"] += event.get("seconds", 0.0)
                    if event["outcome"] != "passed" and entry["outcome"] == "passed":
                        outcome = "failed" if event["outcome"] == "failed" else event["outcome"]
                        entry.update(outcome=outcome, message=event.get("message", "")[-300:])
                    started = None
            finished = any(e.get("event") == "done" for e in run.events)
            if finished:
                for name in pending:
                    entry = results.setdefault(name, {"outcome": "error", "message": "no test collected",
                                                      "arcs": [], "seconds": 0.0, "tests": 0})
                    if entry.get("tests", 0) == 0 and entry["outcome"] == "passed":
                        entry.update(outcome="error", message="no test collected")
                break
            culprit = started
            reason = run.killed or f"sandbox exited with code {run.returncode}"
            if culprit is None:
                remaining = [n for n in pending if n not in results]
                culprit = remaining[0] if remaining else None
            if culprit is None:
                break
            results[culprit] = {"outcome": "killed", "message": f"sandbox process killed ({reason})", "arcs": [],
                                "seconds": 0.0, "tests": 0}
            log.debug("sandbox run of %s ended early: %s", self.target.name, reason)
            pending = [n for n in pending if n not in results]
        return results

    # ------------------------------------------------------------ strategies

    def search(self) -> None:
        """Coverage-guided rounds until the module is covered, the budget is spent or two rounds add nothing.

        Each round the jailed explorer searches (calls, call sequences on classes, doctests; inputs from type
        hints, defaults, mined constants/docstrings and mutations of inputs that added coverage), starting
        from what verified tests already cover and weighting the functions that still have uncovered lines;
        its findings are screened (two jailed runs) and what passed becomes the coverage the next round
        aims past.
        """
        wanted = set(self.options.strategies)
        if not wanted & {"observed", "ghostwriter"}:
            return
        stale = 0
        llm_share = 0.35 if "llm" in wanted else 0.0
        kept_back = (llm_share + (self.options.mutation_share if self.options.mutation else 0.0))
        while self.rounds < self.options.max_rounds and not self.import_error:
            left = self.left() - self.reserve() - kept_back * self.options.time_budget
            if left < 6 and self.rounds > 0:
                break
            before = len(self.covered_lines) + len(self.covered_branches)
            # about half of what is left explores; screening the findings takes the rest
            seconds = max(3.0, min(self.options.explore_seconds, left * 0.45))
            self.report("explore")  # before the round: it may take explore_seconds and its screening as long
            self.explore(seconds)
            self.rounds += 1
            self.report("search")
            gained = len(self.covered_lines) + len(self.covered_branches) - before
            if self.coverage_now() >= 100.0:
                break
            stale = 0 if gained else stale + 1
            if stale >= 2:
                break
            if "observed" not in wanted:
                break

    def explore(self, seconds: float | None = None, mutant_lines: list[int] | None = None,
                survivors: list[list[int]] | None = None) -> None:
        wanted = set(self.options.strategies)
        if not wanted & {"observed", "ghostwriter"}:
            return
        started = time.perf_counter()
        seconds = self.options.explore_seconds if seconds is None else seconds
        covered = sorted({a for c in self.candidates if c.status in ("passed", "kept", "redundant") for a in c.arcs})
        uncovered = sorted(self.analysis.static.statements - self.covered_lines)
        uncovered += sorted({a for a, _ in self.analysis.static.branch_arcs - self.covered_branches})
        explore = {"seconds": seconds, "observed": "observed" in wanted,
                   "ghostwriter": "ghostwriter" in wanted and self.rounds == 0, "ghost_seconds": min(10.0, seconds),
                   "seed": self.options.seed, "round": self.rounds, "covered_arcs": covered,
                   "uncovered_lines": mutant_lines or uncovered, "mutant_lines": mutant_lines or [],
                   "survivors": survivors or []}
        run = self._run(self._config("explore", explore=explore), {}, 0, wall=seconds * 1.5 + 25)
        self._record_baseline(run.events)
        for event in run.events:
            told = event.get("mutants_told_apart") if event.get("event") == "explorer_stats" else None
            if isinstance(told, int) and not isinstance(told, bool) and 0 <= told <= 1_000_000:
                self.mutation["told_apart"] += told  # survivors a targeted round found an input for
        if run.killed:
            self.notes.append(f"explorer round {self.rounds} stopped early ({run.killed}); kept what it recorded")
        new: list[Candidate] = []
        if "observed" in wanted:
            new += strat.observed_candidates(self.target, run.events, self.rounds, self.dropped_records)
        self.seconds["observed"] += time.perf_counter() - started
        if "ghostwriter" in wanted and self.rounds == 0:
            new += strat.ghostwriter_candidates(self.target, run.events)
        self.screen(new)

    def pynguin(self) -> None:
        if "pynguin" not in self.options.strategies:
            return
        started = time.perf_counter()
        new, note = strat.pynguin_candidates(self.target)
        self.notes.append(note)
        self.screen(new)
        self.seconds["pynguin"] += time.perf_counter() - started

    def llm_prompts(self, round_index: int) -> list[tuple[str, str]]:
        missing = self.analysis.static.statements - self.covered_lines
        missing |= {a for a, _ in self.analysis.static.branch_arcs - self.covered_branches}
        return strat.llm_prompts(self.target, missing, round_index, self.options.llm_max_prompts)

    def add_llm_answers(self, answers: list[tuple[str, str]], round_index: int) -> None:
        if answers:
            self.screen(strat.llm_candidates(self.target, answers, round_index))

    # ------------------------------------------------------------ the filter

    def screen(self, new: list[Candidate]) -> None:
        """Static import check, then two sandboxed runs (the second reversed, in a new process)."""
        if not new:
            return
        started = time.perf_counter()
        files: dict[str, str] = {}
        by_file: dict[str, Candidate] = {}
        for candidate in new:
            self.candidates.append(candidate)
            unique_name(candidate, self._names)
            bad = disallowed_imports(candidate.source, self.target.name)
            if bad:
                candidate.status, candidate.message = "rejected_import", f"imports {', '.join(bad)}"
                continue
            problems = check_test_code(candidate.source, self.names)
            if problems:  # generated code runs on the user's machine later: only what the allow-list permits
                candidate.status, candidate.message = "rejected_code", "; ".join(problems)[:300]
                continue
            if any(path in candidate.source for path in self._machine_paths):
                candidate.status, candidate.message = "rejected_code", "holds a path of this machine"
                continue
            self._file_index += 1
            name = f"test_c{self._file_index:05d}.py"
            files[name] = candidate.source
            by_file[name] = candidate
        first = self.run_tests(files)
        for name, candidate in by_file.items():
            result = first.get(name, {"outcome": "error", "message": "not run"})
            candidate.status = "passed_once" if result["outcome"] == "passed" else result["outcome"]
            candidate.message = result.get("message", "")
            candidate.seconds = result.get("seconds", 0.0)
            candidate.arcs = frozenset(tuple(a) for a in result.get("arcs", []))
        again = {n: files[n] for n, c in by_file.items() if c.status == "passed_once"}
        # the second run: a fresh process, reverse order, another hash seed (set/dict order must not matter)
        second = self.run_tests(again, reverse=True, hash_seed=1) if again else {}
        for name in again:
            candidate = by_file[name]
            result = second.get(name, {"outcome": "error"})
            if result["outcome"] == "passed":
                candidate.status = "passed"
                lines, branches = self.analysis.normalise(candidate.arcs)
                self.covered_lines |= lines
                self.covered_branches |= branches
            else:
                candidate.status = "flaky"
                candidate.message = "passed once, then " + result["outcome"] + ": " + result.get("message", "")
        elapsed = time.perf_counter() - started
        for strategy, count in Counter(c.strategy for c in new).items():
            self.seconds[strategy] += elapsed * count / len(new)

    # ------------------------------------------------------------ minimise, compose, verify

    def select(self) -> list[Candidate]:
        """Greedy set cover over the candidates that passed twice: keep only tests that add coverage.

        Tests that assert something come first; a test without an assertion (a crash-finding test) is kept only
        for coverage no asserting test adds.
        """
        lines, branches = set(self.baseline[0]), set(self.baseline[1])
        pools: list[list[tuple[Candidate, set[int], set[tuple[int, int]]]]] = [[], []]
        for candidate in self.candidates:
            if candidate.status in ("passed", "kept", "redundant"):
                pools[0 if asserts(candidate) else 1].append((candidate, *self.analysis.normalise(candidate.arcs)))
        kept: list[Candidate] = []
        for pool in pools:
            while pool:
                best = max(pool, key=lambda p: (len(p[1] - lines) + len(p[2] - branches), -len(p[0].body)))
                gain_lines, gain_branches = best[1] - lines, best[2] - branches
                if not gain_lines and not gain_branches:
                    break
                candidate = best[0]
                candidate.status = "kept"
                candidate.message = "adds coverage"
                candidate.added_lines = sorted(gain_lines)
                candidate.added_branches = [f"{a}->{b if b > 0 else 'exit'}" for a, b in sorted(gain_branches)]
                lines |= gain_lines
                branches |= gain_branches
                kept.append(candidate)
                pool.remove(best)
            for candidate, *_ in pool:
                candidate.status = "redundant"
                candidate.message = "adds no line or branch coverage"
        return kept

    # ------------------------------------------------------------ mutation analysis

    def mutate(self) -> None:
        """Mutation analysis in the jail: each mutant of the target (one change in a function body) against the
        tests that execute its statement, kept tests first, then other tests that passed twice; a test that kills
        a mutant no kept test kills is kept too. Then, while the budget lasts, explorer rounds aimed at the
        surviving mutants (strong mutation: an input is recorded when the mutant switched on changes what its test
        asserts), each followed by a pass over the survivors with the new tests. Mutants are taken in a seeded
        random order, so a cut-off leaves an unbiased sample."""
        import random

        from verticals_testgen.harness import mutation_points

        self.select()
        if not self.options.mutation or self.import_error:
            self.mutation["note"] = "off" if not self.options.mutation else "the target does not import"
            return
        started = time.perf_counter()
        points = mutation_points(self.target.source)
        self._points, self._evaluated = points, []
        self.mutation.update(total=len(points), note="")
        if not points:
            return
        order = list(range(len(points)))
        random.Random(self.options.seed).shuffle(order)
        tried: dict[int, set[int]] = {i: set() for i in order}  # mutant -> ids of the tests already run on it
        results: dict[int, dict[str, Any]] = {}
        self.report("mutate")
        self._mutation_pass(points, order, tried, results, share=0.55)
        for _attempt in range(TARGETED_ROUNDS):  # aim the explorer at the surviving mutants, then evaluate again
            survivors = [i for i in order if i in results and results[i]["outcome"] in ("survived", "no_tests")]
            left = self.left() - self.reserve()
            if not survivors or left < 10 or "observed" not in self.options.strategies:
                break
            lines = sorted({points[i][key] for i in survivors for key in ("line", "statement")})
            # the round's screening takes about a third more; the pass after it only runs the new tests
            self.explore(min(self.options.explore_seconds, left * 0.5), mutant_lines=lines,
                         survivors=[[points[i]["index"], points[i]["line"], points[i]["statement"]]
                                    for i in survivors])
            self.rounds += 1
            self.report("mutate")
            again = [i for i in order if i not in results or results[i]["outcome"] != "killed"]
            self._mutation_pass(points, again, tried, results, share=0.8)
        self._evaluated = [i for i in order if i in results]
        for candidate in self.candidates:
            if candidate.status == "passed":
                candidate.status, candidate.message = "redundant", "adds no coverage and kills no mutant"
        self.seconds["mutation"] += time.perf_counter() - started
        self.mutation["seconds"] = round(time.perf_counter() - started, 2)
        self._score({c.name for c in self.candidates if c.status == "kept"})

    def _mutation_pass(self, points: list[dict], order: list[int], tried: dict[int, set[int]],
                       results: dict[int, dict[str, Any]], share: float) -> None:
        """Evaluate the mutants in ``order`` (within ``share`` of what is left of the budget) against the tests that
        execute their line and have not run on them yet; record kills."""
        passed = [c for c in self.candidates if c.status in ("kept", "redundant", "passed")]
        covered = {id(c): self.analysis.normalise(c.arcs)[0] for c in passed}
        # kept tests first, then those that assert, fastest first
        ranked = sorted(passed, key=lambda c: (c.status != "kept", not asserts(c), c.seconds, len(c.body)))
        files: dict[str, Candidate] = {}
        file_of: dict[int, str] = {}
        plan: list[dict[str, Any]] = []
        for index in order:
            line = points[index]["statement"]  # the line coverage.py reports for the mutant's statement
            tests = [c for c in ranked if line in covered[id(c)] and id(c) not in tried[index]]
            # a test the explorer saw tell this mutant apart first, then the kept ones, then six others
            tests = ([c for c in tests if index in c.aims] + [c for c in tests if c.status == "kept"]
                     + [c for c in tests if c.status != "kept" and index not in c.aims][:6])
            tests = list({id(c): c for c in tests}.values())
            names = []
            for candidate in tests:
                if id(candidate) not in file_of:
                    file_of[id(candidate)] = f"test_m{len(files):05d}.py"
                    files[file_of[id(candidate)]] = candidate
                names.append(file_of[id(candidate)])
            # a mutant that hangs (a loop that no longer ends) is killed by the time limit: ten times the test's
            # own time plus a quarter second (it was a second: such mutants took most of a pass)
            limits = [round(min(self.options.test_timeout, 0.25 + 10 * files[n].seconds), 2) for n in names]
            plan.append({"id": index, "index": index, "tests": names, "limits": limits})
        pending = plan
        seen: set[int] = set()  # mutants this pass reported
        available = self.left() - self.reserve()
        stop = time.perf_counter() + max(share * available, min(available, 8.0))  # a short budget: all of it
        while pending:
            seconds = stop - time.perf_counter()
            if seconds < 3:
                break
            config = self._config("mutate", files=sorted({n for m in pending for n in m["tests"]}),
                                  mutation={"mutants": pending, "seconds": seconds})
            run = self._run(config, {n: files[n].source for n in config["files"]}, 0, wall=seconds + 30)
            reported = {m["id"] for m in pending}
            for event in run.events:
                if event.get("event") == "mutant" and event["id"] in reported and event["id"] not in seen:
                    seen.add(event["id"])
                    if results.get(event["id"], {}).get("outcome") != "killed":  # a survivor of an earlier pass
                        results[event["id"]] = event  # keeps its result unless this pass reports it again
            rest = [m for m in pending if m["id"] not in seen]
            if any(e.get("event") == "done" for e in run.events) or not rest:
                break
            # the process died on the first mutant it did not report (a crash or a hang): the tests noticed it
            seen.add(rest[0]["id"])
            results[rest[0]["id"]] = {"event": "mutant", "id": rest[0]["id"], "outcome": "killed", "by": "crash"}
            pending = rest[1:]
        for mutant in plan:
            if mutant["id"] in seen:
                tried[mutant["id"]].update(id(files[n]) for n in mutant["tests"])
        for mutant_id, event in results.items():
            if event["outcome"] != "killed" or mutant_id in self._kills:
                continue
            by = event.get("by")
            killer = files.get(by) if isinstance(by, str) else None
            self._kills[mutant_id] = killer.name if killer is not None else str(by)
            if killer is not None:
                if killer.status != "kept":
                    killer.status = "kept"
                    killer.message = "kills a mutant no other kept test kills"
                killer.killed_mutants.append(points[mutant_id]["line"])

    def score_tests(self, code: str, seconds: float = 900.0) -> dict[str, Any]:
        """Mutation score of an existing test file (every mutant, no sampling unless ``seconds`` runs out): what
        EVAL.md compares, for files written by any version. Each test of the file runs alone once in the jail
        (its coverage tells which mutants it can reach); a test that fails there is left out."""
        import ast
        import random

        from verticals_testgen.harness import mutation_points

        self.start_clock()
        self.deadline = self.started + seconds
        tree = ast.parse(code)
        tests = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)
                 and n.name.lower().startswith("test")]
        header = [n for n in tree.body if n not in tests]
        preamble = [ast.unparse(n) for n in header]
        self.candidates = [Candidate(id=f"given:{i}", strategy="given", name=node.name, preamble=preamble,
                                     body=ast.unparse(node)) for i, node in enumerate(tests)]
        files = {f"test_g{i:04d}.py": c.source for i, c in enumerate(self.candidates)}
        results = self.run_tests(files)
        for name, candidate in zip(files, self.candidates, strict=True):
            result = results.get(name, {})
            candidate.status = "kept" if result.get("outcome") == "passed" else "failed"
            candidate.arcs = frozenset(tuple(a) for a in result.get("arcs", []))
            candidate.seconds = result.get("seconds", 0.0)
        points = mutation_points(self.target.source)
        self._points, self._kills = points, {}
        order = list(range(len(points)))
        random.Random(self.options.seed).shuffle(order)
        outcome: dict[int, dict[str, Any]] = {}
        self._mutation_pass(points, order, {i: set() for i in order}, outcome, share=1.0)
        self._evaluated = [i for i in order if i in outcome]
        self.mutation.update(total=len(points), note="")
        self._score({c.name for c in self.candidates if c.status == "kept"})
        return {**self.mutation, "tests": len(self.candidates),
                "passing": sum(c.status == "kept" for c in self.candidates),
                "asserting": sum(asserts(c) for c in self.candidates if c.status == "kept")}

    def _score(self, kept_names: set[str]) -> None:
        """The mutation score of the kept tests: killed / evaluated (a mutant only a dropped test killed counts as
        survived); survivors listed with their line and change."""
        points = getattr(self, "_points", None)
        if not points:
            return
        evaluated = self._evaluated
        killed = [i for i in evaluated if self._kills.get(i) in kept_names or self._kills.get(i) in ("import",
                                                                                                   "crash")]
        survivors = sorted((i for i in evaluated if i not in set(killed)), key=lambda i: (points[i]["line"], i))
        self.mutation.update(
            score=round(len(killed) / len(evaluated), 3) if evaluated else None, killed=len(killed),
            evaluated=len(evaluated), survivors=[{"line": points[i]["line"], "change": points[i]["change"],
                                                  "operator": points[i]["operator"]} for i in survivors[:100]])
        if len(evaluated) < len(points):
            self.mutation["note"] = (f"{len(evaluated)} of {len(points)} mutants evaluated within the budget "
                                     "(a seeded random sample)")

    def finish(self) -> dict[str, Any]:
        if not self.baseline[0] and not self.import_error:  # no sandbox run happened yet: measure the import
            self._record_baseline(self._run(self._config("run", files=[]), {}, 1).events)
        kept = [c for c in self.candidates if c.status == "kept"] if self.mutation["note"] != "not run" else \
            self.select()
        kept = group_by_subject(kept, self.target.source)
        before = {id(c): c.name for c in kept}
        renumber(kept)
        renamed = {before[id(c)]: c.name for c in kept}
        self._kills = {m: renamed.get(name, name) for m, name in self._kills.items()}
        header = (f"Tests for {self.target.name}, generated by verticals testgen.generate.\n\n"
                  "Each test passed twice in a sandbox and adds line or branch coverage or kills a mutant of the "
                  "module that no other test kills.")
        code, formatter = format_code(compose(kept, header)) if kept else ("", "none")
        after_lines, after_branches = set(self.baseline[0]), set(self.baseline[1])
        for _attempt in range(3):
            if not kept:
                break
            name = self.target.test_file_name
            first = self.run_tests({name: code})
            second = (self.run_tests({name: code}, hash_seed=1) if first.get(name, {}).get("outcome") == "passed"
                      else {})
            if first.get(name, {}).get("outcome") == "passed" and second.get(name, {}).get("outcome") == "passed":
                lines, branches = self.analysis.normalise(first[name]["arcs"])
                after_lines |= lines
                after_branches |= branches
                break
            failing = self._failing_tests(code)
            dropped = [c for c in kept if c.name in failing] or kept[-1:]
            for candidate in dropped:
                candidate.status = "dropped_in_file"
                candidate.message = "failed when run together with the other kept tests"
                kept.remove(candidate)
            code, formatter = format_code(compose(kept, header)) if kept else ("", "none")
        else:
            kept, code = [], ""
            self.notes.append("the composed file did not pass twice; no tests kept")
        if code and check_test_code(code, self.names):  # each test passed the allow-list; the file must too
            for candidate in kept:
                candidate.status, candidate.message = "rejected_code", "the composed file failed the allow-list"
            kept, code = [], ""
            self.notes.append("the composed file failed the code allow-list; no tests kept")
        self._score({c.name for c in kept})
        missing_lines, missing_branches = self.analysis.uncovered(after_lines, after_branches)
        by_strategy: dict[str, dict[str, Any]] = {}
        for candidate in self.candidates:
            entry = by_strategy.setdefault(candidate.strategy, {"generated": 0, "passed": 0, "kept": 0,
                                                                "seconds": 0.0})
            entry["generated"] += 1
            entry["passed"] += candidate.status in ("kept", "redundant", "dropped_in_file")
            entry["kept"] += candidate.status == "kept"
        for strategy, seconds in self.seconds.items():
            by_strategy.setdefault(strategy, {"generated": 0, "passed": 0, "kept": 0, "seconds": 0.0})
            by_strategy[strategy]["seconds"] = round(seconds, 2)
        order = {status: i for i, status in enumerate(STATUS_ORDER)}
        tests = sorted(self.candidates, key=lambda c: order.get(c.status, 99))
        return {
            "module": self.target.name,
            "file": self.target.file,
            "test_file": self.target.test_file_name,
            "test_code": code,
            "coverage_before": self.analysis.summary(*self.baseline),
            "coverage_after": self.analysis.summary(after_lines, after_branches),
            "uncovered_lines": missing_lines,
            "uncovered_branches": missing_branches,
            "tests": [{"name": c.name, "strategy": c.strategy, "status": c.status, "message": c.message[:200],
                       "added_lines": c.added_lines, "added_branches": c.added_branches,
                       "killed_mutants": sorted(set(c.killed_mutants)) if c.status == "kept" else [],
                       "asserts": asserts(c), "seconds": round(c.seconds, 3)} for c in tests],
            "generated": len(self.candidates),
            "passed": sum(c.status in ("kept", "redundant", "dropped_in_file") for c in self.candidates),
            "kept": len(kept),
            "asserting": sum(asserts(c) for c in kept),
            "crash_tests": sum(not asserts(c) for c in kept),
            "mutation": self.mutation,
            "strategies": by_strategy,
            "sandbox": self.sandbox.layers,
            "formatter": formatter,
            "seconds": round(time.perf_counter() - self.started, 2),
            "notes": self.notes + ([f"target import failed: {self.import_error}"] if self.import_error else [])
            + ([f"{len(self.dropped_records)} explorer records dropped: a value or name the renderer does not "
                "allow"] if self.dropped_records else []),
        }

    def _failing_tests(self, code: str) -> set[str]:
        """Names of the tests that fail in the composed file (each one run on its own file)."""
        import ast

        tree = ast.parse(code)
        tests = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)
                 and n.name.lower().startswith("test")]
        header = [n for n in tree.body if n not in tests]
        files = {f"test_split_{i}.py": ast.unparse(ast.Module(body=[*header, t], type_ignores=[]))
                 for i, t in enumerate(tests)}
        results = self.run_tests(files)
        return {tests[i].name for i, name in enumerate(files) if results.get(name, {}).get("outcome") != "passed"}


Generate = Callable[[list[str]], list[str]]


def generate_tests(targets: list[Target], options: Options, generate: Generate | None = None,
                   parallel: int = 1) -> list[dict[str, Any]]:
    """Run every strategy for ``targets``; ``generate`` is the LLM (prompts -> answers), or None to skip it."""
    from concurrent.futures import ThreadPoolExecutor

    runs = [ModuleRun(target, options) for target in targets]
    use_llm = "llm" in options.strategies and generate is not None

    def search(run: ModuleRun) -> None:
        run.start_clock()
        run.search()
        run.pynguin()

    def finish(run: ModuleRun) -> dict[str, Any]:
        run.mutate()
        run.report("verify")
        output = run.finish()
        run.report("done")
        return output

    def whole(run: ModuleRun) -> dict[str, Any]:
        search(run)
        return finish(run)

    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            if not use_llm or generate is None:  # each module runs start to finish on one worker: its own budget
                if "llm" in options.strategies:
                    for run in runs:
                        run.notes.append("llm strategy skipped: no language model available")
                return list(pool.map(whole, runs))
            list(pool.map(search, runs))
            for round_index in range(options.llm_rounds):
                # only modules with budget left and something uncovered; prompts show the uncovered lines
                asks = [(run, name, prompt) for run in runs if not run.import_error and run.left() > run.reserve()
                        for name, prompt in run.llm_prompts(round_index)]
                if not asks:
                    break
                started = time.perf_counter()
                answers = generate([prompt for _, _, prompt in asks])
                elapsed = time.perf_counter() - started
                per_run: dict[int, list[tuple[str, str]]] = {id(run): [] for run in runs}
                for (run, name, _), answer in zip(asks, answers, strict=True):
                    per_run[id(run)].append((name, answer))
                for run in runs:
                    run.seconds["llm"] += elapsed * len(per_run[id(run)]) / len(asks)

                def add_answers(module: ModuleRun, index: int = round_index,
                                given: dict[int, list[tuple[str, str]]] = per_run) -> None:
                    module.add_llm_answers(given[id(module)], index)

                list(pool.map(add_answers, runs))
                for run in runs:
                    run.report("llm")
            return list(pool.map(finish, runs))
    finally:
        for run in runs:
            run.close()
