"""The job service: every rule of a job's lifecycle, once, for every front end.

The CLI, the REST API and the SDK (in-process mode) are thin adapters over :class:`JobService`:
they translate arguments in and errors out (each error's HTTP status and exit code: the one table of
:mod:`verticals.core.errors`), nothing more. Where chunks run is the :class:`~verticals.core.jobs.executor.Executor`'s
business (local or Celery); what a job *means* is decided here:

- **submit and start** (:meth:`JobService.submit_and_start`): the executor asked first (a broker that is down
  refuses before anything is stored), the tenant admitted (quotas, when the service has an admission), one
  field-mapping rule (:func:`field_map`), the task's input read once, the job stored, then handed over (or run
  and waited for, or detached); a new job the executor refuses before anything of it ran is withdrawn.
- **cancel**: the job is flagged (running chunks stop at their next batch) and the items of every chunk
  not started yet are cancelled at once, on every executor; the executor then revokes those chunks
  (Celery: their queued messages). A job with nothing left running is finished.
- **retry**: failed items of a *finished* job run again; a job still queued or running is a conflict.
- **resume**: the pending items of a stored job run (after an interruption, a ``--detach``, a lost broker);
  a finished job with nothing pending is left as it is.
- **finish**: a job is finished where its last items stop being pending (``run_chunk``) and, by the service
  (:meth:`JobService._finish`), after every wait and cancel: executors never finish a job.
- **evaluate**: an evaluation job (:mod:`verticals.core.evaluation.scoring`) submitted, run on this service's
  executor and scored.
- **export**: :mod:`verticals.core.jobs.export` (CSV, JSONL, Parquet, folders with ``Task.files``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from verticals.contract import Task
from verticals.core import tracing
from verticals.core.io import map_fields
from verticals.core.jobs import engine as _jobs
from verticals.core.jobs.engine import EXPLAIN, FINISHED, JobError, discard_job, finish_if_done, submit_job
from verticals.core.jobs.executor import Executor, ExecutorUnavailable, ProgressCallback
from verticals.core.models.host import ModelHost
from verticals.core.store import Store

if TYPE_CHECKING:
    from verticals.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["Admission", "ExecutorUnavailable", "JobConflict", "JobError", "JobNotFound", "JobService", "Submitted",
           "chunk_progress", "field_map", "resumable"]

UNFINISHED = ("queued", "running", "interrupted")


class JobNotFound(JobError, KeyError):
    """No job has this id (or unique id prefix). HTTP: 404. Also a ``KeyError``, as ``Store.job`` raises."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such job"


class JobConflict(JobError):
    """The job is not in a state that allows this (retry of a running job, delete of a queued one...).
    HTTP: 409."""


class Admission(Protocol):
    """Who may store one more job: ``admit(tenant, items)`` checks the tenant's quotas and holds its lock while
    the body stores the job (:class:`verticals.tenancy.quotas.Quotas`, which the API's root hands in; the core
    does not import it). Raises the refusal (a 429 error) instead of entering."""

    def admit(self, tenant: str, items: int = 0) -> AbstractContextManager[None]: ...


Run = Literal["start", "wait", "detach"]
"""How a submitted or retried job runs: ``start`` hands its chunks to the executor and returns at once (API,
SDK); ``wait`` runs them (here, or on workers) and waits for the job (CLI); ``detach`` hands them over only to
an executor whose chunks run elsewhere, else leaves the job stored for a later resume (``--detach``)."""


@dataclass
class Submitted:
    """What :meth:`JobService.submit_and_start` did: the job's id, the chunks handed over (``start``,
    ``detach``), the job's status when it returned (``wait``: the final status)."""

    job_id: str
    chunks: int = 0
    status: str = "queued"


