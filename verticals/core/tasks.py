"""The Task API: what a domain plugin implements (defined in :mod:`verticals.contract`, re-exported here).

A :class:`Task` turns a batch of validated input items into one output per
item, in the same order. The engine (``verticals.core.jobs`` and ``verticals.core.pipeline``) validates
inputs, chunks and batches them, bisects a batch that raises so that only the
bad item fails, validates outputs and stores them.
"""

from __future__ import annotations

from verticals.contract import DeviceClass, ItemError, NoParams, RunContext, Task

__all__ = ["DeviceClass", "ItemError", "NoParams", "RunContext", "Task"]
