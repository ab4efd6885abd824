"""The Task API: what a domain plugin implements.

A :class:`Task` turns a batch of validated input items into one output per
item, in the same order. The engine (``verticals.core.jobs``) validates
inputs, chunks and batches them, bisects a batch that raises so that only the
bad item fails, validates outputs and stores them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from verticals.core.models import LoadedModel

DeviceClass = Literal["gpu", "cpu"]


class NoParams(BaseModel):
    """Job parameters of a task that takes none."""

    model_config = ConfigDict(extra="forbid")


class ItemError(Exception):
    """Return (or raise) this for one item to fail it with a message a user can act on.

    ``Task.run`` may put an ``ItemError`` in its output list in place of an
    output; the engine stores it as that item's error and carries on.
    The message is stored on the item: never put item contents (PHI) in it.
    """

    def __init__(self, message: str, *, code: str = "item_error"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class RunContext:
    """What a task may know about the job it runs in.

    ``params`` is the job's validated ``Task.Params``; ``job_id`` is stable
    across chunks and retries (use it to seed anything that must be
    consistent within a job); ``logger`` is the task's logger (never log item
    contents at INFO or above).
    """

    job_id: str
    params: BaseModel
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("verticals.task"))
    extra: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base class of every task.

    Subclass it and set the class attributes:

    - ``name``: dotted name, ``<domain>.<task>`` (e.g. ``finance.sentiment``).
    - ``description``: one line shown by ``verticals tasks list``.
    - ``Input`` / ``Output``: pydantic models of one item and one result.
    - ``Params``: pydantic model of job parameters (default: none).
    - ``models``: role -> ModelSpec name, e.g. ``{"classifier": "finance.sentiment"}``.
      The engine loads them through the model host and passes them to ``run``.
    - ``device``: ``"gpu"`` or ``"cpu"``: the worker queue the task's chunks go to.
    - ``chunk_size``: items per chunk (the unit of work sent to a worker and
      of re-runs); ``batch_size``: items per ``run`` call (cancellation is
      checked between batches).
    - ``text_field``: the Input field that ``--text-column`` maps to.
    - ``sensitive``: inputs may hold PHI/PII. The engine then stores only the
      exception *type* of an unexpected failure (never its message, which may
      quote the input) and never logs item contents at any level.
    - ``executes_code``: the task runs code that comes from its inputs or
      parameters (e.g. it imports a submitted module). The REST API refuses
      such a task unless an operator granted the API key code execution
      (``verticals keys create --allow-code-execution``); the CLI runs it as
      the local user, as any other task.
    - ``evaluator``: how ``verticals eval`` scores the task against gold labels
      (``ClassificationEvaluator``, ``SpanEvaluator``, ``ProbabilityEvaluator``
      from :mod:`verticals.core.evaluators`); ``None``: the task cannot be scored.
    - ``operator_only``: the REST API refuses the task (403); only the CLI on
      the server runs it (``verticals.train``, which writes model versions).
    - ``golden``: a labelled file shipped with the plugin (path relative to the
      task's module) that ``verticals eval TASK`` uses when no data is given.

    and implement :meth:`run`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Input: ClassVar[type[BaseModel]]
    Output: ClassVar[type[BaseModel]]
    Params: ClassVar[type[BaseModel]] = NoParams
    models: ClassVar[dict[str, str]] = {}
    device: ClassVar[DeviceClass] = "cpu"
    chunk_size: ClassVar[int] = 256
    batch_size: ClassVar[int] = 64
    text_field: ClassVar[str | None] = None
    sensitive: ClassVar[bool] = False
    executes_code: ClassVar[bool] = False
    evaluator: ClassVar[Any] = None
    operator_only: ClassVar[bool] = False
    golden: ClassVar[str | None] = None

    def run(
        self, batch: list[BaseModel], models: dict[str, LoadedModel], ctx: RunContext
    ) -> list[BaseModel | ItemError]:
        """Return one output (or ``ItemError``) per input, in the same order."""
        raise NotImplementedError

    def models_for(self, params: BaseModel) -> dict[str, str]:
        """The models (role -> spec name) a job with these params will use; loaded before the job starts.

        Default: all of ``models``. Roles left out are still available in
        ``run`` and load on first access, so a job that never touches one
        (e.g. testgen without its LLM strategy) never loads it.
        """
        return dict(self.models)

    def read_items(self, rows: Iterable[dict[str, Any]], params: BaseModel) -> Iterator[dict[str, Any]]:
        """Turn input-file rows into items (default: one item per row).

        Override to group rows, e.g. attempt-log rows into one item per student.
        Must stream: do not hold more than needed in memory.
        """
        yield from rows

    def summarize(self, outputs: Iterable[BaseModel], ctx: RunContext) -> dict[str, Any] | None:
        """Optional job-level summary, computed once when the job finishes.

        Receives the outputs of the succeeded items (streamed). The returned
        dict is stored as the job's ``summary.json`` artifact and printed by
        ``verticals run``. Return ``None`` for no summary.
        """
        return None

    def files(self, item: BaseModel, output: BaseModel) -> dict[str, str]:
        """Optional files to write for one result when exporting to a folder.

        ``verticals run TASK IN -o out_dir/`` writes ``results.jsonl`` and, for
        each succeeded item, the files this returns (relative name -> text),
        e.g. one generated test file per module.
        """
        return {}

    @classmethod
    def info(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "description": cls.description,
            "device": cls.device,
            "chunk_size": cls.chunk_size,
            "batch_size": cls.batch_size,
            "models": dict(cls.models),
            "executes_code": cls.executes_code,
            "input_schema": cls.Input.model_json_schema(),
            "output_schema": cls.Output.model_json_schema(),
            "params_schema": cls.Params.model_json_schema(),
        }