def field_map(task_cls: type[Task], text_column: str | None = None,
              fields: Mapping[str, str] | Iterable[str] | None = None, *,
              text_option: str = "text_column", field_option: str = "FIELD=COLUMN") -> dict[str, str]:
    """Task field -> input column: the one rule for ``--text-column`` / ``--field`` (CLI), ``text_column``
    (API, SDK).

    ``fields``: a mapping, or ``FIELD=COLUMN`` strings. ``text_column`` maps the task's text field; a task
    without a single text field refuses it. Every mapped field must be a field of the task's input.
    ``text_option`` / ``field_option``: how the front end spells the options, for the messages.
    Raises :class:`JobError`.
    """
    mapping: dict[str, str] = {}
    pairs: Iterable[tuple[str, str]]
    if fields is None:
        pairs = ()
    elif isinstance(fields, Mapping):
        pairs = fields.items()
    else:
        pairs = [_pair(text, field_option) for text in fields]
    known = task_cls.Input.model_fields
    for name, column in pairs:
        if name not in known:
            raise JobError(f"{task_cls.name} has no input field {name!r} to map a column to; its fields: "
                           f"{', '.join(known) or 'none'}")
        mapping[name] = column
    if text_column:
        if not task_cls.text_field:
            raise JobError(f"{task_cls.name} has no single text field, so {text_option} cannot be used; map columns "
                           f"to its fields ({', '.join(known) or 'none'}) with {field_option}")
        mapping[task_cls.text_field] = text_column
    return mapping


def _pair(text: str, option: str) -> tuple[str, str]:
    name, sep, column = str(text).partition("=")
    if not sep or not name.strip() or not column:
        raise JobError(f"bad field mapping {text!r}: expected {option}")
    return name.strip(), column


