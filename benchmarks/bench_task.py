"""The trivial task the engine benchmarks run (statements.py, scale.py): the length of a short text, no model.

What they measure is the engine and the store. The task is registered by hand on a built registry rather
than through ``Registry.attach``, and results are read through whichever export the checkout has, so the
same code runs against an older checkout too (``statements.py --baseline-path``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from verticals import Task, hookimpl


class LengthInput(BaseModel):
    text: str


class LengthOutput(BaseModel):
    length: int


class LengthTask(Task):
    name = "bench.length"
    description = "Length of a text (engine benchmarks)."
    Input = LengthInput
    Output = LengthOutput
    text_field = "text"

    def run(self, batch, models, ctx):
        return [LengthOutput(length=len(item.text)) for item in batch]


class FixedCostTask(LengthTask):
    """``bench.length`` whose forward costs a fixed time per ``run`` call (``forward_s``, a sleep: the GIL is
    released, as a GPU forward or a native encoder releases it), a stand-in for a model on a device
    (overlap.py). A text containing ``FAIL`` raises in ``run``: the batch is bisected, that item fails alone."""

    name = "bench.fixed_cost"
    description = "Length of a text after a fixed-time forward (engine benchmarks)."
    forward_s = 0.02

    def run(self, batch, models, ctx):
        time.sleep(self.forward_s)
        if any("FAIL" in item.text for item in batch):
            raise ValueError("a failing item in the batch")
        return [LengthOutput(length=len(item.text)) for item in batch]


def register(registry: Any, task: type[Task]) -> None:
    """Add ``task`` to a built registry as the plugin ``bench``."""
    from verticals.registry import PluginInfo

    class BenchPlugin:
        @hookimpl
        def register_tasks(self, register):
            register(task)

    registry.manager.register(BenchPlugin(), name="bench")
    info = PluginInfo("bench", "verticals-bench", "0", __name__, tasks=[task.name])
    registry.plugins["bench"] = info
    registry.tasks[task.name] = task
    registry.task_plugin[task.name] = info


def result_rows(store: Any, job_id: str) -> Iterator[dict[str, Any]]:
    """Every result of the job, as an export reads them (``core.export``; ``jobs.iter_results`` before it)."""
    try:
        from verticals.core.jobs.export import result_rows as rows
    except ImportError:  # a checkout from before core/jobs/export.py
        from verticals.core.jobs.engine import iter_results as rows
    return rows(store, job_id)
