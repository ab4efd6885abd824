"""The item pipeline: one batch of validated inputs through the plugin hooks and ``Task.run``.

Every path that runs items shares it: job chunks (:func:`verticals.core.jobs.engine.run_chunk`) and the
synchronous predict endpoint. ``prepare_items`` hooks (a chain), ``Task.run`` with bisection (only the items
that fail on their own fail), ``finish_items`` hooks, validated results with provenance, and for a job with the
option ``explain`` the task's explanations (``Task.explain``, bisected and validated the same way).

A hook implementation that raises (or breaks its contract) fails every item of the batch with
``plugin NAME failed in HOOK: ErrorType: message`` (no message for a ``sensitive`` task); the caller goes on
with the next batch. No bisection: the hook, not an item, failed, and a batch a redaction hook did not
finish must not be stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from verticals.contract import (
    ExplanationError,
    ItemError,
    ModelHandle,
    ModelRoles,
    ModelSpec,
    RunContext,
    Task,
    check_explanation,
)
from verticals.core.models.host import ModelHost
from verticals.core.store import ItemResult
from verticals.registry import HookError, Registry

log = logging.getLogger(__name__)


def describe_validation_error(error: ValidationError) -> str:
    """A validation error as 'field: message' lines, never quoting the input value (it may be PHI)."""
    parts = []
    for problem in error.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in problem.get("loc", ())) or "item"
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "invalid input: " + "; ".join(parts)


class LazyModels(ModelRoles):
    """A task's models by role, loaded through the host on first access: what ``Task.run`` gets as ``models``
    (each a :class:`~verticals.contract.handles.ModelHandle`, by kind an ``Encoder``, ``Classifier``...).

    Provenance lists the models actually used, so a result never claims a
    model that did not touch it. A role names a registered model, or is the :class:`ModelSpec` a job's
    parameters built (``Task.models_for``).
    """

    def __init__(self, host: ModelHost, roles: Mapping[str, str | ModelSpec]):
        self.host = host
        self.roles = dict(roles)
        self.loaded: dict[str, ModelHandle] = {}

    def __getitem__(self, role: str) -> ModelHandle:
        if role not in self.roles:
            raise KeyError(f"no model role {role!r}; the task declares {sorted(self.roles)}")
        if role not in self.loaded:
            self.loaded[role] = self.host.get(self.roles[role])
        return self.loaded[role]

    def __contains__(self, role: object) -> bool:
        return role in self.roles

    def __iter__(self) -> Iterator[str]:
        return iter(self.roles)

    def __len__(self) -> int:
        return len(self.roles)

    def spec(self, role: str) -> ModelSpec:
        if role not in self.roles:
            raise KeyError(f"no model role {role!r}; the task declares {sorted(self.roles)}")
        named = self.roles[role]
        return named if isinstance(named, ModelSpec) else self.host.spec(named)

    def provenance(self) -> dict[str, Any]:
        return {role: model.provenance() for role, model in self.loaded.items()}


def _describe_exception(error: BaseException, sensitive: bool) -> str:
    if isinstance(error, ItemError):
        return error.message
    if sensitive:
        return f"{type(error).__name__} (message withheld: this task handles sensitive text)"
    return f"{type(error).__name__}: {error}"[:2000]


def run_isolating(task: Task, batch: list[BaseModel], models: Mapping[str, Any], ctx: RunContext) -> list[Any]:
    """Run a batch; when it raises, bisect so that only the items that fail on their own fail."""
    try:
        outputs = list(task.run(batch, models, ctx))
        if len(outputs) != len(batch):
            raise RuntimeError(f"{task.name}.run returned {len(outputs)} outputs for {len(batch)} inputs")
        return outputs
    except Exception as error:
        if len(batch) == 1:
            if not isinstance(error, ItemError):
                log.debug("item failed in %s", task.name, exc_info=not task.sensitive)
            return [ItemError(_describe_exception(error, task.sensitive), code="exception")]
        middle = len(batch) // 2
        return (run_isolating(task, batch[:middle], models, ctx)
                + run_isolating(task, batch[middle:], models, ctx))


def explain_isolating(task: Task, batch: list[BaseModel], outputs: list[BaseModel], models: Mapping[str, Any],
                      ctx: RunContext) -> list[Any]:
    """``Task.explain`` over a batch; when it raises, bisect so that only the items whose explanation fails on
    their own fail (an :class:`ItemError` in place of their explanation)."""
    try:
        explanations = list(task.explain(batch, outputs, models, ctx))
        if len(explanations) != len(batch):
            raise RuntimeError(f"{task.name}.explain returned {len(explanations)} explanations for {len(batch)} "
                               "inputs")
        return explanations
    except Exception as error:
        if len(batch) == 1:
            log.debug("explanation failed in %s", task.name, exc_info=not task.sensitive)
            return [ItemError("explanation failed: " + _describe_exception(error, task.sensitive), code="exception")]
        middle = len(batch) // 2
        return (explain_isolating(task, batch[:middle], outputs[:middle], models, ctx)
                + explain_isolating(task, batch[middle:], outputs[middle:], models, ctx))


def _explain(task: Task, inputs: list[BaseModel], results: list[ItemResult], validated: list[BaseModel | None],
             models: Mapping[str, Any], ctx: RunContext) -> None:
    """The job option ``explain``: each succeeded result gets its task's explanation, validated against its
    input (:func:`verticals.contract.check_explanation`); an explanation that fails or breaks the contract
    fails its item."""
    done = [(index, result) for index, result in enumerate(results) if result.status == "succeeded"]
    if not done:
        return
    batch = [inputs[index] for index, _ in done]
    outputs = [model for index, _ in done if (model := validated[index]) is not None]  # as validated: Task.Output
    assert len(outputs) == len(done)  # a succeeded result always has its validated output
    for (index, result), item, explanation in zip(done, batch, explain_isolating(task, batch, outputs, models, ctx),
                                                   strict=True):
        if isinstance(explanation, ItemError):
            results[index] = ItemResult(result.seq, "failed", error=explanation.message, provenance=result.provenance)
            continue
        if explanation is None:
            continue
        try:
            checked = check_explanation(explanation, item, task.text_field)
        except ExplanationError as error:
            results[index] = ItemResult(result.seq, "failed", error=f"invalid explanation: {error}",
                                        provenance=result.provenance)
            continue
        result.explanation = checked.model_dump(mode="json", exclude_none=True)


def _checked(task: Task, seq: int, output: Any, provenance: dict[str, Any]) -> tuple[ItemResult, BaseModel | None]:
    """The item's result, and its output validated as ``Task.Output`` (None unless it succeeded)."""
    if isinstance(output, ItemError):
        status = "cancelled" if output.code == "cancelled" else "failed"  # stopped for its job's cancel
        return ItemResult(seq, status, error=output.message, provenance=provenance), None
    try:
        model = task.Output.model_validate(output.model_dump() if isinstance(output, BaseModel) else output)
    except ValidationError as error:
        message = describe_validation_error(error).replace("invalid input", "invalid output")
        return ItemResult(seq, "failed", error=message, provenance=provenance), None
    return ItemResult(seq, "succeeded", output=model.model_dump(mode="json"), provenance=provenance), model


