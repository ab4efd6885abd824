"""The local executor: the embedded default (chunks run in this process). It is core
(:class:`verticals.core.executor.LocalExecutor`, so that core code such as evaluations can run a job
without importing a front end); this module keeps the old import path."""

from __future__ import annotations

from verticals.core.executor import LocalExecutor

__all__ = ["LocalExecutor"]
