"""The mutation operators (no jail: they only parse and rewrite source text)."""

from __future__ import annotations

import ast

from verticals_testgen.harness import apply_mutant, mutation_points

SOURCE = '''
"""Module docstring: never mutated."""
LIMIT = 10  # module level: never mutated


def clamp(x: int, low: int = 0) -> int:
    """Docstring: never mutated."""
    if x < low and not x == -1:
        return low
    for _ in range(2):
        if x > LIMIT:
            break
    return x + 1
'''


def test_points_cover_each_operator_inside_functions_only():
    points = mutation_points(SOURCE)
    changes = {p["change"] for p in points}
    assert {"'<' -> '<='", "'and' -> 'or'", "'+' -> '-'", "'>' -> '>='", "'break' -> 'continue'",
            "'==' -> '!='", "1 -> 2", "2 -> 3"} <= changes
    assert any(p["operator"] == "return" for p in points) and any(p["operator"] == "condition" for p in points)
    assert all(p["line"] > 3 for p in points)  # not the docstring, not LIMIT = 10
    assert [p["index"] for p in points] == list(range(len(points)))


def test_each_mutant_changes_exactly_one_place_and_compiles():
    original = ast.dump(ast.parse(SOURCE))
    seen = set()
    for point in mutation_points(SOURCE):
        tree = apply_mutant(SOURCE, point["index"])
        compile(tree, "m.py", "exec")
        dumped = ast.dump(tree)
        assert dumped != original and dumped not in seen
        seen.add(dumped)
    namespace: dict = {}
    index = next(p["index"] for p in mutation_points(SOURCE) if p["change"] == "'+' -> '-'")
    exec(compile(apply_mutant(SOURCE, index), "m.py", "exec"), namespace)
    assert namespace["clamp"](5) == 4  # x - 1
