"""Job lifecycle: submit, run a chunk, finish, cancel, retry.

The same functions run under every executor (local, Celery): an executor only
decides *where* :func:`run_chunk` is called for each (job id, chunk range).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from verticals.config import max_attempts
from verticals.contract import RunContext, Task
from verticals.contract.explain import without_input_text
from verticals.core import tracing
from verticals.core.access import access_context, check_rows, server_access
from verticals.core.io import InputColumns, InputError
from verticals.core.jobs.pipeline import LazyModels, describe_validation_error, process_batch, run_isolating
from verticals.core.models.host import ModelHost
from verticals.core.models.metering import Meter, metering
from verticals.core.store import Store, storage_problem
from verticals.core.store.repo import EVENT_LEASE, BatchUsage, ItemResult
from verticals.core.store.secrets import seal_params, unseal_params
from verticals.core.store.tables import utcnow
from verticals.core.text import unstorable
from verticals.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["LazyModels", "describe_validation_error", "process_batch", "run_isolating"]  # moved to pipeline

INSERT_BATCH = 1000


class JobError(ValueError):
    """A job could not be submitted as asked (bad parameters, unknown task...)."""


def validate_params(task: type[Task], params: dict[str, Any], context: dict[str, Any] | None = None) -> BaseModel:
    """The job parameters validated against ``task.Params``; :class:`JobError` naming what is wrong.

    A name the task does not take is refused (unless its ``Params`` allow extra names), with the closest
    names it does take ("did you mean"): a typo never silently falls back to the default. ``context``:
    :func:`verticals.core.access.access_context` of the job's tenant (without it no server path is allowed).
    """
    from verticals.registry import did_you_mean

    fields = task.Params.model_fields
    takes = ", ".join(fields) or "none"
    unknown = unknown_params(task, params)
    if unknown:
        name = unknown[0][:100]
        hint = did_you_mean(name, fields)
        raise JobError(f"unknown parameter {name!r} for {task.name}{hint} "
                       + (f"(parameters this task takes: {takes})" if fields else "(this task takes none)"))
    try:
        return task.Params.model_validate(params, context=context)
    except ValidationError as error:
        raise JobError(f"bad parameters for {task.name}: {describe_validation_error(error)[15:]} "
                       f"(parameters this task takes: {takes})") from None


def unknown_params(task: type[Task], names: Iterable[str]) -> list[str]:
    """The parameter ``names`` that ``task`` does not take (its ``Params`` fields and their aliases), in order;
    none when its ``Params`` allow extra names. The one rule: the job service refuses them
    (:func:`validate_params`), the CLI words the refusal as options (``verticals run``)."""
    if task.Params.model_config.get("extra") == "allow":
        return []
    fields = task.Params.model_fields
    known = set(fields) | {f.alias for f in fields.values() if f.alias}
    return [str(name) for name in names if name not in known]


def job_params(task: type[Task], job: Any) -> BaseModel:
    """A stored job's params, validated for running it (secret parameters decrypted; server paths checked
    again with the access of the job's tenant: a file swapped or a root withdrawn since the submit is refused)."""
    return task.Params.model_validate(unseal_params(job.params), context=access_context(job.tenant_id))


EXPLAIN = "explain"
"""The job option asking each result's explanation (``Task.explain``); off by default (nothing runs or is stored)."""


def check_explain(registry: Registry, task_cls: type[Task], explain: Any) -> None:
    """A job (or predict call) asking explanations of a task that gives none is refused, naming those that do."""
    if explain is None or explain is False:
        return
    if explain is not True:
        raise JobError(f"the option explain is true or false, not {explain!r}")
    if not task_cls.explains():
        those = sorted(name for name, cls in registry.tasks.items() if cls.explains())
        raise JobError(f"{task_cls.name} does not explain its results, so explain cannot be used with it "
                       f"(tasks that do: {', '.join(those) or 'none installed'})")


class StoreFull(JobError):
    """The job could not be stored: the database has no room (a full disk, a file size limit). Nothing of the
    job was kept (or, when even removing it failed, the message names the job to delete). HTTP: 507."""


class SubmissionError(JobError):
    """Reading a job's input failed after its first item (a bad line late in a file): the job that had
    been created for it was deleted, nothing of it is kept. The message names the problem and its line."""


