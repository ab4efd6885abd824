"""End to end without the LLM: observed values + ghostwriter on a bundled sample, then the kept file runs green."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from verticals_testgen.candidates import disallowed_imports, extract_code, split_tests
from verticals_testgen.generate import GenerateParams, GenerateTests, ModuleInput
from verticals_testgen.pipeline import Options, generate_tests
from verticals_testgen.target import TargetError, from_source, resolve

from verticals.contract import OPERATOR


@pytest.fixture(scope="module")
def shapes_result():
    target = resolve(module="verticals_testgen.samples.shapes")
    options = Options(strategies=("observed", "ghostwriter"), time_budget=60, explore_seconds=5, test_timeout=3)
    return generate_tests([target], options)[0]


def test_coverage_rises_and_file_passes_outside_the_sandbox(shapes_result, tmp_path):
    result = shapes_result
    before, after = result["coverage_before"], result["coverage_after"]
    assert after["lines_covered"] > before["lines_covered"]
    assert after["branch_percent"] >= 80.0, after
    assert result["kept"] >= 5
    kept = [t for t in result["tests"] if t["status"] == "kept"]
    assert len(kept) == result["kept"]
    assert all(t["added_lines"] or t["added_branches"] or t["killed_mutants"] for t in kept)
    assert all(t["asserts"] for t in kept) and result["asserting"] == result["kept"]
    assert set(result["uncovered_lines"]).isdisjoint(set().union(*(t["added_lines"] for t in kept)))
    # the file is a real pytest file: run it with plain pytest and coverage.py, outside our harness
    test_file = tmp_path / result["test_file"]
    test_file.write_text(result["test_code"])
    done = subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", "--source=verticals_testgen.samples",
                           "--data-file", str(tmp_path / ".cov"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", str(test_file)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    report = subprocess.run([sys.executable, "-m", "coverage", "report", "--include=*shapes.py",
                             "--data-file", str(tmp_path / ".cov")],
                            cwd=tmp_path, capture_output=True, text=True).stdout
    total = report.strip().splitlines()[-1].split()[-1]
    assert abs(float(total.rstrip("%")) - after["percent"]) <= 1.0, (report, after)


def test_mutation_score_and_survivors(shapes_result):
    mutation = shapes_result["mutation"]
    assert mutation["total"] > 30 and mutation["evaluated"] > 0
    assert mutation["score"] == round(mutation["killed"] / mutation["evaluated"], 3)
    assert mutation["score"] >= 0.6, mutation  # regression oracles on observed values kill most seeded bugs
    assert len(mutation["survivors"]) == min(100, mutation["evaluated"] - mutation["killed"])
    for survivor in mutation["survivors"]:
        assert survivor["line"] > 0 and " -> " in survivor["change"]
    killers = [t for t in shapes_result["tests"] if t["status"] == "kept" and t["killed_mutants"]]
    assert killers  # kept tests say which seeded bugs they catch


def test_evaluator_scores_the_tests_against_their_own_module(shapes_result):
    from verticals.contract.evaluators import Record
    from verticals.core.evaluation.scoring import golden_path

    evaluator = GenerateTests.evaluator
    output = GenerateTests.Output(**shapes_result).model_dump()
    good = Record("a", 0, evaluator.gold(output, evaluator.gold_field), evaluator.predicted(output))
    failed = Record("b", 1, None, None, failed=True)
    scores = evaluator.score([good, failed])
    assert good.gold == "verticals_testgen.samples.shapes"
    assert scores.metrics["mutation_score"] == round(shapes_result["mutation"]["score"] / 2, 4)
    assert scores.metrics["min_mutation_score"] == 0.0 and scores.metrics["failed"] == 1
    assert scores.metrics["asserting_share"] == 1.0
    assert scores.wrong == [1]  # the failed item is under the floor; the shapes tests are not
    assert scores.per_class["verticals_testgen.samples.shapes"]["coverage"] == shapes_result["coverage_after"][
        "percent"]
    golden = golden_path(GenerateTests)
    assert golden is not None and golden.is_file() and "verticals_testgen.samples.shapes" in golden.read_text()


def test_summary_table(shapes_result):
    task = GenerateTests()
    output = GenerateTests.Output(**shapes_result)
    summary = task.summarize([output], None)
    assert "verticals_testgen.samples.shapes" in summary["table"]
    assert summary["mean_mutation_score"] == shapes_result["mutation"]["score"]
    assert f"{shapes_result['mutation']['killed']}/{shapes_result['mutation']['evaluated']}" in summary["table"]
    item = ModuleInput.model_validate({"module": "x"}, context=OPERATOR.context())
    assert task.files(item, output) == {shapes_result["test_file"]: shapes_result["test_code"]}


def test_inputs_and_params():
    cli = OPERATOR.context()  # module names and paths on the server are the operator's (the CLI)
    assert ModuleInput.model_validate({"text": "colorsys"}, context=cli).module == "colorsys"
    assert ModuleInput.model_validate({"text": "pkg/mod.py"}, context=cli).path == "pkg/mod.py"
    for named in ({"module": "colorsys"}, {"path": "pkg/mod.py"}, {"text": "colorsys"}):
        with pytest.raises(ValueError, match="only an operator"):  # an API tenant's item (no context: the same)
            ModuleInput.model_validate(named)
    assert ModuleInput(module="tiny", source="x = 1").module == "tiny"  # a name, with the source it names
    with pytest.raises(ValueError):
        ModuleInput(source="x = 1")
    assert GenerateParams(strategies="observed,llm").strategies == ["observed", "llm"]
    with pytest.raises(ValueError):
        GenerateParams(strategies="magic")
    rows = [{"text": "colorsys"}, {"text": "  "}, {"text": "# comment"}, {"text": "a/b.py"}]
    assert list(GenerateTests().read_items(rows, GenerateParams())) == [{"text": "colorsys"}, {"text": "a/b.py"}]


def test_targets():
    assert resolve(module="colorsys").file.endswith("colorsys.py")
    with pytest.raises(TargetError):
        resolve(module="math")  # compiled: nothing to measure
    with pytest.raises(TargetError):
        resolve(module="no_such_module_xyz")
    target = from_source("def f():\n    return 1\n", "tiny")
    assert target.name == "tiny"
    assert Path(target.file).read_text().startswith("def f")


def test_candidate_parsing_and_import_filter():
    answer = "Here you go:\n```python\nimport colorsys\nimport requests\n\ndef test_a():\n    assert 1\n```\nbye"
    code = extract_code(answer)
    assert "def test_a" in code and "bye" not in code
    assert disallowed_imports(code, "colorsys") == ["requests"]
    assert disallowed_imports("import os, pytest\nfrom hypothesis import given\nimport colorsys", "colorsys") == []
    broken = "import shapes\n\ndef test_x():\n    assert shapes.area(1) == 1\n\ndef test_y(:\n"
    assert [c.name for c in split_tests(extract_code(broken), "llm", "shapes", "def area(r): ...", "p")] == ["test_p_0"]
    bare = split_tests("assert clamp(1, 0, 2) == 1", "llm", "m", "def clamp(v, lo, hi): ...", "p")
    assert "from m import clamp" in bare[0].source


def test_explanation_says_what_each_kept_test_covers(shapes_result):
    """The job option explain: one evidence item per kept test with the lines and branches it added (from the
    run's records, nothing runs again), the lines still uncovered, and a summary of the coverage gained."""
    from verticals_testgen.generate import _ranges

    from verticals import RunContext
    from verticals.contract import check_explanation

    task = GenerateTests()
    output = GenerateTests.Output(**shapes_result)
    item = ModuleInput.model_validate({"module": "verticals_testgen.samples.shapes"}, context=OPERATOR.context())
    explanation = task.explain([item], [output], {}, RunContext("j", GenerateParams(), explain=True))[0]
    assert check_explanation(explanation, item, None) == explanation
    kept = [t for t in shapes_result["tests"] if t["status"] == "kept"]
    tests = [e for e in explanation.evidence if e.kind == "test"]
    assert [e.text for e in tests] == [t["name"] for t in kept]
    for evidence, record in zip(tests, kept, strict=True):
        assert evidence.weight == len(record["added_lines"]) + len(record["added_branches"])
        if record["added_lines"]:
            assert f"lines {_ranges(record['added_lines'])}" in evidence.detail
    after = shapes_result["coverage_after"]["percent"]
    assert f"-> {after:.1f}%" in explanation.summary and explanation.summary.startswith(f"{len(kept)} of ")
    assert _ranges([3, 4, 5, 9, 11, 12]) == "3-5, 9, 11-12"