class JobService:
    """Submit, run, wait for, cancel, retry, resume, read, export and delete jobs.

    ``executor``: where chunks run (see :func:`verticals.workers.job_service`, which picks it from the
    settings). ``executor_factory`` builds it on first use instead, so that reading results or cancelling
    works even where no executor can be built; a failure then becomes :class:`ExecutorUnavailable`.
    """

    def __init__(self, store: Store, registry: Registry, executor: Executor | None = None,
                 host: ModelHost | None = None, executor_factory: Callable[[], Executor] | None = None,
                 admission: Admission | None = None):
        self.store = store
        self.registry = registry
        self.host = host
        self.admission = admission  # quotas of the tenants' jobs (the API's); None: every job is admitted
        self._executor = executor
        self._executor_factory = executor_factory
        self._executor_problem: str | None = None

    def use_executor(self, executor: Executor | None, problem: str | None = None) -> None:
        """Run jobs on ``executor`` from now on (the API's runner swaps its holding executor for the real one at
        start); ``None`` with ``problem``: jobs cannot be run here, every hand-over raises
        :class:`ExecutorUnavailable` saying ``problem``."""
        self._executor, self._executor_factory, self._executor_problem = executor, None, problem

    # -- the executor -----------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        """The executor; :class:`ExecutorUnavailable` when none is given or it cannot be built."""
        if self._executor is None:
            if self._executor_problem is None and self._executor_factory is not None:
                try:
                    self._executor = self._executor_factory()
                except ExecutorUnavailable as error:
                    self._executor_problem = str(error)
                except Exception as error:  # executor module or broker library missing, bad settings...
                    self._executor_problem = f"the executor cannot be used ({type(error).__name__}: {error})"
            if self._executor is None:
                raise ExecutorUnavailable(self._executor_problem or "no executor: jobs cannot be run here")
        return self._executor

    def check_ready(self) -> None:
        """Raise :class:`ExecutorUnavailable` when jobs cannot be run now (no executor, the broker is down).
        Every front end that submits a job to run it asks first, so that a job is not stored only to wait
        ``queued`` for an executor that cannot take it."""
        self.executor.check()

    @property
    def has_executor(self) -> bool:
        """Whether an executor is there (built now if needed); never raises."""
        return self._executor_if_any() is not None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()

    # -- reading ------------------------------------------------------------------------------------
    def job(self, job_id: str) -> Any:
        """The stored job (``job_id`` or a unique prefix of it); :class:`JobNotFound` otherwise."""
        try:
            return self.store.job(job_id)
        except JobNotFound:
            raise
        except KeyError as error:
            raise JobNotFound(error.args[0] if error.args else f"no job {job_id!r}") from None

    def summary(self, job_id: str) -> dict[str, Any]:
        """Status, counts, timings, parameters (secrets masked): never item contents."""
        return self.store.summary(self.job(job_id).id)

    def list(self, limit: int = 20, offset: int = 0, tenant: str | None = None, *,
             statuses: Iterable[str] = (), task: str | None = None) -> list[dict[str, Any]]:
        """The summaries of the newest jobs, newest first: ``limit`` of them after skipping ``offset``, counting
        only the jobs that match (``tenant``: that tenant's; ``statuses``: one of these statuses; ``task``: that
        task's)."""
        wanted = set(statuses)
        if not wanted and task is None:
            return [self.store.summary(job.id) for job in self.store.list_jobs(limit, offset, tenant=tenant)]
        found: list[dict[str, Any]] = []
        skipped, page_start, page = 0, 0, 200
        while len(found) < limit:
            jobs = self.store.list_jobs(page, page_start, tenant=tenant)
            for job in jobs:
                if task is not None and job.task != task:
                    continue
                summary = self.store.summary(job.id)
                if wanted and summary["status"] not in wanted:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(summary)
                if len(found) >= limit:
                    break
            if len(jobs) < page:
                break
            page_start += page
        return found

    def results(self, job_id: str, status: str | None = None, include_inputs: bool = True, offset: int = 0,
                limit: int | None = None, provenance: bool = False) -> Iterator[dict[str, Any]]:
        """Result rows in input order (seq, status, output, error; ``explanation`` for an item explained (the
        job option ``explain``); ``input`` with ``include_inputs``; ``provenance`` when asked), streamed from the
        store."""
        found = self.job(job_id).id

        def rows() -> Iterator[dict[str, Any]]:
            for item in self.store.iter_items(found, status=status, offset=offset, limit=limit):
                row = {"seq": item.seq, "status": item.status, "output": item.output, "error": item.error}
                if item.explanation is not None:  # the job option explain
                    row["explanation"] = item.explanation
                if provenance:
                    row["provenance"] = item.provenance
                if include_inputs:
                    row["input"] = item.input
                yield row

        return rows()

    def queue_status(self, job_id: str) -> dict[str, Any]:
        """Where the job's chunks are: ``chunks``, ``done`` (nothing pending), ``running`` (started, items
        pending), ``waiting`` (not started), plus what the executor knows (Celery: ``queue``, ``priority``,
        ``broker_backlog``). Without an executor, the chunk counts alone."""
        found = self.job(job_id).id
        info: dict[str, Any] = chunk_progress(self.store, found)
        executor = self._executor_if_any()
        if executor is not None:
            info.update(executor.queue_status(found))
        return info

    def export(self, job_id: str, dest: str | Path, include_inputs: bool | None = None, fmt: str | None = None) -> int:
        """Write the results to ``dest`` (.csv, .jsonl, .parquet or a folder); return the rows written.
        Inputs are left out of sensitive tasks' exports unless ``include_inputs=True``."""
        from verticals.core.jobs.export import export_job

        return export_job(self.store, self.registry, self.job(job_id).id, dest, include_inputs, fmt)

    def stream_export(self, job_id: str, fmt: str, include_inputs: bool | None = None) -> Iterator[bytes]:
        """The results as CSV or JSONL bytes, produced as they are read (an HTTP response), by the same export
        as :meth:`export`."""
        from verticals.core.jobs.export import stream_export

        return stream_export(self.store, self.registry, self.job(job_id).id, fmt, include_inputs)

    # -- submitting ---------------------------------------------------------------------------------
    def submit(self, task: str, rows: Iterable[dict[str, Any]], *, params: dict[str, Any] | None = None,
               text_column: str | None = None, fields: Mapping[str, str] | Iterable[str] | None = None,
               options: dict[str, Any] | None = None, chunk_size: int | None = None, tenant: str | None = None,
               allow_empty: bool = True, file_rows: bool = False, pick: str | None = None,
               text_option: str = "text_column", field_option: str = "FIELD=COLUMN", explain: bool = False) -> str:
        """Store a job over ``rows``; return its id. Nothing runs yet (:meth:`start`, :meth:`execute`).

        ``text_column`` / ``fields``: see :func:`field_map`; the mapping is stored in the job's options
        (its copies are exported once). ``file_rows``: the rows are a file's records: when the task's
        text field is missing and they have a single column, that column is used (``pick`` names the
        option that picks a column, for the message; ``text_option`` / ``field_option``: how the front end
        spells the mapping options, as :func:`field_map` takes them). ``explain``: store each result's explanation
        (``Task.explain``, the job option ``explain``; refused for a task that gives none). Raises :class:`JobError`
        (bad parameters, mapping, input), ``KeyError``/``PluginError`` for an unknown task.
        """
        with tracing.span("verticals.submit", **{"verticals.task": task}) as current:
            job_id = self._submit(task, rows, params, text_column, fields, options, chunk_size, tenant, allow_empty,
                                  file_rows, pick, text_option, field_option, explain)
            if current is not None:
                current.set_attribute("verticals.job_id", job_id)
            return job_id

    def submit_and_start(self, task: str, rows: Iterable[dict[str, Any]], *, run: Run = "start",
                         items: int | None = None, on_stored: Callable[[str], None] | None = None,
                         on_progress: ProgressCallback | None = None, **submit: Any) -> Submitted:
        """The use case of every front end that creates a job to run it (``verticals run``, ``jobs submit``,
        ``POST /v1/jobs``, ``Client().submit``): ask the executor first (:meth:`check_ready`: a broker that is
        down refuses before anything is stored), admit the tenant's job (:attr:`admission`, with ``items`` as the
        job's item count when the caller knows it), store it (:meth:`submit`, whose keywords ``submit`` takes),
        call ``on_stored(job_id)``, then hand it over as ``run`` says (:data:`Run`). Refused by the executor
        before anything of it ran, the new job is withdrawn and :class:`ExecutorUnavailable` says so.
        """
        with tracing.span("verticals.job", **{"verticals.task": task}) as current:  # every front end's job: a trace
            self.check_ready()
            with self._admitted(submit.get("tenant"), items):
                job_id = self.submit(task, rows, **submit)
            if current is not None:
                current.set_attribute("verticals.job_id", job_id)
            if on_stored is not None:
                on_stored(job_id)
            return self._run(job_id, run, on_progress, fresh=True)

    def _run(self, job_id: str, run: Run, on_progress: ProgressCallback | None, fresh: bool = False) -> Submitted:
        if run == "wait":
            return Submitted(job_id, status=self.execute(job_id, on_progress, fresh=fresh))
        chunks = self.detach(job_id, fresh=fresh) if run == "detach" else self.start(job_id, fresh=fresh)
        return Submitted(job_id, chunks, str(self.store.summary(job_id)["status"]))

    def _admitted(self, tenant: str | None, items: int | None) -> AbstractContextManager[None]:
        if self.admission is None or tenant is None:
            return nullcontext()
        return self.admission.admit(tenant, items or 0)

    def _submit(self, task: str, rows: Iterable[dict[str, Any]], params: dict[str, Any] | None,
                text_column: str | None, fields: Mapping[str, str] | Iterable[str] | None,
                options: dict[str, Any] | None, chunk_size: int | None, tenant: str | None, allow_empty: bool,
                file_rows: bool, pick: str | None, text_option: str, field_option: str, explain: bool) -> str:
        task_cls = self.registry.task(task)
        mapping = field_map(task_cls, text_column, fields, text_option=text_option, field_option=field_option)
        if mapping or file_rows:
            rows = map_fields(rows, mapping, required=task_cls.text_field if file_rows else None,
                              pick=pick or "text_column=COLUMN")
        stored = dict(options or {})
        if explain:
            stored[EXPLAIN] = True
        if mapping:
            stored["field_map"] = mapping
        return submit_job(self.store, self.registry, task, rows, params, stored, chunk_size, tenant=tenant,
                          allow_empty=allow_empty)

    # -- running --------------------------------------------------------------------------------------
    def start(self, job_id: str, *, fresh: bool = False) -> int:
        """Hand the job's pending chunks to the executor and return at once (how many were handed over); a job
        with nothing pending is finished instead.

        ``fresh``: the caller has just submitted the job. If the executor refuses it before anything of it
        ran (the broker went down since :meth:`check_ready`), the job is withdrawn (deleted) rather than left
        ``queued`` for nobody, and the :class:`ExecutorUnavailable` says so. (:meth:`detach` and
        :meth:`execute` take ``fresh`` too.)"""
        job = self._submitted(job_id)
        if not self.store.counts(job.id).get("pending"):
            self._finish(job.id)
            return 0
        with tracing.span("verticals.dispatch", **{"verticals.job_id": job.id, "verticals.task": job.task}):
            return self._handing_over(job.id, fresh, lambda: self._hand_over(job.id))

    def detach(self, job_id: str, *, fresh: bool = False) -> int:
        """Submit-and-return (``--detach``): with an executor whose chunks run elsewhere (Celery), hand them
        over and return how many; otherwise leave the job stored for a later :meth:`resume` and return 0
        (background threads of a process about to exit would leave it half-run)."""
        job = self._submitted(job_id)
        return self._handing_over(job.id, fresh,
                                  lambda: self._hand_over(job.id) if self.executor.remote else 0)

    def execute(self, job_id: str, on_progress: ProgressCallback | None = None, *, fresh: bool = False) -> str:
        """Run the job's pending chunks (here, or on workers) and wait; return the final status."""
        job = self._submitted(job_id)
        with tracing.span("verticals.execute", **{"verticals.job_id": job.id, "verticals.task": job.task}):
            self._handing_over(job.id, fresh, lambda: self.executor.execute(job.id, on_progress=on_progress))
        return self._finish(job.id)

    def _hand_over(self, job_id: str) -> int:
        """``executor.start``; an error of the executor that is not an :class:`ExecutorUnavailable` (a broker
        library's, a bug) is one: the job's chunks were not handed over, it stays stored to be resumed."""
        executor = self.executor
        try:
            return executor.start(job_id)
        except ExecutorUnavailable:
            raise
        except Exception as error:
            raise ExecutorUnavailable(f"could not hand job {job_id} to the {executor.name} executor "
                                      f"({type(error).__name__}: {error}); check the executor, then resume the "
                                      "job") from None

    def _handing_over(self, job_id: str, fresh: bool, hand_over: Callable[[], Any]) -> Any:
        try:
            return hand_over()
        except ExecutorUnavailable as error:
            job = self.store.job(job_id)
            if not fresh or job.started_at is not None or job.finished_at is not None or any(
                    started for _, started in self.store.chunk_states(job_id).values()):
                raise  # something of it ran: it stays, to be resumed
            discard_job(self.store, job_id)
            log.info("job %s withdrawn: the executor refused it before anything ran", job_id)
            raise ExecutorUnavailable(f"{error}. The job was not kept (nothing of it had run): submit it again "
                                      "once jobs can run") from None

    def wait(self, job_id: str, timeout: float | None = None,
             on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        """Wait until the job is finished; return its summary. ``TimeoutError`` after ``timeout`` s."""
        job = self.job(job_id)
        if job.finished_at is None:
            self.executor.wait(job.id, on_progress=on_progress, timeout=timeout)
        self._finish(job.id)
        return self.store.summary(job.id)

    def resume(self, job_id: str, *, wait: bool = True, on_progress: ProgressCallback | None = None) -> str:
        """Run the pending items of a stored job (interrupted, submitted detached, messages lost with a
        broker). ``wait=False`` hands them over and returns at once. Returns the job's (final) status.
        A finished job with nothing pending is left as it is (nothing is asked of the executor); otherwise the
        executor is asked first (:meth:`check_ready`: the job stays as it is when it cannot take it)."""
        job = self._submitted(job_id)
        summary = self.store.summary(job.id)
        if not resumable(summary):
            return str(summary["status"])
        self.check_ready()
        return self._run(job.id, "wait" if wait else "start", on_progress).status

    # -- cancel / retry / delete ---------------------------------------------------------------------------
    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job; return its summary.

        Running chunks stop at their next batch (they see the flag); the items of every chunk not started
        yet are cancelled now, whatever the executor, and the executor revokes those chunks. When nothing
        of the job is left running, the job is finished (``cancelled``).
        A finished job is left as it is.
        """
        job = self._submitted(job_id)
        if job.finished_at is not None:
            return self.store.summary(job.id)
        idle = job.interrupted_at is not None  # its run was stopped: nothing runs any chunk of it
        self.store.request_cancel(job.id)
        states = self.store.chunk_states(job.id)
        unstarted = sorted(start for start, (pending, started) in states.items() if pending and not started)
        if idle:
            self.store.cancel_pending(job.id)
        elif unstarted and not any(started for _, started in states.values()):
            self.store.cancel_pending(job.id)  # nothing started: one statement for the whole job
        else:
            for first, end in _spans(unstarted, job.chunk_size):
                self.store.cancel_pending(job.id, first, end)
        if unstarted:
            executor = self._executor_if_any()
            if executor is not None:
                try:
                    executor.revoke(job.id, unstarted)
                except Exception as error:  # the items are cancelled in the store: revoking only saves work
                    log.warning("could not revoke %d queued chunk(s) of job %s (%s); workers will skip them",
                                len(unstarted), job.id, type(error).__name__)
        self._finish(job.id)
        return self.store.summary(job.id)

    def retry(self, job_id: str, *, start: bool = True, run: Run | None = None,
              on_requeued: Callable[[int], None] | None = None, on_progress: ProgressCallback | None = None,
              tenant: str | None = None) -> int:
        """Put the failed items of a finished job back to pending (not those whose input is invalid:
        re-running cannot change that) and run them; return how many.

        ``run``: how they run (:data:`Run`; default ``start``: handed to the executor at once; the CLI
        ``wait``s to show progress). ``start=False`` only puts them back (nothing is asked of the executor).
        The executor is asked first (:meth:`check_ready`: a broker that is down refuses before anything
        changes); with an :attr:`admission`, the ``tenant``'s job is admitted again for its failed items (they
        run again: they count). ``on_requeued(count)`` is called once they are back, before they run (nothing
        runs when the count is 0).

        :class:`JobConflict` for a job still queued or running (retry once it has finished; a job whose
        chunks were lost is continued with :meth:`resume`).
        """
        job = self._submitted(job_id)
        status = self.store.summary(job.id)["status"]
        if status == "interrupted":
            raise JobConflict(f"job {job.id} is interrupted: resume it to run its pending items (its failed items "
                              "can be retried once it has finished)")
        if status in UNFINISHED:
            raise JobConflict(f"job {job.id} is {status}: retry its failed items once it has finished "
                              "(cancel it first, or resume it if its process stopped)")
        if start:
            self.check_ready()  # no executor, or one that cannot take them now: refused before anything changes
        failed = int(self.store.counts(job.id).get("failed") or 0)
        with self._admitted(tenant, failed):
            count = self.store.reset_failed(job.id)
        if on_requeued is not None:
            on_requeued(count)
        if count and start:
            self._run(job.id, run or "start", on_progress)
        return count

    def delete(self, job_id: str, force: bool = False) -> dict[str, Any]:
        """Delete a job with its items and artifacts; return the summary it had. A job still queued or
        running is a :class:`JobConflict` unless ``force`` (e.g. a job whose process died)."""
        job = self.job(job_id)
        summary = self.store.summary(job.id)
        if summary["status"] in ("queued", "running") and not force:  # an interrupted job runs nowhere
            raise JobConflict(f"job {job.id} is {summary['status']}: cancel it first, or delete it with force")
        discard_job(self.store, job.id)
        return summary

    # -- helpers ------------------------------------------------------------------------------------------
    def _submitted(self, job_id: str) -> Any:
        job = self.job(job_id)
        if not job.submitted:
            raise JobConflict(f"job {job.id} was never fully submitted (its items are still being stored by another "
                              "process, or its submission stopped before the end): there is nothing to run. "
                              "Delete it (jobs delete with force) and submit the input again")
        return job

    def _executor_if_any(self) -> Executor | None:
        try:
            return self.executor
        except ExecutorUnavailable:
            return None

    def _finish(self, job_id: str) -> str:
        """The service's finishing point: finish the job if nothing of it is pending (:func:`finish_if_done`:
        one transaction, then its ``job_finished`` event delivered), deliver its event if another process left
        it pending, and return the job's status. After every wait, execute and cancel: a process that died
        between writing the job's last results and finishing it left it for this."""
        finish_if_done(self.store, self.registry, job_id)
        self._deliver(job_id)
        return str(self.store.summary(job_id)["status"])

    def deliver_pending(self, sweep: bool = False) -> int:
        """The outbox, at least once: deliver every ``job_finished`` event a process left pending (it died
        between finishing a job and firing its event); ``sweep``: first remove the jobs whose submission died
        half-way (the CLI's first store use). Each composition root calls it once at start (CLI, API, worker).
        Returns how many events were delivered; a failure is logged and leaves them pending."""
        try:
            if sweep:
                _jobs.sweep_abandoned(self.store)
            return _jobs.deliver_job_events(self.store, self.registry)
        except Exception:
            log.warning("pending job events could not be delivered now; they stay pending", exc_info=True)
            return 0

    def _deliver(self, job_id: str) -> None:
        """Fire the job's pending ``job_finished`` event (the outbox: one a crashed process left, or one
        another process claimed and has not delivered yet is left to it)."""
        try:
            _jobs.deliver_job_events(self.store, self.registry, job_id=job_id)
        except Exception:
            log.exception("delivering job events failed; they stay pending and are tried again")


def resumable(summary: Mapping[str, Any]) -> bool:
    """Whether :meth:`JobService.resume` has anything to run for the job of this summary: it is not finished, or
    items of it are pending. A finished job with nothing pending is left as it is (its failed items run again by a
    retry; cancelled ones never). The front ends word a refusal from the same test."""
    return not summary["finished_at"] or bool(summary["counts"].get("pending"))


def chunk_progress(store: Store, job_id: str) -> dict[str, int]:
    """Chunks of a job: total, done (nothing pending), running (started, items pending), waiting (not started)."""
    states = store.chunk_states(job_id)
    done = sum(1 for pending, _ in states.values() if not pending)
    running = sum(1 for pending, started in states.values() if pending and started)
    return {"chunks": len(states), "done": done, "running": running, "waiting": len(states) - done - running}


def _spans(starts: list[int], chunk_size: int) -> list[tuple[int, int]]:
    """Contiguous chunk starts -> (first seq, end) spans, so that a run of chunks is one statement."""
    spans: list[tuple[int, int]] = []
    for start in starts:
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], start + chunk_size)
        else:
            spans.append((start, start + chunk_size))
    return spans


__all__ += ["FINISHED", "UNFINISHED"]
