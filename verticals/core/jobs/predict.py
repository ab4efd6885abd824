"""Synchronous prediction for small batches: the engine's validation, hooks and bisection, no job stored.

Used by ``POST /v1/predict`` and the in-process SDK (``Client().predict``); imports no web framework.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from verticals.config import settings
from verticals.contract import RunContext, ServerPathError
from verticals.core.access import check_rows, server_access
from verticals.core.jobs.engine import JobError, check_explain, validate_params
from verticals.core.jobs.pipeline import LazyModels, describe_validation_error, process_batch
from verticals.core.models.host import ModelHost
from verticals.core.text import unstorable
from verticals.registry import Registry

__all__ = ["TooManyItems", "max_items", "predict"]


def max_items() -> int:
    """Most items one predict call takes (``VERTICALS_API_PREDICT_MAX_ITEMS``, default 64)."""
    return settings().api_predict_max_items


class TooManyItems(ValueError):
    def __init__(self, count: int, limit: int, how: str = "submit a job"):
        super().__init__(f"{count} items is more than the {limit} a synchronous predict call takes: "
                         f"{how} for bigger batches")
        self.count, self.limit = count, limit


def predict(registry: Registry, host: ModelHost, task_name: str, items: list[dict[str, Any]],
            params: dict[str, Any] | None = None, limit: int | None = None, tenant: str | None = None,
            explain: bool = False) -> list[dict[str, Any]]:
    """One result dict (seq, status, output, error; ``explanation`` with ``explain``) per item, in order. Raises
    JobError / PluginError / TooManyItems. ``tenant``: the API tenant asking (None: the operator's in-process
    SDK), for the server-path rules."""
    limit = max_items() if limit is None else limit
    task_cls = registry.task(task_name)
    check_explain(registry, task_cls, explain)
    task = task_cls()
    problem = unstorable(params or {}) or next((f"item {n}: {p}" for n, item in enumerate(items, 1)
                                                 if (p := unstorable(item))), None)
    if problem:
        raise JobError(problem)
    access = server_access(tenant)
    context = access.context()
    validated = validate_params(task_cls, params or {}, context)
    try:
        rows = list(task.read_items(check_rows(task_cls.Input, iter(items), access), validated))
    except ServerPathError as error:
        raise JobError(str(error)) from None
    if len(rows) > limit or len(items) > limit:
        raise TooManyItems(max(len(rows), len(items)), limit)
    ctx = RunContext(job_id=f"predict-{uuid.uuid4().hex}", params=validated, explain=explain)
    results: list[dict[str, Any] | None] = [None] * len(rows)
    valid: list[tuple[int, Any]] = []
    for seq, row in enumerate(rows):
        try:
            valid.append((seq, task_cls.Input.model_validate(row, context=context)))
        except ValidationError as error:
            results[seq] = {"seq": seq, "status": "failed", "output": None, "error": describe_validation_error(error)}
    models = LazyModels(host, {**task_cls.models, **task.models_for(validated)})
    for offset in range(0, len(valid), task_cls.batch_size):
        batch = valid[offset:offset + task_cls.batch_size]
        for result in process_batch(registry, task, [seq for seq, _ in batch], [item for _, item in batch], models,
                                    ctx):
            results[result.seq] = {"seq": result.seq, "status": result.status, "output": result.output,
                                   "error": result.error,
                                   **({"explanation": result.explanation} if result.explanation is not None else {})}
    return [r for r in results if r is not None]
