"""Oracles a plain `==` misses: an int result that became a float or a bool, and the warning a call issues."""

from __future__ import annotations

import ast
import re

import pytest
from verticals_testgen.harness import _approx_key, _same_outcome
from verticals_testgen.pipeline import Options, generate_tests
from verticals_testgen.render import Renderer
from verticals_testgen.target import from_source

SOURCE = '''"""Money in cents, with a warning for an amount shared by no one."""
import warnings


class Rounded(UserWarning):
    pass


def cents(amount, sign=1):
    whole = amount * sign
    return whole * 100


def share(total, parts):
    if parts == 0:
        warnings.warn(f"{total} shared by no one: nothing each", Rounded)
        return 0
    return total // parts


def is_even(n):
    return n % 2 == 0


class Wallet:
    def __init__(self, cents=0):
        if cents < 0:
            warnings.warn("a negative wallet", Rounded)
        self.cents = cents

    def add(self, cents):
        self.cents = self.cents + cents
        if self.cents < 0:
            warnings.warn("a wallet went negative", Rounded)
        return self.cents
'''


def test_int_results_pin_their_type_and_calls_are_made_once():
    renderer = Renderer("money", SOURCE)
    record = {"compare": "eq", "returns": "500"}
    assert renderer.check("money.cents(5)", record) == [
        "value = money.cents(5)", "assert value == 500", "assert type(value) is int"]
    assert renderer.check("result.total", record) == ["assert result.total == 500",
                                                      "assert type(result.total) is int"]
    assert renderer.check("len(obj)", record) == ["assert len(obj) == 500"]  # len() is an int by definition
    assert renderer.check("money.is_even(2)", {"compare": "eq", "returns": "True"}) == [
        "assert money.is_even(2) is True"]
    assert renderer.check("money.cents(0.5)", {"compare": "approx", "returns": "50.0"}) == [
        "assert money.cents(0.5) == pytest.approx(50.0)"]
    assert renderer.check("money.cents(5)", {"compare": "eq", "returns": "[500]"}) == [
        "assert money.cents(5) == [500]"]


def test_a_warning_wraps_the_call_with_its_category_and_message():
    renderer = Renderer("money", SOURCE)
    record = {"compare": "eq", "returns": "0", "warns": "money.Rounded", "warn_message": "7 shared (by no one)"}
    lines = renderer.warns(record, renderer.check("money.share(7, 0)", record) or [])
    assert lines == ["with pytest.warns(money.Rounded, match='^7 shared \\\\(by no one\\\\)$'):",
                     "    value = money.share(7, 0)", "    assert value == 0", "    assert type(value) is int"]
    assert renderer.warns({"warns": "os.Unknown"}, ["x"]) is None  # a category the target does not define
    assert renderer.warns({}, ["x"]) == ["x"]


def test_a_constructor_that_warns_is_wrapped_too():
    from verticals_testgen.strategies import _sequence_lines

    event = {"callee": "Wallet", "ctor_args": ["-1"], "warns": "money.Rounded", "warn_message": "a negative wallet",
             "steps": [{"kind": "method", "name": "add", "args": ["2"], "compare": "eq", "returns": "1"}]}
    built = _sequence_lines(Renderer("money", SOURCE), event)
    assert built is not None
    assert built[1] == ["with pytest.warns(money.Rounded, match='^a negative wallet$'):",
                        "    obj = money.Wallet(-1)", "value = obj.add(2)", "assert value == 1",
                        "assert type(value) is int"]


def test_outcomes_tell_an_int_from_the_equal_float_or_bool():
    def value(returns: str, compare: str = "eq") -> tuple:
        return ("return", _approx_key({"compare": compare, "returns": returns}))

    assert not _same_outcome(value("5"), value("5.0", "approx"))
    assert not _same_outcome(value("1"), value("True"))
    assert _same_outcome(value("5"), value("5"))
    assert not _same_outcome(value("5"), value("6"))
    assert _same_outcome(value("5.0", "approx"), value("5"))  # `== pytest.approx(5.0)` passes for 5


@pytest.mark.slow
def test_generated_tests_kill_a_float_mutant_and_check_the_warning():
    target = from_source(SOURCE, "money")
    options = Options(strategies=("observed",), time_budget=40, explore_seconds=6, test_timeout=3)
    result = generate_tests([target], options)[0]
    code = result["test_code"]
    ast.parse(code)
    assert "type(value) is int" in code, code
    assert "def test_share_warns_rounded" in code, code
    warns = r'with pytest.warns\(money.Rounded, match="\^-?\d+ shared by no one: nothing each\$"\):'
    assert re.search(warns, code), code
    assert 'pytest.warns(money.Rounded, match="^a negative wallet$")' in code, code
    assert 'pytest.warns(money.Rounded, match="^a wallet went negative$")' in code, code  # a step that warns
    survivors = [s["change"] for s in result["mutation"]["survivors"]]
    assert not [s for s in survivors if "'*' -> '/'" in s or "nothing each" in s], (survivors, code)
    assert all(t["status"] != "failed" for t in result["tests"])  # kept tests pass in the final file
