"""The LLM strategy with the real packaged SmolLM2-135M (slow: loads weights and generates)."""

from __future__ import annotations

import os

import pytest
from verticals_testgen.generate import GenerateParams, GenerateTests, ModuleInput

from verticals import RunContext

SOURCE = '''def add(a: int, b: int) -> int:
    """Add two numbers; negative a gives -1."""
    if a < 0:
        return -1
    return a + b
'''


@pytest.mark.slow
def test_llm_strategy_generates_and_filters():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry

    host = ModelHost(get_registry().models)
    task = GenerateTests()
    params = GenerateParams(strategies="llm", llm_rounds=1, llm_max_prompts=1, max_new_tokens=72)
    [output] = task.run([ModuleInput(module="tiny_add", source=SOURCE)], {"llm": host.get("smollm2")},
                        RunContext(job_id="test-llm", params=params))
    llm = output.strategies["llm"]
    assert llm["generated"] >= 1, output.notes  # the model answered with at least one parseable test function
    assert output.generated == llm["generated"]
    assert {t.strategy for t in output.tests} == {"llm"}
    assert output.coverage_after.lines_covered >= output.coverage_before.lines_covered
    if output.kept:
        assert "def test_" in output.test_code
    else:
        assert output.test_code == ""
