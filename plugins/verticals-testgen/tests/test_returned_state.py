"""Round 6 oracles (issue 28): the public state of an object a call-sequence step returns, and the public slots
and properties of an object whose state is private.

Before, a step such as ``obj.normalized()`` that built a new object of the module was checked by its ``repr`` (or
type) only; a mutant of the code that built it that the repr does not show (``micro * sign`` -> ``micro / sign``:
``500`` becomes ``500.0``, which ``{:g}`` prints alike) went unseen. Now the step's value is named and its
attributes are read (``assert value.micro == 500``, ``assert type(value.micro) is int``). And an object that
keeps its state in private slots (``packaging.version.Version``) was read through its ``repr`` only; now its
public properties are read as well (``assert result.minor == 0``).
"""

from __future__ import annotations

import ast
import types

import pytest
from verticals_testgen.harness import _describe_value, _returned_state, _state_checks, apply_mutant, mutation_points
from verticals_testgen.pipeline import Options, generate_tests
from verticals_testgen.render import Renderer, clean_events
from verticals_testgen.strategies import _call_lines, _sequence_lines
from verticals_testgen.target import from_source

SOURCE = '''"""A span of seconds and microseconds whose normalized copy carries the overflow."""


class Span:
    def __init__(self, seconds=0, micro=0):
        self.seconds = seconds
        self.micro = micro

    def normalized(self):
        sign = -1 if self.micro < 0 else 1
        carry, micro = divmod(abs(self.micro), 1000)
        micro = micro * sign
        return Span(self.seconds + sign * carry, micro)

    def __repr__(self):
        return f"Span({self.seconds:g}, {self.micro:g})"
'''
SLOTTED = '''"""A version kept in private slots, shown through properties."""


class Release:
    __slots__ = ("_major", "_minor")

    def __init__(self, text):
        major, _, minor = text.partition(".")
        self._major = int(major)
        self._minor = int(minor or 0)

    @property
    def major(self):
        return self._major

    @property
    def minor(self):
        return self._minor

    def __repr__(self):
        return f"<Release {self._major}>"
'''
MUTATED_LINE = 12  # `micro = micro * sign` in normalized()


def _module(tree_or_source, name: str = "span") -> types.ModuleType:
    module = types.ModuleType(name)
    code = compile(tree_or_source, f"<{name}>", "exec")
    exec(code, module.__dict__)  # the test's own source and its mutant
    return module


def _mutant(source: str = SOURCE, line: int = MUTATED_LINE, change: str = "'*' -> '/'",
            name: str = "span") -> types.ModuleType:
    index = next(p["index"] for p in mutation_points(source) if p["line"] == line and p["change"] == change)
    return _module(ast.fix_missing_locations(apply_mutant(source, index)), name)


def _recorded(module: types.ModuleType) -> dict:
    """The sequence record the explorer writes for `Span(0, 1500).normalized()` (the harness' own functions)."""
    value = module.Span(0, 1500).normalized()
    step = {"kind": "method", "name": "normalized", "args": [], "kwargs": {}, "generator": False,
            **_describe_value(value)}
    state = _returned_state(value, module.__name__, step)
    if state:
        step["value_state"] = state
    return {"event": "sequence", "callee": "Span", "ctor_args": ["0", "1500"], "ctor_kwargs": {}, "steps": [step]}


def _run(lines: list[str], module: types.ModuleType) -> None:
    exec("\n".join(lines), {module.__name__: module, "pytest": pytest})  # rendered from checked parts


def test_a_step_that_returns_an_object_of_the_module_records_its_attributes():
    module = _module(SOURCE)
    step = _recorded(module)["steps"][0]
    assert step["compare"] == "repr"  # the object is compared by its repr, as before
    assert [(s["kind"], s["name"], s["returns"]) for s in step["value_state"]] == [
        ("attr", "seconds", "1"), ("attr", "micro", "500")]
    # not for a value the test compares with `==` already, nor an object of another module
    assert _returned_state(5, "span", _describe_value(5)) == []
    assert _returned_state(types.SimpleNamespace(a=1), "span", {"compare": "repr"}) == []


