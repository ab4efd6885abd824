"""Synchronous prediction for small batches: the engine's validation, hooks and bisection, no job stored.

Shared by ``POST /v1/predict`` and the in-process SDK (``Client().predict``); imports no web framework.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from pydantic import ValidationError

from verticals.core.jobs import _to_result, describe_validation_error, run_isolating, validate_params
from verticals.core.models import ModelHost
from verticals.core.tasks import RunContext
from verticals.plugins import Registry


def max_items() -> int:
    """Most items one predict call takes (``VERTICALS_API_PREDICT_MAX_ITEMS``, default 64)."""
    return int(os.environ.get("VERTICALS_API_PREDICT_MAX_ITEMS", "64"))


class TooManyItems(ValueError):
    def __init__(self, count: int, limit: int):
        super().__init__(f"{count} items is more than the {limit} a synchronous predict call takes: "
                         "submit a job (POST /v1/jobs) for bigger batches")
        self.count, self.limit = count, limit


def predict(registry: Registry, host: ModelHost, task_name: str, items: list[dict[str, Any]],
            params: dict[str, Any] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """One result dict (seq, status, output, error) per item, in order. Raises JobError / PluginError / TooManyItems."""
    limit = max_items() if limit is None else limit
    task_cls = registry.task(task_name)
    task = task_cls()
    validated = validate_params(task_cls, params or {})
    rows = list(task.read_items(iter(items), validated))
    if len(rows) > limit or len(items) > limit:
        raise TooManyItems(max(len(rows), len(items)), limit)
    ctx = RunContext(job_id=f"predict-{uuid.uuid4().hex}", params=validated)
    results: list[dict[str, Any] | None] = [None] * len(rows)
    valid: list[tuple[int, Any]] = []
    for seq, row in enumerate(rows):
        try:
            valid.append((seq, task_cls.Input.model_validate(row)))
        except ValidationError as error:
            results[seq] = {"seq": seq, "status": "failed", "output": None, "error": describe_validation_error(error)}
    models = {role: host.get(name) for role, name in task_cls.models.items()} if valid else {}
    plugin = registry.task_plugin.get(task_cls.name)
    provenance = {"plugin": plugin.name if plugin else None, "plugin_version": plugin.version if plugin else None,
                  "models": {role: model.provenance() for role, model in models.items()}}
    for offset in range(0, len(valid), task_cls.batch_size):
        batch = valid[offset:offset + task_cls.batch_size]
        inputs = [model for _, model in batch]
        for prepared in registry.hook.prepare_items(task=task, items=inputs):
            if prepared is not None:
                if len(prepared) != len(inputs):
                    raise RuntimeError("a prepare_items hook changed the number of items")
                inputs = list(prepared)
        outputs = run_isolating(task, inputs, models, ctx)
        registry.hook.finish_items(task=task, items=inputs, outputs=outputs)
        for (seq, _), output in zip(batch, outputs, strict=True):
            result = _to_result(task, seq, output, provenance)
            results[seq] = {"seq": seq, "status": result.status, "output": result.output, "error": result.error}
    return [r for r in results if r is not None]