def submit_job(store: Store, registry: Registry, task_name: str, rows: Iterable[dict[str, Any]],
               params: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
               chunk_size: int | None = None, tenant: str | None = None, allow_empty: bool = True) -> str:
    """Store a job and its items. Invalid items are stored as failed with their validation error.

    ``tenant``: the API tenant the job belongs to (None for CLI/local jobs). ``allow_empty=False``
    (input files: the CLI, uploads) refuses an input with no item instead of storing an empty job.

    Nothing is left half-submitted: the parameters and the first item are read before the job row
    exists (a missing or undecodable file, an unknown column or format fails here, with no job); an
    error found while reading later items (line 5000 is not JSON,
    Ctrl-C) deletes the job and its stored items before the error goes on, so no job stays ``queued``
    or ``running`` with nothing to run. Such errors other than :class:`JobError` / ``InputError`` come
    back as :class:`SubmissionError` (e.g. a task's ``read_items`` refusing an ungrouped log).
    """
    task_cls = registry.task(task_name)
    task = task_cls()
    access = server_access(tenant)
    context = access.context()
    problem = unstorable(params or {})
    if problem:
        raise JobError(f"bad parameters for {task_name}: {problem}")
    check_explain(registry, task_cls, (options or {}).get(EXPLAIN))
    validated_params = validate_params(task_cls, params or {}, context)
    items = iter(task.read_items(check_rows(task_cls.Input, rows, access), validated_params))
    first = _next_item(items)  # before any job exists: file, format, decoding, columns of the first row
    if first is _END and not allow_empty:
        raise JobError("the input has no items (an empty file, or a header and no row): nothing to run")
    if first is not _END and unstorable(first):
        raise JobError(f"item 1: {unstorable(first)}")
    plugin = registry.task_plugin.get(task_name)
    sweep_abandoned(store)  # submissions that died half-way on this host (killed, or a full disk)
    with _SUBMITTING_LOCK:  # else a sweep of another thread (concurrent API requests) could take it for abandoned
        job_id = store.create_job(task_name, seal_params(validated_params),
                                  {**(options or {}), SUBMITTER: _submitter()}, chunk_size or task_cls.chunk_size,
                                  plugin.name if plugin else None, plugin.version if plugin else None, tenant=tenant)
        _SUBMITTING.add(job_id)
    total, pending = 0, list[tuple[int, Any, str, str | None]]()
    columns = InputColumns()  # what an export's columns will be, gathered here rather than read back then
    try:
        row = first
        while row is not _END:
            problem = unstorable(row)  # the store's rule for text (verticals.core.text), with the item's number
            if problem:
                raise JobError(f"item {total + 1}: {problem}")
            try:
                stored = validated_input(task_cls.Input, row, context)
                pending.append((total, stored, "pending", None))
            except ValidationError as error:
                stored = row
                pending.append((total, row, "failed", describe_validation_error(error)))
            columns.add(stored)
            total += 1
            if len(pending) >= INSERT_BATCH:
                store.add_items(job_id, pending)
                pending = []
            row = _next_item(items)
        store.add_items(job_id, pending)
        store.mark_submitted(job_id, total, dict(options or {}), columns.to_json())
    except (JobError, InputError) as error:
        _discard_unsubmitted(store, job_id)
        raise type(error)(f"{error} (nothing was stored: fix the input and submit again)") from None
    except BaseException as error:
        kept = not _discard_unsubmitted(store, job_id)
        problem = storage_problem(error)
        if problem is None:
            raise
        if kept:
            raise StoreFull(f"the job could not be stored: {problem}. Job {job_id} was stored in part and could "
                            f"not be removed: free space, then delete it (verticals jobs delete {job_id[:12]} "
                            "--force)") from None
        raise StoreFull(f"the job could not be stored: {problem}; nothing was kept. Free space on the database's "
                        "disk and submit again") from None
    finally:
        with _SUBMITTING_LOCK:
            _SUBMITTING.discard(job_id)
    registry.hook.job_submitted(job=store.summary(job_id))
    return job_id


