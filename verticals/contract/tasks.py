"""Tasks: the :class:`Task` base a plugin subclasses, what ``run`` receives (:class:`RunContext`) and may
return (:class:`ItemError`), and the states of a job (:class:`JobStatus`)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from verticals.contract.evaluators import Evaluator
from verticals.contract.explain import Explanation
from verticals.contract.handles import ModelHandle
from verticals.contract.models import ModelSpec

__all__ = ["FINISHED_STATUSES", "DeviceClass", "ItemError", "JobStatus", "NoParams", "RunContext", "Task"]

# --------------------------------------------------------------------------------------------------- job states


class JobStatus(enum.StrEnum):
    """The state of a job. A ``str``: ``JobStatus.SUCCEEDED == "succeeded"``, and it serialises as its value."""

    QUEUED = "queued"
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # items pending, its local run was stopped (Ctrl-C, SIGTERM): `jobs resume` runs them
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"

    FINISHED = enum.nonmember(("succeeded", "partial", "failed", "cancelled"))
    """The final states (as strings: ``status in JobStatus.FINISHED`` works for members and plain strings)."""

    def is_finished(self) -> bool:
        """A final state: nothing of the job runs any more."""
        return self.value in JobStatus.FINISHED


FINISHED_STATUSES: tuple[JobStatus, ...] = (JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED,
                                            JobStatus.CANCELLED)

# -------------------------------------------------------------------------------------------------------- tasks

DeviceClass = Literal["gpu", "cpu"]

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)
ParamsT = TypeVar("ParamsT", bound=BaseModel)


class NoParams(BaseModel):
    """Job parameters of a task that takes none."""

    model_config = ConfigDict(extra="forbid")


class ItemError(Exception):
    """Return (or raise) this for one item to fail it with a message a user can act on.

    ``Task.run`` may put an ``ItemError`` in its output list in place of an
    output; the engine stores it as that item's error and carries on.
    The message is stored on the item: never put item contents (PHI) in it.
    ``code="cancelled"``: the task stopped the item because its job was cancelled (``verticals.train`` checks
    the flag between steps); the item is stored ``cancelled``, not ``failed``.
    """

    def __init__(self, message: str, *, code: str = "item_error"):
        super().__init__(message)
        self.message = message
        self.code = code


def _task_logger() -> logging.Logger:
    return logging.getLogger("verticals.task")


@dataclass
class RunContext(Generic[ParamsT]):
    """What a task may know about the job it runs in.

    ``params`` is the job's validated ``Task.Params`` (typed: a ``Task[In, Out, MyParams]`` gets a
    ``RunContext[MyParams]``); ``job_id`` is stable across chunks and retries (use it to seed anything that
    must be consistent within a job); ``logger`` is the task's logger (never log item contents at INFO or
    above); :meth:`progress` reports how far the running batch is (for items that take seconds or minutes).
    ``progress_sink`` is the engine's, not the task's: where :meth:`progress` goes (None: nowhere).
    ``explain``: the job was submitted with the option ``explain``; the engine calls :meth:`Task.explain` after
    ``run`` (``run`` may keep what the explanation needs in ``extra``; with ``explain`` off it must cost nothing).
    """

    job_id: str
    params: ParamsT
    logger: logging.Logger = field(default_factory=_task_logger)
    extra: dict[str, Any] = field(default_factory=dict)
    progress_sink: Callable[[float, float | None, str | None], None] | None = field(default=None, repr=False)
    cancel_check: Callable[[], bool] | None = field(default=None, repr=False)  # the engine's: see cancelled()
    explain: bool = False  # the job asked for explanations: Task.explain runs after run (a task may prepare for it)

    def progress(self, done: float, total: float | None = None, note: str | None = None) -> None:
        """Report progress within the item(s) this ``run`` call is working on: ``done`` of ``total`` steps
        (any unit: strategies, candidates, generation steps; ``total=None`` when unknown), and an optional
        short ``note`` such as ``"strategy observed: 14 candidates, coverage 0.61"``.

        The bar of ``verticals run``, ``verticals jobs status``, ``GET /v1/jobs/{id}`` and the dashboard show
        it: ``done / total`` of the running batch counts towards the job's progress, and the note is shown
        as is. Cheap to call often (the engine stores at most about one report per second per job, and
        always the last one); thread-safe; it never raises and never fails the batch. Outside a job (the
        predict endpoint, ``summarize``) it does nothing.

        The note is stored on the job and shown to whoever can see the job: it must NEVER contain item
        contents (text, names, module names, answers: possibly PHI). Counts, positions ("module 2/4"),
        stage names and figures only. Longer than 200 characters, it is cut.
        """
        sink = self.progress_sink
        if sink is None:
            return
        try:
            steps = float(done)
            of = None if total is None else float(total)
        except (TypeError, ValueError):
            self.logger.debug("progress(%r, %r) ignored: not numbers", done, total)
            return
        if steps != steps or steps < 0 or (of is not None and not of > 0):  # NaN, negative, total <= 0
            self.logger.debug("progress(%r, %r) ignored: done must be >= 0 and total > 0", done, total)
            return
        text = None if note is None else " ".join(str(note).split())[:200]
        try:
            sink(steps, of, text)
        except Exception:  # progress is a display: never the reason a batch fails
            self.logger.debug("progress report lost", exc_info=True)

    def cancelled(self) -> bool:
        """Whether the job was cancelled while this ``run`` call works. The engine stops between batches on its
        own; a task whose one call runs long (jailed code, a long generation) may poll this and stop early.
        Cheap to call often (the engine looks at the store at most about once a second); never raises; always
        False outside a job."""
        check = self.cancel_check
        if check is None:
            return False
        try:
            return bool(check())
        except Exception:
            self.logger.debug("cancel check failed", exc_info=True)
            return False


class Task(Generic[InT, OutT, ParamsT]):
    """Base class of every task: ``class MyTask(Task[MyInput, MyOutput, MyParams])``.

    The type parameters are the pydantic models of one item, one result and the job parameters; with them a
    type checker knows ``batch``, the outputs and ``ctx.params`` in :meth:`run` (no cast). A plain
    ``class MyTask(Task)`` works too, untyped.

    Set the class attributes:

    - ``name``: dotted name, ``<domain>.<task>`` (e.g. ``finance.sentiment``).
    - ``description``: one line shown by ``verticals tasks list``.
    - ``Input`` / ``Output``: pydantic models of one item and one result.
    - ``Params``: pydantic model of job parameters (default: :class:`NoParams`).
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
      from :mod:`verticals.contract.evaluators`); ``None``: the task cannot be scored.
    - ``operator_only``: the REST API refuses the task (403); only the CLI on
      the server runs it (``verticals.train``, which writes model versions).
    - ``golden``: a labelled file shipped with the plugin (path relative to the
      task's module) that ``verticals eval TASK`` uses when no data is given.
    - ``preview``: the fields the CLI's preview table of the first results shows, in order
      (Output fields, or Input fields where no Output field has the name); lists of
      entities/spans are shown compactly, long texts cut to the terminal. ``None``: the
      ``text_field`` (unless ``sensitive``) and the first few scalar Output fields.
    - ``expected_item_seconds``: about how long one item takes on a CPU worker; the Celery
      executor derives the queue's visibility timeout from it (docs/distributed.md).
      ``None``: 0.1 s (a model call on a batch), 60 s for a task that ``executes_code``.

    and implement :meth:`run`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Input: type[InT]
    Output: type[OutT]
    # The default applies to tasks without parameters, whose ParamsT is NoParams (a type checker cannot
    # express "NoParams unless overridden" on a generic attribute).
    Params: type[ParamsT] = NoParams  # type: ignore[assignment]
    models: ClassVar[dict[str, str]] = {}
    device: ClassVar[DeviceClass] = "cpu"
    chunk_size: ClassVar[int] = 256
    batch_size: ClassVar[int] = 64
    text_field: ClassVar[str | None] = None
    sensitive: ClassVar[bool] = False
    executes_code: ClassVar[bool] = False
    evaluator: ClassVar[Evaluator | None] = None
    operator_only: ClassVar[bool] = False
    golden: ClassVar[str | None] = None
    preview: ClassVar[tuple[str, ...] | None] = None
    expected_item_seconds: ClassVar[float | None] = None

    def run(self, batch: list[InT], models: Mapping[str, ModelHandle],
            ctx: RunContext[ParamsT]) -> Sequence[OutT | ItemError]:
        """Return one output (or ``ItemError``) per input, in the same order.

        ``models`` maps each role of ``models`` to its loaded model, loaded on first access: a
        :class:`~verticals.contract.handles.ModelHandle` that is, by its kind, an
        :class:`~verticals.contract.handles.Encoder` (``embed``), a :class:`~verticals.contract.handles.Classifier`
        (``classify``, ``labels``), a :class:`~verticals.contract.handles.Tagger` (``tag``) or a
        :class:`~verticals.contract.handles.Generator` (``generate``): narrow it with ``isinstance``.
        """
        raise NotImplementedError

    def explain(self, batch: list[InT], outputs: list[OutT], models: Mapping[str, ModelHandle],
                ctx: RunContext[ParamsT]) -> Sequence[Explanation | None]:
        """Why each output is what it is: one :class:`~verticals.contract.explain.Explanation` (or ``None``: no
        explanation for that item) per input of ``batch``, in order. Called only for jobs submitted with the
        option ``explain``, after :meth:`run`, with the succeeded items and their validated outputs.

        The engine validates each explanation (its spans against the input: see
        :func:`~verticals.contract.explain.check_explanation`) and stores it with the result; one that raises
        or breaks the contract fails its item (the batch is bisected as for ``run``). A task that does not
        override this method cannot be run with ``explain`` (the submission is refused).
        """
        raise NotImplementedError

    @classmethod
    def explains(cls) -> bool:
        """Whether the task explains its results (it overrides :meth:`explain`)."""
        return cls.explain is not Task.explain

    def models_for(self, params: ParamsT) -> Mapping[str, str | ModelSpec]:
        """The models (role -> spec name) a job with these params will use; loaded before the job starts.

        Default: all of ``models``. Roles left out are still available in
        ``run`` and load on first access, so a job that never touches one
        (e.g. testgen without its LLM strategy) never loads it.

        A role may also be a :class:`ModelSpec` built from the job's parameters (a model folder the job names
        through a ``ServerModel`` parameter, which no plugin can register in advance): the core's model host
        loads it like a registered one (once per process and folder, within the memory budget, with its
        provenance on each result); ``run`` finds it under its role like the others.
        """
        return dict(self.models)

    def read_items(self, rows: Iterable[dict[str, Any]], params: ParamsT) -> Iterator[dict[str, Any]]:
        """Turn input-file rows into items (default: one item per row).

        Override to group rows, e.g. attempt-log rows into one item per student.
        Must stream: do not hold more than needed in memory.
        """
        yield from rows

    def summarize(self, outputs: Iterable[OutT], ctx: RunContext[ParamsT]) -> dict[str, Any] | None:
        """Optional job-level summary, computed once when the job finishes.

        Receives the outputs of the succeeded items (streamed). The returned
        dict is stored as the job's ``summary.json`` artifact and printed by
        ``verticals run``. Return ``None`` for no summary.
        """
        return None

    def files(self, item: InT, output: OutT) -> dict[str, str]:
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
            "explains": cls.explains(),
            "input_schema": cls.Input.model_json_schema(),
            "output_schema": cls.Output.model_json_schema(),
            "params_schema": cls.Params.model_json_schema(),
        }
