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


CLASS_SOURCE = '''
import functools


class Counter:
    def __init__(self, start=0):
        self.total = start

    def add(self, n):
        self.total += n * 2
        return self.total

    @property
    def double(self):
        return self.total * 2


@functools.lru_cache(maxsize=None)
def shifted(n):
    def inner(k):
        return k - 1
    return inner(n) + 3
'''


def _module(source: str, name: str = "m_switch"):
    import types

    module = types.ModuleType(name)
    exec(compile(source, f"{name}.py", "exec"), module.__dict__)
    for value in vars(module).values():
        if isinstance(value, type):
            value.__module__ = name
    return module


def test_switch_turns_each_mutant_on_in_the_live_objects_and_back_off():
    from verticals_testgen.harness import MutantSwitch

    module = _module(SOURCE + CLASS_SOURCE)
    switch = MutantSwitch(module, "m_switch.py", SOURCE + CLASS_SOURCE)
    counter = module.Counter(1)  # built before the switch: its methods follow the switch all the same
    before = (module.clamp(5), module.Counter(1).add(3), counter.double, module.shifted(5))
    changed = 0
    for point in mutation_points(SOURCE + CLASS_SOURCE):
        pairs = switch.swaps(point["index"])
        assert pairs, point  # every mutant sits in a function object the switch can reach
        with switch.on(pairs):
            try:
                during = (module.clamp(5), module.Counter(1).add(3), counter.double, module.shifted(5))
            except TypeError:  # `return x` -> `return None` in `inner`: None + 3
                during = None
        changed += during != before
        assert (module.clamp(5), module.Counter(1).add(3), counter.double, module.shifted(5)) == before
    assert changed >= 10
    # the lru_cache does not hide the mutant (nor keep its results afterwards)
    index = next(p["index"] for p in mutation_points(SOURCE + CLASS_SOURCE) if p["change"] == "'-' -> '+'")
    with switch.on(switch.swaps(index)):
        assert module.shifted(5) == 9
    assert module.shifted(5) == 7


def test_outcomes_compare_as_the_generated_assertions_do():
    from verticals_testgen.harness import _approx_key, _same_outcome

    def value(returns: str, compare: str = "eq") -> tuple:
        return ("return", _approx_key({"compare": compare, "returns": returns}))

    assert _same_outcome(value("1.0", "approx"), value("1.000000001", "approx"))
    assert not _same_outcome(value("1.0", "approx"), value("1.001", "approx"))
    assert not _same_outcome(value("49"), value("49.0", "approx"))  # `assert x == 49` pins `type(x) is int`
    assert _same_outcome(value("49.0", "approx"), value("49"))  # `pytest.approx(49.0)` passes for 49
    assert _same_outcome(value("[1, 2]"), value("[1, 2.0]"))
    assert not _same_outcome(value("True"), value("1"))  # `assert x is True`
    assert not _same_outcome(value("1"), value("2"))
    assert not _same_outcome(value("'a'"), value("'A'"))
    assert not _same_outcome(("raise", "ValueError", "bad"), ("raise", "ValueError", "worse"))
    assert not _same_outcome(("return", ("eq", "1", None)), ("timeout",))


GRADES = '''
def grade(score: int) -> str:
    if score >= 90:
        return "A"
    return "B" if score > 50 else "C"


class Tally:
    def __init__(self):
        self.count = 0

    def add(self, n: int) -> None:
        if n > 2:
            self.count += n
'''


def test_a_targeted_round_records_inputs_that_tell_survivors_apart(tmp_path, monkeypatch):
    """Strong mutation in the explorer: with survivors given, a call or call sequence is recorded when the mutant
    switched on changes what its test would assert (here the boundaries `score == 90`, `n == 3`...)."""
    import io
    import json
    import sys

    from verticals_testgen import harness

    path = tmp_path / "m_grades.py"
    path.write_text(GRADES)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("m_grades", None)
    import m_grades

    points = mutation_points(GRADES)
    wanted = [p for p in points if p["change"] in ("'>=' -> '>'", "'>' -> '>='")]
    assert len(wanted) == 3
    record = io.StringIO()
    monkeypatch.setattr(harness, "RECORD", record)
    cfg = {"target": {"file": str(path)},
           "explore": {"seconds": 3, "round": 1, "survivors": [[p["index"], p["line"]] for p in wanted],
                       "mutant_lines": [p["line"] for p in wanted]}}
    explorer = harness.Explorer(m_grades, cfg, [])
    explorer.run()
    events = [json.loads(line) for line in record.getvalue().splitlines()]
    told = {k for e in events for k in e.get("kills", [])}
    assert told == {p["index"] for p in wanted} == explorer.killed
    for event in events:  # each recorded input that tells one apart holds the boundary value
        if event.get("kills") and event["event"] == "call":
            assert event["args"] in (["90"], ["50"], ["51"]) or event["kwargs"].get("score") in ("90", "50", "51")


