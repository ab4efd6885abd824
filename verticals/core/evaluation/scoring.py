"""``verticals eval``: run a task over labelled data through the job engine, score it, store the run.

The run is an ordinary job (same reading, batching, bisection and provenance as ``verticals run``), marked
``{"evaluation": true}`` in its options; gold values stay in the item inputs they came with. The task's
``evaluator`` (:mod:`verticals.contract.evaluators`) turns (gold, prediction) pairs into metrics, and the run —
data hash, models' provenance, metrics, per-item records — is stored in ``eval_runs`` for ``list``, ``show``
and ``compare``. Quality gates (``--min accuracy=0.85``) compare metrics with thresholds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verticals.contract import Task
from verticals.contract.evaluators import Evaluator, Record, Scores
from verticals.core.store import Store

if TYPE_CHECKING:
    from verticals.core.jobs.service import JobService, Run

__all__ = ["EvalError", "EvalResult", "evaluate", "gate_failures", "golden_about", "golden_path", "parse_gates",
           "run_to_result", "score_job", "submit_eval"]


class EvalError(ValueError):
    """An evaluation cannot run as asked (no evaluator, no data, no gold column...)."""


@dataclass
class EvalResult:
    run_id: str | None
    task: str
    job_id: str
    data_name: str
    data_hash: str
    gold_field: str
    evaluator: dict[str, Any]
    metrics: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    records: list[list[Any]] = field(default_factory=list)
    created_at: str | None = None

    @property
    def main_metric(self) -> str:
        return self.evaluator.get("main_metric", "accuracy")

    def as_dict(self, records: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.run_id, "task": self.task, "job_id": self.job_id, "data": self.data_name,
                "data_hash": self.data_hash, "gold_field": self.gold_field, "evaluator": self.evaluator,
                "metrics": self.metrics, "details": self.details, "models": self.models,
                "created_at": self.created_at}
        if records:
            data["records"] = self.records
        return data


def golden_path(task_cls: type) -> Path | None:
    """The golden set a task ships (``Task.golden``: a path relative to the task's module), if any."""
    relative = getattr(task_cls, "golden", None)
    if not relative:
        return None
    module = sys.modules.get(task_cls.__module__)
    filename = getattr(module, "__file__", None)
    if not filename:
        return None
    return Path(filename).parent / relative


def golden_about(task_cls: type) -> str | None:
    """How a task's golden set was made, in one paragraph: the first paragraph of the ``README.md`` next to the
    golden file (a plugin documents there who wrote it, its size and labels, and that it is never trained on or
    used to choose a model). A README describing several sets has a heading per set naming its task or file
    (``# medical.deidentify golden set``): the first paragraph under that heading. None when there is no README."""
    path = golden_path(task_cls)
    readme = path.parent / "README.md" if path is not None else None
    if path is None or readme is None or not readme.is_file():
        return None
    paragraphs = [" ".join(block.split()) for block in readme.read_text(encoding="utf-8").split("\n\n")]
    names = {str(getattr(task_cls, "name", "") or ""), path.name} - {""}
    start = next((i for i, block in enumerate(paragraphs)
                  if block.startswith("#") and any(re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", block)
                                                   for name in names)), 0)
    text = next((block for block in paragraphs[start:] if block and not block.startswith("#")), None)
    return text.replace("`", "") if text else None


def _item_key(item_input: dict[str, Any] | None, fields: set[str], gold_field: str, seq: int) -> str:
    """Identifies an item across runs and files: a hash of the task's input fields, without the gold value."""
    if not item_input:
        return f"seq:{seq}"
    payload = {k: v for k, v in item_input.items() if k in fields and k != gold_field}
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _with_gold(rows: Any, gold_field: str, gold_in_input: bool = True, mapping: dict[str, str] | None = None,
               evaluator: Any = None, task: str = "") -> Iterator[dict[str, Any]]:
    """The rows, after checking (before any job exists) that there is one and, when gold is a column of the
    input (not a path, not read from the output), that the first row has it (the message lists the file's own
    columns, not the task fields a mapping added). A gold value outside the labels a classification evaluator
    declares stops the reading (the job is then discarded): it would score 0 with an empty confusion matrix."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise EvalError("there is nothing to evaluate: the data has no rows")
    if gold_in_input and "." not in gold_field and gold_field not in first:
        added = {field for field, column in (mapping or {}).items() if field != column}
        columns = [str(column) for column in first if column not in added]
        raise EvalError(f"the data has no gold column {gold_field!r}; its columns: {', '.join(columns)}. "
                        f"Name it with --gold-column COLUMN")
    labels = getattr(evaluator, "labels", None) if getattr(evaluator, "kind", "") == "classification" else None
    chained = itertools.chain([first], rows)
    if not labels or not gold_in_input:
        return chained
    return _known_labels(chained, evaluator, gold_field, tuple(labels), task)


def _known_labels(rows: Iterator[dict[str, Any]], evaluator: Any, gold_field: str, labels: tuple[str, ...],
                  task: str) -> Iterator[dict[str, Any]]:
    from verticals.core.io import InputError

    for number, row in enumerate(rows, start=1):
        gold = evaluator.gold(row, gold_field)
        if gold not in (None, "") and gold not in labels:
            case = next((label for label in labels if label.lower() == str(gold).lower()), None)
            hint = f" (labels are compared as written: use {case!r})" if case else ""
            raise InputError(f"row {number}: the gold label {str(gold)[:40]!r} in column {gold_field!r} is not one of "
                             f"{task}'s labels: {', '.join(labels)}{hint}")
        yield row


def evaluator_of(registry: Any, task: str) -> tuple[type[Task], Evaluator]:
    """The task class and its evaluator, or :class:`EvalError` naming the tasks that can be scored."""
    task_cls = registry.task(task)
    evaluator: Evaluator | None = getattr(task_cls, "evaluator", None)
    if evaluator is None:
        scored = sorted(name for name, cls in registry.tasks.items() if getattr(cls, "evaluator", None))
        raise EvalError(f"{task} declares no evaluator, so it cannot be scored; tasks that can: "
                        f"{', '.join(scored) or 'none'}")
    return task_cls, evaluator


def items_hash(items: list[dict[str, Any]]) -> str:
    """The data hash of items given as JSON (the API and SDK): SHA-256 of their canonical JSON lines."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item, sort_keys=True, default=str).encode() + b"\n")
    return digest.hexdigest()


def submit_eval(service: JobService, task: str, rows: Any, *, gold_field: str, data_name: str,
                data_hash: str, params: dict[str, Any] | None = None, mapping: dict[str, str] | None = None,
                tenant: str | None = None, explain: bool = False, run: Run | None = None, items: int | None = None,
                on_stored: Callable[[str], None] | None = None,
                on_progress: Callable[[int], None] | None = None) -> str:
    """Store an evaluation job (an ordinary job whose options say how to score it) through the job ``service``;
    return its id. ``rows`` are mapped already (``mapping`` is recorded in the job's options). ``run``: submit
    and start it as :meth:`JobService.submit_and_start` does (the executor asked first, the tenant admitted
    for ``items``; ``wait``: run it and wait; ``on_stored(job_id)`` once it is stored); None: store it only."""
    evaluation = {"gold_field": gold_field, "data_name": data_name, "data_hash": data_hash}
    _task_cls, evaluator = evaluator_of(service.registry, task)
    # the parameters the evaluator needs (Evaluator.job_params), under those the caller gives
    params = {**(getattr(evaluator, "job_params", None) or {}), **(params or {})}
    checked = _with_gold(rows, gold_field, gold_in_input=not getattr(evaluator, "gold_from_output", False),
                         mapping=mapping, evaluator=evaluator, task=task)
    options = {"evaluation": evaluation, "field_map": mapping or {}}
    if run is None:
        return service.submit(task, checked, params=params or {}, options=options, tenant=tenant, explain=explain)
    return service.submit_and_start(task, checked, run=run, items=items, on_stored=on_stored,
                                    on_progress=on_progress, params=params or {}, options=options, tenant=tenant,
                                    explain=explain).job_id


def score_job(store: Store, registry: Any, job_id: str, save: bool = True) -> EvalResult:
    """Score a finished evaluation job and store the run (once: a second call returns the stored run)."""
    from verticals.core.evaluation.runs import find_run_for_job, save_run

    job = store.job(job_id)
    evaluation = (job.options or {}).get("evaluation")
    if not isinstance(evaluation, dict):
        raise EvalError(f"job {job_id} is not an evaluation")
    existing = find_run_for_job(store, job_id)
    if existing is not None:
        return run_to_result(existing)
    task_cls, evaluator = evaluator_of(registry, job.task)
    gold_field = evaluation["gold_field"]
    records, models = _records(store, job_id, evaluator, gold_field, set(task_cls.Input.model_fields))
    scores: Scores = evaluator.score(records)
    details = {"per_class": scores.per_class, "confusion": scores.confusion, "wrong": scores.wrong[:5000]}
    stored_records = [[r.key, r.seq, evaluator.compact(r.gold), evaluator.compact(r.predicted), r.failed]
                      for r in records]
    result = EvalResult(None, job.task, job_id, evaluation["data_name"], evaluation["data_hash"], gold_field,
                        evaluator.describe(), scores.metrics, details, models, stored_records)
    if save:
        result.run_id = save_run(store, task=job.task, job_id=job_id, data_name=result.data_name,
                                 data_hash=result.data_hash, n_items=len(records), gold_field=gold_field,
                                 evaluator=result.evaluator, metrics=result.metrics, details=details,
                                 models=models, records=stored_records, tenant_id=job.tenant_id)
    return result


def evaluate(task: str, data: str | Path | None = None, *, gold: str | None = None,
             fields: dict[str, str] | None = None, text_column: str | None = None, params: dict[str, Any] | None = None,
             overrides: dict[str, str] | None = None, fmt: str | None = None, store: Store | None = None,
             registry: Any = None, save: bool = True, tenant: str | None = None,
             on_progress: Callable[[int], None] | None = None, service: JobService | None = None,
             items: list[dict[str, Any]] | None = None, explain: bool = False) -> EvalResult:
    """Run ``task`` over labelled ``data`` (default: the task's golden set) or ``items``, score it, store the run.

    ``gold`` names the input column (or ``a.*.b`` path) holding the gold value (default: the evaluator's);
    ``fields``/``text_column`` map columns onto task fields as ``verticals run`` does (the one rule:
    :func:`~verticals.core.jobs.service.field_map`). The job is submitted, run and waited for through the job
    ``service`` (the composition root's: :func:`verticals.workers.job_service`, Celery when a broker is set).
    Without one, or with ``overrides`` (model spec names to paths or hub ids for this run only, like
    ``VERTICALS_MODELS``: they hold in this process's model host), a service over a local executor in this
    process (:func:`local_service`) on the service's store and registry, else ``store`` and ``registry``
    (default: the configured ones). ``explain``: the job stores each result's
    explanation (the job option ``explain``), which ``verticals eval show`` prints for the wrong items.
    """
    from verticals.core.io import file_sha256, map_fields, read_rows
    from verticals.core.jobs.service import field_map

    if service is None or overrides:  # overrides hold in this process's model host: the evaluation runs here
        service = local_service(service.store if service else store, service.registry if service else registry,
                                overrides)
    task_cls, evaluator = evaluator_of(service.registry, task)
    gold_field = gold or evaluator.gold_field
    try:
        mapping = field_map(task_cls, text_column, fields, text_option="--text-column",
                            field_option="--field FIELD=COLUMN")
    except ValueError as error:  # a JobError: in the evaluation's terms
        raise EvalError(str(error)) from None
    if items is not None:
        source: Any = items
        data_name, data_hash = f"{len(items)} items", items_hash(items)
    else:
        path = Path(data) if data is not None else golden_path(task_cls)
        if path is None:
            raise EvalError(f"{task} ships no golden set: give a labelled data file")
        if not path.is_file():
            raise EvalError(f"no such file: {path}")
        source = read_rows(path, fmt)
        data_name, data_hash = ("golden:" + path.name if data is None else str(data)), file_sha256(path)
    rows = map_fields(source, mapping, required=task_cls.text_field)
    job_id: str | None = None

    def stored(job: str) -> None:
        nonlocal job_id
        job_id = job

    try:
        submit_eval(service, task, rows, gold_field=gold_field, data_name=data_name, data_hash=data_hash,
                    params=params, mapping=mapping, tenant=tenant, explain=explain, run="wait", on_stored=stored,
                    on_progress=on_progress)
        assert job_id is not None
        return score_job(service.store, service.registry, job_id, save=save)
    except KeyboardInterrupt:  # stopped (Ctrl-C, SIGTERM): nothing is scored, and a half-run evaluation is not kept
        if job_id is not None and not service.executor.remote:
            from verticals.core.evaluation.runs import find_run_for_job
            from verticals.core.jobs.engine import discard_job

            if find_run_for_job(service.store, job_id) is None:  # stopped before its run was stored
                discard_job(service.store, job_id)
        raise


def local_service(store: Store | None = None, registry: Any = None,
                  overrides: dict[str, str] | None = None) -> JobService:
    """A job service over a local executor (jobs run in this process) whose model host takes ``overrides`` over
    ``VERTICALS_MODELS``: what an evaluation without a root's service runs on (``models promote --min``, the
    runtime gate, scripts)."""
    from verticals.config import settings
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.jobs.service import JobService
    from verticals.core.models.host import ModelHost, parse_overrides
    from verticals.core.store import open_store

    if registry is None:
        from verticals.registry import get_registry

        registry = get_registry()
    store = store or open_store()
    host = ModelHost(registry.models, overrides={**parse_overrides(settings().models), **(overrides or {})})
    return JobService(store, registry, LocalExecutor(store, registry, host), host=host)


def _records(store: Store, job_id: str, evaluator: Evaluator, gold_field: str, fields: set[str],
             ) -> tuple[list[Record], list[dict[str, Any]]]:
    records: list[Record] = []
    models: dict[str, dict[str, Any]] = {}
    for item in store.iter_items(job_id):
        item_input = item.input or {}
        failed = item.status != "succeeded"
        gold_source = (item.output or {}) if getattr(evaluator, "gold_from_output", False) else item_input
        records.append(Record(_item_key(item.input, fields, gold_field, item.seq), item.seq,
                              evaluator.gold(gold_source, gold_field),
                              None if failed else evaluator.predicted(item.output), failed))
        for role, source in ((item.provenance or {}).get("models") or {}).items():
            if isinstance(source, dict):
                models.setdefault(json.dumps(source, sort_keys=True), {"role": role, **source})
    return records, list(models.values())


def run_to_result(run: Any) -> EvalResult:
    """A stored :class:`verticals.core.evaluation.runs.EvalRun` as an :class:`EvalResult`."""
    return EvalResult(run.id, run.task, run.job_id, run.data_name, run.data_hash, run.gold_field, run.evaluator,
                      run.metrics, run.details, run.models, run.records,
                      run.created_at.isoformat() if run.created_at else None)


def parse_gates(gates: list[str]) -> dict[str, float]:
    """``["accuracy=0.85", "macro_f1>=0.8"]`` -> ``{"accuracy": 0.85, "macro_f1": 0.8}`` (minimum values)."""
    parsed: dict[str, float] = {}
    for gate in gates:
        name, sep, value = gate.replace(">=", "=").partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            parsed[name.strip()] = float(value)
        except ValueError:
            raise EvalError(f"bad gate {gate!r}: expected METRIC=MINIMUM, e.g. --min accuracy=0.85") from None
    return parsed


def gate_failures(metrics: dict[str, Any], gates: dict[str, float]) -> list[str]:
    """The gates a run fails, as readable lines (an unknown metric fails too, saying which exist)."""
    failures = []
    for name, minimum in gates.items():
        value = metrics.get(name)
        if not isinstance(value, int | float) or value != value:  # missing or NaN
            failures.append(f"{name}: not measured by this evaluator (metrics: {', '.join(sorted(metrics))})")
        elif value < minimum:
            failures.append(f"{name} = {value:.4f} is below the minimum {minimum:g}")
    return failures


def compare(a: EvalResult, b: EvalResult) -> dict[str, Any]:
    """Metric deltas (b - a) and the items whose prediction changed, matched by item key."""
    deltas = {}
    for name in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = a.metrics.get(name), b.metrics.get(name)
        if isinstance(va, int | float) and isinstance(vb, int | float):
            deltas[name] = {"a": va, "b": vb, "delta": round(vb - va, 4)}
    by_key = {record[0]: record for record in a.records}
    flipped = []
    for key, seq, gold, predicted, _failed in b.records:
        before = by_key.get(key)
        if before is not None and before[3] != predicted:
            flipped.append({"key": key, "seq_a": before[1], "seq_b": seq, "gold": gold, "a": before[3],
                            "b": predicted, "fixed": predicted == gold, "broken": before[3] == gold})
    return {"a": a.run_id, "b": b.run_id, "same_data": a.data_hash == b.data_hash, "metrics": deltas,
            "flipped": flipped, "matched": sum(1 for r in b.records if r[0] in by_key)}
