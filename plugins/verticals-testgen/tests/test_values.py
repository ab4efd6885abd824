"""The explorer's values and steps (no jail needed: these run the harness' helpers on a module imported here)."""

from __future__ import annotations

import collections
import datetime
import importlib.util
import pprint
import sys
import types

import pytest
from verticals_testgen.harness import Explorer, Expr, _describe_value, _do_step, _step_text, typed_values

SOURCE = '''
import datetime


class _Base:
    def shared(self, n):
        return n + 1

    def _helper(self):
        return 2

    def __radd__(self, other):
        return ("radd", other)

    def __format__(self, spec):
        return "spec:" + spec

    def __iadd__(self, other):
        return [self, other]


class Public(_Base):
    def own(self):
        return 1


def check(value: object, when=None):
    return value is None


def main(argv=None):
    options = ("--verbose", "-q")
    return options, argv


MARK = Public()
'''


@pytest.fixture
def explorer(tmp_path):
    path = tmp_path / "valuesmod.py"
    path.write_text(SOURCE)
    spec = importlib.util.spec_from_file_location("valuesmod", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["valuesmod"] = module
    try:
        spec.loader.exec_module(module)
        cfg = {"target": {"file": str(path)}, "explore": {"seconds": 2, "round": 0}}
        yield Explorer(module, cfg, [])
    finally:
        sys.modules.pop("valuesmod", None)


def test_typed_values_follow_the_libraries_a_module_uses():
    built = {type(e.make()) for e in typed_values(pprint)}  # pprint imports collections, dataclasses, types
    assert {collections.OrderedDict, collections.deque, collections.Counter, types.SimpleNamespace} <= built
    assert not any(e.code.startswith("datetime.") for e in typed_values(pprint))
    values = typed_values(_module_using_datetime())
    assert {type(e.make()) for e in values} >= {datetime.date, datetime.datetime, datetime.timedelta}
    # the code of each value is what a test file will contain: it evaluates to an equal value
    for expr in values:
        assert eval(expr.code, {"datetime": datetime}) == expr.make()


def _module_using_datetime():
    module = types.ModuleType("uses_datetime")
    module.date = datetime.date  # `from datetime import date`
    return module


def test_inherited_and_private_methods_become_steps(explorer):
    tasks = {(t["kind"], t["label"]): t for t in explorer.tasks()}
    public = tasks[("sequence", "Public")]
    names = {step[1]: step[0] for step in public["steps"]}
    assert names["shared"] == "method"  # defined on the private base
    assert names["own"] == "method"
    assert names["__radd__"] == "rbinary" and names["__format__"] == "format"
    assert [step[1] for step in public["private"]] == ["_helper"]
    assert ("sequence", "_Base") not in tasks  # private classes are reached through their subclasses


def test_object_hint_gets_none_and_module_objects_are_offered(explorer):
    params = explorer.signature(explorer.module.check, skip_self=False)
    value_pool = params[0][2]
    assert None in value_pool and any(isinstance(v, Expr) for v in value_pool)
    marks = [e.code for exprs in explorer.objects.values() for e in exprs]
    assert marks == ["valuesmod.MARK"]


def test_reflected_operators_and_format_specs(explorer):
    obj = explorer.module.Public()
    assert _step_text("rbinary", "__radd__", ["1"], {}) == "(1 + obj)"
    assert _do_step(obj, "rbinary", "__radd__", [1], {}) == ("radd", 1)
    assert _step_text("format", "__format__", ["'x'"], {}) == "format(obj, 'x')"
    assert _do_step(obj, "format", "__format__", ["x"], {}) == "spec:x"
    public = next(t for t in explorer.tasks() if t["kind"] == "sequence")
    spec_pool = next(step[2][0][2] for step in public["steps"] if step[1] == "__format__")
    assert spec_pool[:3] == ["", "s", "d"]


def test_stdlib_values_are_compared_with_the_call_that_builds_them():
    when = datetime.datetime(2021, 3, 1, 13, 45, 30, tzinfo=datetime.UTC)
    assert _describe_value(when) == {"returns": repr(when), "compare": "eq"}
    assert _describe_value(datetime.timedelta(days=-1, seconds=5))["compare"] == "eq"
    assert _describe_value(collections.deque([1]))["compare"] == "repr"  # `deque([1])`: no module prefix


def test_in_place_operators_rebind_and_command_lines_use_the_module_options(explorer):
    obj = explorer.module.Public()
    assert _step_text("inplace", "__iadd__", ["2"], {}) == "obj += 2"
    assert _do_step(obj, "inplace", "__iadd__", [2], {}) == [obj, 2]
    argv_pool = explorer.signature(explorer.module.main, skip_self=False)[0][2]
    assert ["--verbose"] in argv_pool and ["-q"] in argv_pool and [] in argv_pool
    assert ["prog", "--verbose"] in argv_pool  # for a main() that reads sys.argv whole