def test_a_mutant_on_a_later_line_of_a_statement_is_reached_by_its_first_line():
    """coverage.py reports a statement that spans lines by its first line: each point carries that line, so a
    mutant on a continuation line is run against the tests that execute the statement (it was a sure survivor)."""
    source = "def same(a, b):\n    return (a.x == b.x\n            and a.y == b.y)\n"
    points = mutation_points(source)
    later = [p for p in points if p["line"] == 3]
    assert later and all(p["statement"] == 2 for p in later)
    assert all(p["statement"] == 2 for p in points)


def test_a_call_checks_what_it_wrote_to_its_arguments():
    """A stream the call wrote to and a list it changed are read again after the call (a mutant of what a function
    writes, not returns, is caught); a forged argument check is dropped with its record."""
    from verticals_testgen.allowlist import TargetNames, check_test_code
    from verticals_testgen.render import clean_events
    from verticals_testgen.strategies import observed_candidates
    from verticals_testgen.target import from_source

    source = "def emit(items, out):\n    out.write(','.join(items))\n    items.append('z')\n"
    target = from_source(source, "m_emit")
    after = [{"arg": 1, "kind": "getvalue", "returns": "'a,b'", "compare": "eq"},
             {"arg": 0, "kind": "value", "returns": "['a', 'b', 'z']", "compare": "eq"}]
    event = {"event": "call", "callee": "emit", "args": ["['a', 'b']", "io.StringIO()"], "kwargs": {},
             "returns": "None", "compare": "eq", "after": after}
    forged = [{**event, "after": [{**after[0], "arg": "x; import os"}]},
              {**event, "after": [{**after[0], "kind": "__class__"}]},
              {**event, "after": [{**after[0], "returns": "__import__('os')"}]}]
    events = clean_events([event, *forged[:2]])
    assert len(events) == 1
    candidates = observed_candidates(target, events + clean_events(forged[2:]))
    assert len(candidates) == 1  # the third forged record is well-typed but its value is not allowed
    body = candidates[0].body
    assert "arg1 = io.StringIO()" in body and "assert arg1.getvalue() == 'a,b'" in body
    assert "assert arg0 == ['a', 'b', 'z']" in body
    assert check_test_code(candidates[0].source, TargetNames("m_emit", source)) == []


BLOCKS_SOURCE = '''
import math
import sys

if sys.version_info >= (3, 0):
    class Shape:
        """A class inside an if block."""

        def area(self, r: "Radius") -> float:
            return math.pi * r ** 2

        async def later(self, n):
            return n > 1
else:
    def area(r):
        return 3 * r

try:
    def parse(text):
        match text.split():
            case [word]:
                return word.upper()
            case _:
                return text[1:] if text else None
except ImportError:
    def parse(text):
        return not text
'''


def test_the_builder_makes_the_same_mutants_compiling_only_the_changed_statement():
    from verticals_testgen.harness import MutantBuilder

    for source in (SOURCE, SOURCE + CLASS_SOURCE, BLOCKS_SOURCE):
        builder = MutantBuilder.checked(source, "m_build.py")
        points = mutation_points(source)
        assert builder is not None and builder.total == len(points)
        for point in points:
            whole = apply_mutant(source, point["index"])
            top, statement = builder.mutated_statement(point["index"])
            assert ast.dump(statement) == ast.dump(whole.body[top]), point
            # the other statements are the original's (compiled once)
            assert ast.dump(ast.parse(source).body[top]) != ast.dump(statement)
    namespace: dict = {}
    index = next(p["index"] for p in mutation_points(BLOCKS_SOURCE) if p["change"] == "'**' -> '*'")
    for code in MutantBuilder(BLOCKS_SOURCE, "m_build.py").module_codes(index):
        exec(code, namespace)
    assert namespace["Shape"]().area(3) == math_pi() * 6 and namespace["parse"]("ab") == "AB"
    # each statement is compiled with the module's own __future__ flags, not with this file's (or the harness's)
    namespace = {}
    for code in MutantBuilder(BLOCKS_SOURCE, "m_build.py").module_codes(0):
        exec(code, namespace)
    assert namespace["Shape"].area.__annotations__["r"] == "Radius"  # a string in the source
    future = "from __future__ import annotations\n" + BLOCKS_SOURCE.replace('"Radius"', "Radius")
    namespace = {}
    for code in MutantBuilder(future, "m_build.py").module_codes(0):
        exec(code, namespace)  # with the flag, the undefined name stays a string
    assert namespace["Shape"].area.__annotations__["r"] == "Radius"
    try:
        exec(compile(BLOCKS_SOURCE.replace('"Radius"', "Radius"), "m.py", "exec", dont_inherit=True), {})
    except NameError:
        pass
    else:
        raise AssertionError("without the flag the annotation is evaluated")


def math_pi() -> float:
    import math

    return math.pi
