"""The job summary names the surviving mutants of each module, in few enough columns for an 80-column terminal."""

from __future__ import annotations

import io

from rich.console import Console
from verticals_testgen.generate import CHANGE_WIDTH, GeneratedTests, GenerateTests, MutationFigures, survivors_line

from verticals.cli.render import summary_renderables

COVERAGE = {"lines_covered": 80, "lines_total": 100, "line_percent": 80.0, "branches_covered": 9,
            "branches_total": 10, "branch_percent": 90.0, "percent": 84.5}
LONG = "'" + "a string constant of the module " * 3 + "'"


def figures(killed: int, evaluated: int, survivors: list[tuple[int, str]]) -> MutationFigures:
    return MutationFigures(score=round(killed / evaluated, 3), killed=killed, evaluated=evaluated,
                           total=evaluated, seconds=1.0,
                           survivors=[{"line": line, "change": change, "operator": "constant"}
                                      for line, change in survivors])


def result(module: str, mutation: MutationFigures | None) -> GeneratedTests:
    return GeneratedTests(module=module, file=f"{module}.py", test_file=f"test_{module}.py", test_code="",
                          coverage_before={**COVERAGE, "percent": 20.0}, coverage_after=COVERAGE,
                          uncovered_lines=[], uncovered_branches=[], tests=[], generated=40, passed=20, kept=12,
                          asserting=11, mutation=mutation, strategies={}, sandbox={}, formatter="ruff",
                          seconds=131.6)


def test_survivors_line_names_one_change_per_line_then_counts_the_rest():
    survivors = [(12, "'<' -> '<='"), (12, "'<' -> '>'"), (30, "0 -> 1"), (41, f"{LONG} -> 'XX'"),
                 (57, "'return x' -> 'return None'"), (60, "'and' -> 'or'"), (75, "'+' -> '-'")]
    line = survivors_line(figures(93, 250, survivors), shown=5)
    parts = line.split("; ")
    assert parts[:3] == ["12: '<' -> '<='", "30: 0 -> 1", f"41: {LONG[:CHANGE_WIDTH - 1]}\u2026"]
    assert parts[3:] == ["57: 'return x' -> 'return None'", "60: 'and' -> 'or'", "and 152 more"]
    # 157 survivors (250 - 93), five named: the rest are counted, also those past the listed ones
    assert survivors_line(figures(6, 7, [(3, "1 -> 2")])) == "3: 1 -> 2"
    assert survivors_line(figures(7, 7, [])) == "none"
    assert survivors_line(figures(5, 7, [])) == "2 (not listed)"


def test_summary_shows_scores_and_survivors_within_80_columns():
    names = ["email.charset", "sortedcontainers.sortedset", "pkg.unscored"]
    outputs = [result(names[0], figures(63, 76, [(96 + 2 * i, "'==' -> '!='") for i in range(13)])),
               result(names[1], figures(59, 59, [])), result(names[2], None)]
    summary = GenerateTests().summarize(outputs, None)
    assert summary["surviving_mutants"] == {names[0]: survivors_line(outputs[0].mutation), names[1]: "none"}
    assert summary["surviving_mutants"][names[0]].endswith("; and 8 more")
    assert [row["killed"] for row in summary["modules"]] == ["63/76", "59/59", "-"]
    assert summary["kept"] == 36 and summary["asserting"] == 33 and summary["generated"] == 120
    assert summary["mean_mutation_score"] == round((0.829 + 1.0) / 2, 3)
    assert "96: '==' -> '!='" in summary["table"] and "20.0 ->  84.5" in summary["table"]
    buffer = io.StringIO()
    console = Console(width=80, file=buffer, force_terminal=False, color_system=None)
    for part in summary_renderables(summary):
        console.print(part)
    text = buffer.getvalue()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    # each module name stays whole on its row in both tables; the survivors' list wraps beside it
    rows = [line for line in text.splitlines() if line.startswith(names[1])]
    assert len(rows) == 2 and "59/59" in rows[0] and rows[1].split()[1] == "none"
    words = " ".join(text.split())  # the list wraps between words
    assert "surviving mutants" in words and "email.charset 96: '==' -> '!='; 98: '==' -> '!='; 100:" in words
    assert "104: '==' -> '!='; and 8 more" in words