def validated_input(model: type[BaseModel], row: dict[str, Any], context: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """What is stored of a valid item: the row with the task's input fields in their validated form
    (``model_dump(mode="json")``, by alias: coerced, normalised by the model's validators), so that the
    worker builds the input from exactly what passed validation. The row's other columns are kept (they
    are exported with the results). Computed fields are not stored (they are computed again)."""
    value = model.model_validate(row, context=context)
    try:
        dumped = value.model_dump(mode="json", by_alias=True, exclude=set(model.model_computed_fields) or None)
    except Exception:  # a custom serialiser that cannot write JSON: the row as given (it validated)
        log.debug("input of %s stored as given: its validated form cannot be written as JSON", model.__name__)
        return row
    return {**row, **dumped}


_END = object()


def _next_item(items: Iterator[dict[str, Any]]) -> Any:
    """The next item, or ``_END``; a reading error that is not a JobError/InputError becomes a JobError."""
    try:
        return next(items)
    except StopIteration:
        return _END
    except (JobError, InputError):
        raise
    except (ValueError, KeyError, TypeError, UnicodeError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        raise SubmissionError(f"reading the input failed: {message}") from error


def discard_job(store: Store, job_id: str) -> None:
    """Delete a job with its items and artifacts (a submission that failed half-way, ``jobs delete``).

    SQLite zeroes the freed pages (``secure_delete``) and the write-ahead log is truncated after, so no
    copy of the inputs stays on disk (see docs/security.md)."""
    from sqlalchemy import delete

    from verticals.core.store.db import scrub_sqlite
    from verticals.core.store.tables import Artifact, Item, Job, JobEvent

    with store.session() as session, session.begin():
        session.execute(delete(JobEvent).where(JobEvent.job_id == job_id))
        session.execute(delete(Item).where(Item.job_id == job_id))
        session.execute(delete(Artifact).where(Artifact.job_id == job_id))
        session.execute(delete(Job).where(Job.id == job_id))
    scrub_sqlite(store.engine)


SUBMITTER = "_submitter"
"""The option naming the process storing a job's items (host, pid, process start), removed once it is done."""
_SUBMITTING: set[str] = set()  # the jobs this process is storing now
_SUBMITTING_LOCK = threading.Lock()  # a job is in _SUBMITTING from the moment another thread can see it


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux ``/proc``), so that a reused pid is not
    taken for the submitter; None where it cannot be told."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _submitter() -> dict[str, Any]:
    import os
    import socket

    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_start(os.getpid())}


def sweep_abandoned(store: Store) -> int:
    """Remove the jobs whose submission stopped half-way on this host: the process that stored their items
    is gone (killed, crashed) or is this one and no longer storing them (its own removal failed, e.g. the
    disk was full). Jobs of other hosts and of live submitters are left alone. Returns how many went."""
    import os
    import socket

    from sqlalchemy import select

    from verticals.core.store.tables import Job

    host, removed = socket.gethostname(), 0
    with store.session() as session:
        candidates = list(session.execute(select(Job.id, Job.options).where(Job.submitted.is_(False))))
    for job_id, options in candidates:
        mark = (options or {}).get(SUBMITTER)
        if not isinstance(mark, dict) or mark.get("host") != host or not isinstance(mark.get("pid"), int):
            continue
        pid = mark["pid"]
        if pid == os.getpid() and mark.get("started") == _process_start(pid):  # this process's own submission
            with _SUBMITTING_LOCK:
                if job_id in _SUBMITTING:
                    continue  # being stored by another thread of this process
            if _submitted_since(store, job_id):  # it completed after the candidates were read
                continue
        elif _process_start(pid) == mark.get("started") if mark.get("started") else _pid_alive(pid):
            continue
        if _discard_unsubmitted(store, job_id):
            log.warning("removed job %s: its submission stopped half-way (process %d)", job_id, pid)
            removed += 1
    return removed


def _submitted_since(store: Store, job_id: str) -> bool:
    """Whether the job is gone or completely submitted now (read again, after the membership check)."""
    try:
        return bool(store.job(job_id).submitted)
    except KeyError:
        return True


def _pid_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _discard_unsubmitted(store: Store, job_id: str) -> bool:
    """Remove a job whose submission failed; True when it is gone. When the database is full, zeroing the
    freed pages (``secure_delete``) needs as much room as the rows took: the job is then deleted without it
    (a warning says so; the freed pages are overwritten as they are reused, and the next purge's
    checkpoint truncates the log)."""
    from sqlalchemy import delete

    from verticals.core.store.tables import Artifact, Item, Job, JobEvent

    try:
        discard_job(store, job_id)
        return True
    except Exception as error:
        if storage_problem(error) is None:
            log.warning("could not remove the unsubmitted job %s (%s)", job_id, type(error).__name__, exc_info=True)
            return False
    try:
        with store.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            try:
                with connection.begin():
                    if sqlite:
                        connection.exec_driver_sql("PRAGMA secure_delete=OFF")
                    for table in (JobEvent, Item, Artifact):
                        connection.execute(delete(table).where(table.job_id == job_id))
                    connection.execute(delete(Job).where(Job.id == job_id))
            finally:
                if sqlite:  # the connection goes back to the pool: its setting as every connection has it
                    connection.rollback()
                    connection.exec_driver_sql("PRAGMA secure_delete=ON")
                    connection.commit()
    except Exception:  # the caller says so (StoreFull); the next command of this host removes it
        log.debug("could not remove the unsubmitted job %s (the database is full)", job_id, exc_info=True)
        return False
    log.warning("job %s removed after the database filled up, without zeroing its freed pages", job_id)
    return True