def test_the_rendered_step_reads_the_returned_objects_attributes():
    lines = _sequence_lines(Renderer("span", SOURCE), _recorded(_module(SOURCE)))[1]
    assert lines == ["obj = span.Span(0, 1500)", "value = obj.normalized()", "assert repr(value) == 'Span(1, 500)'",
                     "assert value.seconds == 1", "assert type(value.seconds) is int",
                     "assert value.micro == 500", "assert type(value.micro) is int"]


def test_the_new_checks_kill_a_mutant_the_repr_does_not_show():
    event = _recorded(_module(SOURCE))
    renderer = Renderer("span", SOURCE)
    lines = _sequence_lines(renderer, event)[1]
    _run(lines, _module(SOURCE))  # passes on the module
    mutant = _mutant()
    assert repr(mutant.Span(0, 1500).normalized()) == "Span(1, 500)"  # the repr hides the change
    with pytest.raises(AssertionError):
        _run(lines, mutant)
    # without the step's attribute reads (round 5), the same test passes on the mutant
    del event["steps"][0]["value_state"]
    _run(_sequence_lines(renderer, event)[1], mutant)


def test_returned_state_from_the_jail_is_checked_like_any_record():
    event = _recorded(_module(SOURCE))
    assert clean_events([event]) == [event]
    nested = {**event["steps"][0]["value_state"][0], "value_state": []}  # no deeper than one object
    assert clean_events([{**event, "steps": [{**event["steps"][0], "value_state": [nested]}]}]) == []
    call = {"kind": "method", "name": "normalized", "args": [], "kwargs": {}, "state": True}  # only reads
    assert clean_events([{**event, "steps": [{**event["steps"][0], "value_state": [call]}]}]) == []
    bad = {**event["steps"][0]["value_state"][0], "name": "__class__"}
    assert _sequence_lines(Renderer("span", SOURCE), {**event, "steps": [{**event["steps"][0],
                                                                            "value_state": [bad]}]}) is None


class _Awkward:
    __slots__ = ("_hidden", "shown", "unset")

    def __init__(self):
        self.shown = 1
        self._hidden = 2

    @property
    def fails(self):
        raise ValueError("no")

    @property
    def noisy(self):
        print("read")
        return 1

    @property
    def quiet(self):
        return 3


def test_slots_and_properties_that_unset_raise_or_print_are_skipped():
    checks = _state_checks(_Awkward(), __name__)
    assert [(c["name"], c["returns"]) for c in checks] == [("shown", "1"), ("quiet", "3")]
    assert [c["name"] for c in _state_checks(_Awkward(), "elsewhere")] == ["shown"]  # another module's properties


def test_private_slots_are_read_through_public_properties():
    module = _module(SLOTTED, "release")
    value = module.Release("3")
    record = {"event": "call", "callee": "Release", "args": ["'3'"], "kwargs": {}, **_describe_value(value)}
    record["state"] = _returned_state(value, "release", record)
    assert [(s["name"], s["returns"]) for s in record["state"]] == [("major", "3"), ("minor", "0")]
    assert clean_events([record]) == [record]
    lines = _call_lines(Renderer("release", SLOTTED), record)[1]
    assert lines == ["result = release.Release('3')", "assert repr(result) == '<Release 3>'",
                     "assert result.major == 3", "assert type(result.major) is int",
                     "assert result.minor == 0", "assert type(result.minor) is int"]
    _run(lines, module)
    mutant = _mutant(SLOTTED, 10, "0 -> 1", "release")  # `int(minor or 0)` -> `int(minor or 1)`
    assert repr(mutant.Release("3")) == "<Release 3>"  # what round 5 checked: the same
    with pytest.raises(AssertionError):
        _run(lines, mutant)


@pytest.mark.slow
def test_generated_tests_read_what_a_step_returned_and_kill_its_mutant():
    target = from_source(SOURCE, "span")
    options = Options(strategies=("observed",), time_budget=40, explore_seconds=6, test_timeout=3)
    result = generate_tests([target], options)[0]
    code = result["test_code"]
    ast.parse(code)
    survivors = {(s["line"], s["change"]) for s in result["mutation"]["survivors"]}
    assert "value = obj.normalized()" in code, code
    assert "type(value.micro) is int" in code, code
    assert (MUTATED_LINE, "'*' -> '/'") not in survivors, (survivors, code)
    assert all(t["status"] != "failed" for t in result["tests"])