def process_batch(registry: Registry, task: Task, seqs: list[int], inputs: list[BaseModel], models: LazyModels,
                  ctx: RunContext) -> list[ItemResult]:
    """One batch through the pipeline every path shares (jobs and the synchronous predict endpoint):
    ``prepare_items`` hooks, ``Task.run`` with bisection, ``finish_items`` hooks, validated results with provenance.
    """
    plugin = registry.task_plugin.get(task.name)
    provenance: dict[str, Any] = {"plugin": plugin.name if plugin else None,
                                  "plugin_version": plugin.version if plugin else None}
    try:
        inputs = registry.prepare_items(task, inputs)
        outputs = run_isolating(task, inputs, models, ctx)
        registry.finish_items(task, inputs, outputs)
    except HookError as error:
        log.warning("batch of %d items of %s failed: plugin %s failed in %s (%s)", len(seqs), task.name,
                    error.plugin, error.hook, type(error.error).__name__ if error.error else "contract")
        log.debug("plugin %s in %s", error.plugin, error.hook, exc_info=not task.sensitive)
        message = error.describe(task.sensitive)
        provenance["models"] = models.provenance()
        return [ItemResult(seq, "failed", error=message, provenance=provenance) for seq in seqs]
    checked = [_checked(task, seq, output, provenance) for seq, output in zip(seqs, outputs, strict=True)]
    results = [result for result, _ in checked]
    if ctx.explain:
        _explain(task, inputs, results, [model for _, model in checked], models, ctx)
    provenance["models"] = models.provenance()  # after explain: a model only the explanation used is named too
    return results
