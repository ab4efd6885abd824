"""Coverage-guided search: call sequences on a class, doctests as seeds, exceptions as outcomes; defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from verticals_testgen.generate import GenerateParams, GenerateTests
from verticals_testgen.pipeline import Options, generate_tests
from verticals_testgen.strategies import llm_capable, model_parameters
from verticals_testgen.target import expand, from_source

from verticals import ModelSpec

SOURCE = '''"""A stack with a protocol: push, then pop or peek; a parser with a doctest."""


class Stack:
    def __init__(self, limit=3):
        self.items = []
        self.limit = limit

    def push(self, item):
        if len(self.items) >= self.limit:
            raise OverflowError("full")
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("empty")
        return self.items.pop()

    def peek(self):
        return self.items[-1] if self.items else None

    def __len__(self):
        return len(self.items)


def parse_pair(text):
    """Split ``key=value``.

    >>> parse_pair("a=1")
    ('a', '1')
    """
    if "=" not in text:
        raise ValueError("no '='")
    key, _, value = text.partition("=")
    return key.strip(), value.strip()
'''


@pytest.mark.slow
def test_sequences_doctests_and_exceptions_reach_full_coverage():
    target = from_source(SOURCE, "stacky")
    seen = []
    options = Options(strategies=("observed",), time_budget=40, explore_seconds=6, test_timeout=3,
                      progress=seen.append)
    result = generate_tests([target], options)[0]
    assert result["coverage_after"]["percent"] >= 95.0, result["uncovered_lines"]
    code = result["test_code"]
    assert "obj = stacky.Stack(" in code  # a call sequence on an instance
    assert "pytest.raises(OverflowError" in code or "pytest.raises(IndexError" in code
    strategies = {t["strategy"] for t in result["tests"] if t["status"] == "kept"}
    assert "sequence" in strategies
    assert any(t["strategy"] == "doctest" and t["status"] in ("kept", "redundant") for t in result["tests"])
    # progress records come from inside the item: each search round announced, then its result, then verification
    assert [p["stage"] for p in seen][-2:] == ["verify", "done"]
    assert seen[0]["stage"] == "explore" and seen[0]["candidates"] == 0
    assert seen[1]["stage"] == "search" and seen[1]["candidates"] > 0
    names = [t["name"] for t in result["tests"] if t["status"] == "kept"]
    assert len(names) == len(set(names)) and all(n.startswith("test_") for n in names)


@dataclass
class _Spec:
    hub_id: str | None = None
    local_path: str | None = None
    description: str = ""
    options: dict = field(default_factory=dict)


def test_capability_bar():
    assert model_parameters(_Spec(hub_id="HuggingFaceTB/SmolLM2-135M-Instruct")) == 135e6
    assert model_parameters(_Spec(hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct")) == 1.5e9
    assert model_parameters(_Spec(options={"parameters": 7e9})) == 7e9
    assert model_parameters(_Spec(hub_id="some/model")) is None
    from verticals.core.jobs.pipeline import LazyModels
    from verticals.core.models.host import ModelHost
    from verticals.registry import build_registry

    roles = LazyModels(ModelHost(build_registry().models), GenerateTests.models)  # what run() gets: nothing loaded
    capable, why = llm_capable(roles.spec("llm"))  # the packaged SmolLM2-135M is below the bar
    assert not capable and "135M" in why and not roles.loaded
    assert GenerateParams().resolved_strategies(roles.spec("llm")) == ["observed", "ghostwriter"]
    assert llm_capable(None) == (False, "no model spec for the llm role")
    big = ModelSpec(name="coder", kind="causal-lm", hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct")
    assert GenerateParams().resolved_strategies(big) == ["observed", "ghostwriter", "llm"]
    assert GenerateTests().models_for(GenerateParams()) == {}
    assert GenerateParams(strategies="observed,llm").resolved_strategies() == ["observed", "llm"]
    assert GenerateTests().models_for(GenerateParams(strategies="llm")) == {"llm": "smollm2"}


def test_packages_expand_to_one_item_per_module(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "tests").mkdir()
    (package / "__init__.py").write_text("from pkg.a import f\n")  # re-exports only: nothing to test
    (package / "a.py").write_text("def f():\n    return 1\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("class B:\n    pass\n")
    (package / "tests" / "test_a.py").write_text("def test_f():\n    pass\n")
    (package / "setup.py").write_text("def setup():\n    pass\n")
    items = expand(path=str(package))
    assert sorted(item["path"] for item in items) == [str(package / "a.py"), str(package / "sub" / "b.py")]
    rows = [{"text": str(package)}, {"text": "colorsys"}]
    read = list(GenerateTests().read_items(rows, GenerateParams()))
    assert [r.get("path") for r in read[:2]] == [str(package / "a.py"), str(package / "sub" / "b.py")]
    assert read[2] == {"text": "colorsys"}
    assert expand(module="colorsys") is None  # a single module stays one item


INHERITED = '''"""A private base with the behaviour, a public subclass; arguments of a stdlib type it imports."""
import datetime


class _Span:
    def __init__(self, days=1):
        self.days = days

    def shift(self, when):
        if isinstance(when, datetime.datetime):
            return when + datetime.timedelta(days=self.days)
        if isinstance(when, datetime.date):
            return when.toordinal() + self.days
        raise TypeError("not a date")

    def __radd__(self, other):
        if isinstance(other, int):
            return other + self.days
        return NotImplemented


class Span(_Span):
    def hours(self):
        return self.days * 24
'''


@pytest.mark.slow
def test_inherited_methods_reflected_operators_and_stdlib_values():
    target = from_source(INHERITED, "spans")
    options = Options(strategies=("observed",), time_budget=40, explore_seconds=6, test_timeout=3)
    result = generate_tests([target], options)[0]
    assert result["coverage_after"]["percent"] >= 95.0, result["uncovered_lines"]
    code = result["test_code"]
    assert "obj.shift(datetime." in code  # a method of the private base, called on the subclass with a date
    assert "+ obj" in code  # `1 + obj` reaches __radd__
    assert "import datetime" in code