FINISHED = ("succeeded", "partial", "failed", "cancelled")


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` -> a timedelta."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in units or not number.isdigit():
        raise JobError(f"bad age {text!r}: use a number and a unit, e.g. 30d, 12h, 90m, 2w")
    return timedelta(**{units[unit]: int(number)})


def jobs_to_prune(store: Store, older_than: timedelta, statuses: Iterable[str] = FINISHED) -> list[dict[str, Any]]:
    """Summaries of the finished jobs created more than ``older_than`` ago whose status is in ``statuses``.
    Jobs still queued or running are never selected."""
    from sqlalchemy import select

    from verticals.core.store.tables import Job, utcnow

    wanted = set(statuses)
    unknown = wanted - set(FINISHED)
    if unknown:
        raise JobError(f"cannot prune jobs by status {', '.join(sorted(unknown))}: use "
                       f"{', '.join(FINISHED)} (queued and running jobs are never pruned)")
    cutoff = utcnow() - older_than
    with store.session() as session:
        ids = list(session.scalars(select(Job.id).where(Job.created_at < cutoff, Job.finished_at.is_not(None))
                                   .order_by(Job.created_at)))
    summaries = (store.summary(job_id) for job_id in ids)
    return [summary for summary in summaries if summary["status"] in wanted]


@dataclass
class ChunkReport:
    job_id: str
    start: int
    end: int
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    finished_status: str | None = None
    errors: list[str] = field(default_factory=list)


PROGRESS_INTERVAL = 1.0  # seconds: at most one progress write per running chunk per interval


class ProgressSink:
    """Where :meth:`RunContext.progress` goes in a job: the job's row (``jobs.progress``, one entry per running
    chunk), throttled to one write per ``interval`` seconds; a report that came too soon is written when
    the interval has passed (a timer), so the last one is always stored. :meth:`end` at the end of each
    batch stops the timer and says whether the batch's entry must be removed with its results.

    Thread-safe (a task may report from its own threads); a write that fails is logged at DEBUG and lost:
    progress is a display and never fails the batch.
    """

    def __init__(self, store: Store, job_id: str, key: str, interval: float = PROGRESS_INTERVAL):
        self.store, self.job_id, self.key, self.interval = store, job_id, key, interval
        self.items = 0
        self.written = False  # this batch's entry is in the store
        self.writes = 0
        self._last = float("-inf")
        self._pending: dict[str, Any] | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def begin(self, items: int) -> None:
        """A batch of ``items`` items starts: reports are about it from now on."""
        with self._lock:
            self.items, self.written, self._pending = items, False, None

    def __call__(self, done: float, total: float | None, note: str | None) -> None:
        entry = {"done": done, "total": total, "items": self.items, "note": note, "at": utcnow().isoformat()}
        with self._lock:
            wait = self._last + self.interval - time.monotonic()
            if wait <= 0:
                self._write(entry)
                return
            self._pending = entry
            if self._timer is None:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending is not None:
                self._write(self._pending)

    def _write(self, entry: dict[str, Any]) -> None:  # under the lock
        self._pending, self._last = None, time.monotonic()
        try:
            self.store.set_progress(self.job_id, self.key, entry)
            self.written = True
            self.writes += 1
        except Exception:
            log.debug("progress of job %s not stored", self.job_id, exc_info=True)

    def end(self) -> str | None:
        """The batch is done: drop a report not written yet; the entry's key if the batch wrote one (to
        remove with its results: :meth:`Store.write_results` ``clear_progress``), else None."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._pending = None
            written, self.written = self.written, False
        return self.key if written else None


class CancelCheck:
    """``RunContext.cancelled`` of a job: asks the store at most once per ``every`` seconds; once true, stays true."""

    def __init__(self, store: Store, job_id: str, every: float = 1.0):
        self.store, self.job_id, self.every = store, job_id, every
        self._lock = threading.Lock()
        self._asked = float("-inf")
        self._cancelled = False

    def __call__(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if not self._cancelled and now - self._asked >= self.every:
                self._asked = now
                self._cancelled = bool(self.store.cancel_requested(self.job_id))
            return self._cancelled


def run_chunk(store: Store, registry: Registry, host: ModelHost, job_id: str, start: int, end: int,
              on_progress: Callable[[int], None] | None = None) -> ChunkReport:
    """Run the pending items of one chunk, then finish the job if nothing of it is pending (its one place in
    the engine: :func:`finish_if_done`, which also delivers its ``job_finished`` event). Safe to call again for
    the same chunk (idempotent)."""
    with tracing.span("verticals.chunk", **{"verticals.job_id": job_id, "verticals.chunk.start": start,
                                            "verticals.chunk.end": end}) as current:
        report = _run_chunk(store, registry, host, job_id, start, end, on_progress)
        report.finished_status = finish_if_done(store, registry, job_id)
        if current is not None:
            current.set_attributes({"verticals.succeeded": report.succeeded, "verticals.failed": report.failed})
        return report


def fail_chunk(store: Store, registry: Registry, job_id: str, start: int, end: int, reason: str) -> int:
    """Fail the pending items of a chunk that cannot be run (a worker gave up on it after its retries) with
    ``reason``, then finish the job if nothing of it is pending, as :func:`run_chunk` ends. Returns how many
    items were failed."""
    results = [ItemResult(seq, "failed", error=reason) for seq, _ in store.pending_items(job_id, start, end)]
    store.write_results(job_id, results)
    finish_if_done(store, registry, job_id)
    return len(results)


def _run_chunk(store: Store, registry: Registry, host: ModelHost, job_id: str, start: int, end: int,
               on_progress: Callable[[int], None] | None = None) -> ChunkReport:
    job = store.job(job_id)
    report = ChunkReport(job_id, start, end)
    created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=UTC)
    queue_wait: float | None = (utcnow() - created).total_seconds()  # the job's creation -> this chunk's start
    if job.cancel_requested:
        report.cancelled = store.cancel_pending(job_id, start, end)
        _progress(on_progress, report.cancelled)
        return report
    if job.interrupted_at is not None:  # it runs again: no longer interrupted
        store.mark_interrupted(job_id, False)
    task_cls = registry.task(job.task)
    task = task_cls()
    sink = ProgressSink(store, job_id, str(start))
    items = store.pending_items(job_id, start, end, with_attempts=True)
    try:
        params = job_params(task_cls, job)
    except ValidationError as error:  # e.g. a server file gone, swapped or no longer allowed since the submit
        message = "the job's parameters no longer hold: " + describe_validation_error(error)[15:]
        store.write_results(job_id, [ItemResult(seq, "failed", error=message) for seq, _, _ in items])
        report.failed = len(items)
        _progress(on_progress, len(items))
        return report
    ctx = RunContext(job_id=job_id, params=params,
                     logger=logging.getLogger(f"verticals.task.{task_cls.name}"), progress_sink=sink,
                     cancel_check=CancelCheck(store, job_id), explain=bool(job.options.get(EXPLAIN)))
    if not items:
        return report
    # Load what this job will use before its first batch begins: the job's start time (the first begin)
    # then excludes model loading, so its items/s measure the items.
    wanted = task.models_for(ctx.params)
    models = LazyModels(host, {**task_cls.models, **wanted})
    for role in wanted:
        models[role]
    purge = bool(job.options.get("purge_inputs"))
    if task_cls.text_field:
        # Longest first: each run() batch then holds texts of similar length, so the model host's
        # token-budget batches pad little. Results are written by seq, so order does not matter here.
        items.sort(key=lambda item: -len(str((item[1] or {}).get(task_cls.text_field) or "")))
    limit = max_attempts()
    input_context = access_context(job.tenant_id)
    writer = ResultWriter(store, job_id, WRITE_BEHIND)
    try:
        _run_batches(store, registry, task, task_cls, job, items, models, ctx, sink, writer, report, limit,
                     input_context, purge, queue_wait, start, end, on_progress)
        writer.close()  # every result written (a writer's error is raised here)
    finally:
        writer.close(raise_error=False)  # an error on the way out: what was computed is written, then it goes on
    return report


def _run_batches(store: Store, registry: Registry, task: Task, task_cls: type[Task], job: Any,
                 items: list[tuple[int, Any, int]], models: LazyModels, ctx: RunContext, sink: ProgressSink,
                 writer: ResultWriter, report: ChunkReport, limit: int, input_context: dict[str, Any],
                 purge: bool, queue_wait: float | None, start: int, end: int,
                 on_progress: Callable[[int], None] | None) -> None:
    """The batches of a chunk, in order: begin (attempts, cancel check), validate, run, then hand the results
    to ``writer`` (written while the next batch runs)."""
    job_id = job.id
    for index, batch_items in enumerate(plan_batches(items, task_cls.batch_size)):
        given_up = store.begin_batch(job_id, [seq for seq, _, _ in batch_items], limit,
                                     mark_started=job.started_at is None and index == 0)
        writer.release()  # the previous batch's results: written while this one runs, not while it begins
        if given_up is None:  # cancellation requested: checked by the batch's begin itself
            writer.close()  # the results computed before it are written first: they are not cancelled
            report.cancelled += store.cancel_pending(job_id, start, end)
            _progress(on_progress, report.cancelled)
            break
        if given_up:
            report.failed += len(given_up)
            _progress(on_progress, len(given_up))
            batch_items = [item for item in batch_items if item[0] not in given_up]
            if not batch_items:
                continue
        seqs = [seq for seq, _, _ in batch_items]
        inputs = [task_cls.Input.model_validate(data, context=input_context) for _, data, _ in batch_items]
        sink.begin(len(inputs))
        meter = Meter()  # the batch's model time and tokens, per model and device (the model host's calls)
        began = time.perf_counter()
        try:
            with metering(meter), tracing.span("verticals.batch", **{
                    "verticals.job_id": job_id, "verticals.task": job.task, "verticals.batch_size": len(inputs)}):
                results = process_batch(registry, task, seqs, inputs, models, ctx)
        except BaseException as error:
            if sink.end():  # interrupted: its report is about items that are not running any more
                with contextlib.suppress(Exception):
                    store.set_progress(job_id, sink.key, None)
            if isinstance(error, KeyboardInterrupt):  # stopped by a signal, not by its items
                with contextlib.suppress(Exception):
                    store.release_attempts(job_id, seqs)
            raise
        usage = BatchUsage(job.tenant_id, job.task, time.perf_counter() - began,
                           {key: (use.seconds, use.tokens, use.calls, use.peak_memory_bytes)
                            for key, use in meter.models.items()}, queue_wait)
        queue_wait = None  # once per chunk: its first batch
        if purge:  # the input goes: so do the words an explanation quotes from it (one rule, the contract's)
            data_of = {seq: data for seq, data, _ in batch_items}
            results = [dataclasses.replace(r, explanation=without_input_text(r.explanation, data_of.get(r.seq)))
                       if r.explanation else r for r in results]
        writer.put(results, purge_inputs=purge, clear_progress=sink.end(), usage=usage)
        ok = sum(r.status == "succeeded" for r in results)
        stopped = sum(r.status == "cancelled" for r in results)
        report.succeeded += ok
        report.cancelled += stopped
        report.failed += len(results) - ok - stopped
        _progress(on_progress, len(results))  # computed and handed to the writer (written before the chunk ends)


WRITE_BEHIND = 2
"""How many batches' results of a chunk may wait for the background writer (:class:`ResultWriter`) while the
next batch runs: the bound of its queue (back-pressure: the batch loop waits when it is full). 0: each batch's
results are written in the batch loop before the next batch begins (benchmarks/overlap.py compares the two)."""

WRITER_THREADS = 4
"""Threads of the process's result-writer pool, shared by the chunks running in the process (started once, on
first use: a thread per chunk costs its start-up on every chunk)."""

_WRITERS: ThreadPoolExecutor | None = None
_WRITERS_LOCK = threading.Lock()


def writer_pool() -> ThreadPoolExecutor:
    """The process's result-writer threads (created on first use; a forked child makes its own)."""
    global _WRITERS
    with _WRITERS_LOCK:
        if _WRITERS is None:
            _WRITERS = ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="verticals-writer")
        return _WRITERS


def _forget_writers() -> None:  # a forked child (a Celery pool process) does not have its parent's threads
    global _WRITERS, _WRITERS_LOCK
    _WRITERS, _WRITERS_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_writers)


class WriterFailed(RuntimeError):
    """A chunk's result writer took no more results: an earlier write of the chunk failed (that error is raised
    in the chunk's thread, with a note naming the writer; see :class:`ResultWriter`)."""


class ResultWriter:
    """Writes a chunk's batch results (:meth:`Store.write_results`) on the process's writer threads
    (:func:`writer_pool`), one batch after the other in the order they were put, while the chunk's thread runs
    the next batch: the model's time and the store's overlap.

    A batch's results are held until the next batch has begun (:meth:`release`, after its ``begin_batch``), so
    the write runs while the model does, not while the next batch takes the database's write lock. At most
    ``depth`` batches are queued or being written (``release`` waits for the oldest: back-pressure), and one held;
    ``depth`` 0 writes in ``put`` itself, as the batch loop did before the writer. Each write is a transaction of
    its own on a pooled connection of the store's engine (SQLite: WAL and a busy timeout; the write begins with
    its UPDATE). Idempotency is the store's: a result is written only onto an item still pending. A failed
    write stops the writer: the batches put after it are not written (their items stay pending with the attempt
    counted, as after a worker died) and the error is raised in the chunk's thread at its next ``put``,
    ``release`` or ``close``: the chunk fails with the store's own error. ``close`` waits for every write: a
    cancellation closes it before the chunk's pending items are cancelled, and the chunk closes it on every
    exit (an error of its own too), so nothing of a chunk is written after it returned."""

    def __init__(self, store: Store, job_id: str, depth: int):
        self.store, self.job_id, self.depth = store, job_id, depth
        self._pending: collections.deque[Future[None]] = collections.deque()
        self._last: Future[None] | None = None
        self._error: BaseException | None = None
        self._failed = False
        self._held: tuple[list[ItemResult], dict[str, Any]] | None = None

    def put(self, results: list[ItemResult], **options: Any) -> None:
        """Hand one batch's results to the writer (``options``: :meth:`Store.write_results`'s keywords). They
        are held until :meth:`release` (the next batch has begun) or :meth:`close`: the write then does not
        compete with the next batch's begin for the database's write lock (SQLite has one)."""
        self.check()
        if self.depth <= 0:
            self.store.write_results(self.job_id, results, **options)
            return
        self.release()
        self._held = (results, options)

    def release(self) -> None:
        """Start writing the results held by :meth:`put` (waits while ``depth`` batches are queued)."""
        if self._held is None:
            return
        (results, options), self._held = self._held, None
        while len(self._pending) >= self.depth:
            self._settle(self._pending.popleft())
            self.check()
        self._last = writer_pool().submit(self._write_after, self._last, results, options)
        self._pending.append(self._last)

    def _write_after(self, before: Future[None] | None, results: list[ItemResult], options: dict[str, Any]) -> None:
        # The pool takes work in the order it was submitted: ``before`` was taken first, so waiting on it never
        # waits on work that is not running or done.
        if before is not None and before.exception() is not None:
            raise WriterFailed(f"not written: an earlier write of job {self.job_id}'s results failed")
        self.store.write_results(self.job_id, results, **options)

    def _settle(self, future: Future[None]) -> None:
        error = future.exception()
        if error is not None and self._error is None and not self._failed and not isinstance(error, WriterFailed):
            self._error = error

    def check(self) -> None:
        """Raise the writer's error (once; then :class:`WriterFailed`), if a write failed."""
        error = self._error
        if error is not None:
            self._error, self._failed = None, True
            error.add_note(f"(while writing a batch's results of job {self.job_id} in the background)")
            raise error
        if self._failed:
            raise WriterFailed(f"writing the results of job {self.job_id} failed earlier")

    def close(self, raise_error: bool = True) -> None:
        """Wait until every result put is written; raise the writer's error (``raise_error``). Safe to call
        again."""
        held, self._held = self._held, None
        if held is not None and not self._failed and self._error is None:  # (no wait: bounded by depth + 1)
            self._last = writer_pool().submit(self._write_after, self._last, *held)
            self._pending.append(self._last)
        while self._pending:
            self._settle(self._pending.popleft())
        if raise_error:
            self.check()


def plan_batches(items: list[tuple[int, Any, int]], batch_size: int) -> list[list[tuple[int, Any, int]]]:
    """Cut a chunk's pending (seq, input, attempts) items into batches.

    Items never attempted are batched ``batch_size`` at a time. Items that were
    already attempted were in flight when an earlier run of this chunk died
    (worker killed, out of memory, redelivered message): they run one at a
    time, so an item that kills its worker uses up only its own attempts and
    fails alone, while its batch mates succeed.
    """
    batches: list[list[tuple[int, Any, int]]] = []
    fresh: list[tuple[int, Any, int]] = []
    for item in items:
        if item[2]:
            if fresh:
                batches.append(fresh)
                fresh = []
            batches.append([item])
            continue
        fresh.append(item)
        if len(fresh) >= batch_size:
            batches.append(fresh)
            fresh = []
    if fresh:
        batches.append(fresh)
    return batches


def _progress(callback: Callable[[int], None] | None, count: int) -> None:
    if callback and count:
        callback(count)


def finish_if_done(store: Store, registry: Registry, job_id: str, job: Any = None) -> str | None:
    """If no item is pending, finish the job and fire ``job_finished``; return the final status to the one
    caller that finished it (None to every other caller, and while items are pending).

    Called from three places only: the end of :func:`run_chunk` and of :func:`fail_chunk` (where a job's last
    items stop being pending) and ``JobService._finish`` (a cancel, and every wait of the service: what a
    process that died between writing its last results and finishing left). Executors never finish a job:
    their ``execute`` and ``wait`` return once nothing is pending, and the service finishes it.

    Finishing is one transaction (:meth:`Store.try_finish`): the final status and a ``job_finished`` row
    in the outbox. The event is then delivered here (summary artifact, then the hook) by
    :func:`deliver_job_events`; if this process dies first, the next call of :func:`deliver_job_events`
    (any process: the CLI, a worker, the API at start, ``JobService.wait``) delivers it.

    With the option ``purge_inputs`` the inputs are purged (and SQLite's write-ahead log truncated)
    *before* the job is marked finished, so a job seen as finished has no input left in the database.
    ``job``: the job's row if the caller has it (its options and submission are read from it).
    """
    fresh = job is None or not job.submitted
    purged, job = False, job if job is not None and job.submitted else store.job(job_id)
    if fresh and (job.n_pending or 0) > 0:
        # Read just now, after the caller's last write committed: items are pending, so the finishing UPDATE
        # would change nothing (its condition is n_pending = 0). Skipping it saves a write transaction per chunk;
        # the writer of the job's last items reads the counter after its own commit and finishes the job.
        return None
    purge = bool(job.options.get("purge_inputs"))
    if job.submitted and purge and not store.counts(job_id).get("pending"):
        store.purge_inputs(job_id)  # failed and cancelled items too: nothing of the input stays
        purged = True
    status = store.try_finish(job_id)
    if status is None:
        return None
    if purge and not purged:
        store.purge_inputs(job_id)  # the last pending item was written between our count and try_finish
    deliver_job_events(store, registry, job_id=job_id)
    return status


def deliver_job_events(store: Store, registry: Registry, job_id: str | None = None,
                       lease: timedelta | None = None) -> int:
    """Deliver the pending job events (the outbox written by :meth:`Store.try_finish`), at least once.

    For each event not yet delivered (only ``job_id``'s if given): claim it (one caller wins), write the
    job's summary artifact (``summary.json``, from ``Task.summarize``), fire ``job_finished`` with the
    job's summary, mark it delivered. An event claimed by a process that died before marking it delivered
    is taken again once ``lease`` (default 5 minutes) has passed. Returns how many events were delivered.
    A failing ``job_finished`` plugin is logged by the registry and does not keep the event pending.
    """
    lease = lease if lease is not None else EVENT_LEASE
    delivered = 0
    while True:
        events = store.pending_events(job_id, lease=lease)
        if not events:
            return delivered
        for event_id, event_job, event in events:
            if not store.claim_event(event_id, lease=lease):
                continue  # another process is delivering it
            try:
                _deliver(store, registry, event_job, event)
            except KeyError:
                log.warning("job %s of event %s no longer exists; event dropped", event_job, event)
            except Exception:
                log.exception("delivering %s of job %s failed; it is tried again later", event, event_job)
                continue
            store.event_delivered(event_id)
            delivered += 1
        if len(events) < 100:
            return delivered


def _deliver(store: Store, registry: Registry, job_id: str, event: str) -> None:
    if event != "job_finished":
        log.warning("unknown job event %r of job %s: dropped", event, job_id)
        return
    job = store.job(job_id)
    _write_summary(store, registry, job)
    registry.hook.job_finished(job=store.summary(job_id))


def _write_summary(store: Store, registry: Registry, job: Any) -> None:
    """The job's ``summary.json`` artifact, from its task's ``summarize`` over the succeeded outputs."""
    try:
        task_cls = registry.task(job.task)
        ctx = RunContext(job_id=job.id, params=job_params(task_cls, job))
        outputs = (task_cls.Output.model_validate(item.output)
                   for item in store.iter_items(job.id, status="succeeded"))
        summary = task_cls().summarize(outputs, ctx)
        if summary is not None:
            store.put_artifact(job.id, "summary.json", json.dumps(summary, indent=2, default=str).encode(),
                               "application/json")
    except Exception:
        log.exception("summary of job %s failed", job.id)
