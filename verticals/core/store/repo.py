"""Repository functions: every read and write of jobs, items and artifacts goes through :class:`Store`.

Writes that may be repeated (a chunk re-run after a crash or a redelivered
broker message) are written so that repeating them changes nothing: results
are written only onto items still ``pending``, and a job is marked finished by
one conditional UPDATE that only one process can win.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from verticals.core.store.db import ensure_ready, make_engine, scrub_sqlite
from verticals.core.store.secrets import redact_params
from verticals.core.store.tables import Artifact, Item, Job, JobEvent, JobUsage, MetricBucket, utcnow
from verticals.core.text import valid_text

TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("pending", *TERMINAL)
# the Core tables (typed as tables: ``Model.__table__`` is typed as a FromClause)
ITEMS, JOBS, EVENTS = cast(Table, Item.__table__), cast(Table, Job.__table__), cast(Table, JobEvent.__table__)
RESULT_COLUMNS = ("status", "input", "output", "error", "explanation")  # what an export row is made of
EVENT_LEASE = timedelta(minutes=5)  # a claimed event not delivered after this is taken again (its deliverer died)

# The statements that run per batch are built once, and compiled once per database (_Prepared): building
# and compiling cost more than running them. Each finds a batch's items by job and seq through an index
# ((job_id, status, seq) or (job_id, seq)): the batch's rows only, whatever the job's size
# (tests/test_query_plans.py checks the plans on SQLite and PostgreSQL).
_EXHAUSTED = ITEMS.c.attempts >= bindparam("b_max_attempts", type_=Integer)


def _begin_items(count: int, unless_cancelled: bool = False) -> Any:
    """The UPDATE of ``begin_items`` for ``count`` seqs (b_s0, b_s1, ...); ``unless_cancelled``: it changes
    nothing if the job's cancellation was requested (the cancel check of a batch, in the same statement)."""
    cancelled = select(JOBS.c.id).where(JOBS.c.id == bindparam("b_job_id"), JOBS.c.cancel_requested.is_(True))
    return (
        update(ITEMS)
        .where(ITEMS.c.job_id == bindparam("b_job_id"), ITEMS.c.status == "pending",
               ITEMS.c.seq.in_([bindparam(f"b_s{index}", type_=Integer) for index in range(count)]),
               *([~cancelled.exists()] if unless_cancelled else []))
        .values(status=case((_EXHAUSTED, "failed"), else_=ITEMS.c.status),
                error=case((_EXHAUSTED, bindparam("b_error", type_=ITEMS.c.error.type)), else_=ITEMS.c.error),
                attempts=case((_EXHAUSTED, ITEMS.c.attempts), else_=ITEMS.c.attempts + 1),
                updated_at=bindparam("b_now", type_=ITEMS.c.updated_at.type))
        .returning(ITEMS.c.seq, ITEMS.c.status)
    )


_WRITE_RESULTS = {  # (purge inputs, with explanations): a job without ``explain`` never binds the column
    (purge, explained): update(ITEMS)
    .where(ITEMS.c.job_id == bindparam("b_job_id"), ITEMS.c.status == "pending", ITEMS.c.seq == bindparam("b_seq"))
    .values(status=bindparam("b_status"), output=bindparam("b_output"), error=bindparam("b_error"),
            provenance=bindparam("b_provenance"), updated_at=bindparam("b_now"), **({"input": None} if purge else {}),
            **({"explanation": bindparam("b_explanation")} if explained else {}))
    for purge in (False, True) for explained in (False, True)
}
_INSERT_ITEMS = ITEMS.insert().values(
    job_id=bindparam("b_job_id"), seq=bindparam("b_seq"), input=bindparam("b_input"), status=bindparam("b_status"),
    error=bindparam("b_error"), attempts=0, updated_at=bindparam("b_now"))
_PENDING_ITEMS = (
    select(ITEMS.c.seq, ITEMS.c.input, ITEMS.c.attempts)
    .where(ITEMS.c.job_id == bindparam("job_id"), ITEMS.c.status == "pending",
           ITEMS.c.seq >= bindparam("start"), ITEMS.c.seq < bindparam("end"))
    .order_by(ITEMS.c.seq)
)
_CANCEL_REQUESTED = select(JOBS.c.cancel_requested).where(JOBS.c.id == bindparam("job_id"))
_COUNTERS = {f"n_{status}": JOBS.c[f"n_{status}"] + bindparam(f"d_{status}", type_=Integer) for status in STATUSES}
_ADD_TO_COUNTS = {
    start: update(JOBS).where(JOBS.c.id == bindparam("job_id")).values(
        **_COUNTERS,
        **({"started_at": func.coalesce(JOBS.c.started_at, bindparam("now", type_=JOBS.c.started_at.type))}
           if start else {}))
    for start in (False, True)
}


# A finished job's status from its item counters: the one table that both the SQL expression setting
# ``jobs.final_status`` (the UPDATE that finishes a job decides the winner and the status in one statement) and
# :func:`final_status` (Python: ``derive_status`` once nothing is pending) are built from. First row whose
# counters are all above zero wins; none: ``FINAL_STATUS_OTHERWISE``. (tests/test_job_status.py evaluates both
# on every combination of counters.)
FINAL_STATUS_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cancelled", ("cancelled",)),
    ("partial", ("failed", "succeeded")),
    ("failed", ("failed",)),
)
FINAL_STATUS_OTHERWISE = "succeeded"


def final_status(counts: dict[str, int]) -> str:
    """The status of a job with nothing pending, from its item counts (:data:`FINAL_STATUS_RULES`)."""
    for status, needed in FINAL_STATUS_RULES:
        if all(counts.get(counter, 0) > 0 for counter in needed):
            return status
    return FINAL_STATUS_OTHERWISE


def final_status_sql(table: Table) -> Any:
    """:func:`final_status` as a SQL ``CASE`` over ``table``'s ``n_<status>`` counters (the same table)."""
    return case(*((and_(*(table.c[f"n_{counter}"] > 0 for counter in needed)), literal(status, String))
                  for status, needed in FINAL_STATUS_RULES),
                else_=literal(FINAL_STATUS_OTHERWISE, String))


_FINAL_STATUS = final_status_sql(JOBS)
_FINISH = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("job_id"), JOBS.c.finished_at.is_(None), JOBS.c.submitted.is_(True),
           JOBS.c.n_pending == 0)
    .values(finished_at=bindparam("now", type_=JOBS.c.finished_at.type), final_status=_FINAL_STATUS)
    .returning(JOBS.c.final_status)
)
_ADD_EVENT = EVENTS.insert().values(job_id=bindparam("job_id"), event=bindparam("event"),
                                    created_at=bindparam("now", type_=EVENTS.c.created_at.type), attempts=0)


@dataclass
class ItemResult:
    seq: int
    status: str  # succeeded | failed
    output: dict[str, Any] | None = None
    error: str | None = None
    provenance: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None  # the job option ``explain``: Task.explain's, validated


def derive_status(counts: dict[str, int], total: int, started: bool, interrupted: bool = False) -> str:
    """Job status from item counts: queued, running, interrupted (items pending, its local run was stopped:
    :meth:`Store.mark_interrupted`), succeeded, partial, failed, cancelled."""
    pending = counts.get("pending", 0)
    if pending and not started and pending == total and not interrupted:
        return "queued"
    if pending:
        return "interrupted" if interrupted else "running"
    return final_status(counts)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_results = {purge: _Prepared(statement, engine.dialect)
                               for purge, statement in _WRITE_RESULTS.items()}
        self._begin_items: dict[tuple[int, bool], _Prepared] = {}
        self._add_counts = _Prepared(_ADD_TO_COUNTS[False], engine.dialect)
        self._add_usage = _Prepared(_usage_upsert(engine.dialect.name), engine.dialect)
        self._observe = _Prepared(_bucket_upsert(engine.dialect.name), engine.dialect)
        self._insert_items = _Prepared(_INSERT_ITEMS, engine.dialect)

    def session(self) -> Session:
        return self.sessions()

    # jobs -----------------------------------------------------------------
    def create_job(self, task: str, params: dict[str, Any], options: dict[str, Any], chunk_size: int,
                   plugin: str | None = None, plugin_version: str | None = None, tenant: str | None = None) -> str:
        job_id = uuid.uuid4().hex
        with self.session() as session, session.begin():
            session.add(Job(id=job_id, task=task, params=params, options=options, chunk_size=chunk_size,
                            plugin=plugin, plugin_version=plugin_version, total=0, tenant_id=tenant))
        return job_id

    def add_items(self, job_id: str, rows: Iterable[tuple[int, dict[str, Any] | None, str, str | None]]) -> None:
        """Insert items as (seq, input, status, error); status is ``pending`` or ``failed`` (invalid input).

        One multi-row INSERT (executemany) per call: callers stream a job's items through in batches.
        """
        rows_list = list(rows)
        values = [{"b_seq": seq, "b_input": data, "b_status": status, "b_error": error}
                  for seq, data, status, error in rows_list]
        if values:
            added: dict[str, int] = {}
            for _seq, _data, status, _error in rows_list:
                added[status] = added.get(status, 0) + 1
            with self.engine.begin() as connection:
                self._insert_items.executemany(connection, {"b_job_id": job_id, "b_now": utcnow()}, values)
                _add_to_counts(connection, job_id, added)

    def mark_submitted(self, job_id: str, total: int, options: dict[str, Any] | None = None,
                       input_columns: list[Any] | None = None) -> None:
        """The job's items are all stored: it can run. ``options``: its options as they stay (the submitter's
        mark, which let another process remove a submission that died half-way, is dropped);
        ``input_columns``: the flat columns of its stored inputs (:class:`verticals.core.io.InputColumns`)."""
        values: dict[str, Any] = {"total": total, "submitted": True}
        if options is not None:
            values["options"] = options
        if input_columns is not None:
            values["input_columns"] = input_columns
        with self.session() as session, session.begin():
            session.execute(update(Job).where(Job.id == job_id).values(**values))

    def job(self, job_id: str) -> Job:
        with self.session() as session:
            job = session.get(Job, job_id)
            if job is None:
                matches = session.scalars(select(Job).where(Job.id.startswith(job_id)).limit(2)).all()
                if len(matches) == 1:
                    return matches[0]
                raise KeyError(f"no job {job_id!r}" + (" (prefix is ambiguous)" if matches else ""))
            return job

    def list_jobs(self, limit: int = 20, offset: int = 0, tenant: str | None = None) -> list[Job]:
        """Newest first; ``tenant`` keeps only that tenant's jobs (None: every job)."""
        with self.session() as session:
            query = select(Job).order_by(Job.created_at.desc()).limit(limit).offset(offset)
            if tenant is not None:
                query = query.where(Job.tenant_id == tenant)
            return list(session.scalars(query))

    def counts(self, job_id: str) -> dict[str, int]:
        """Items per status (statuses with none left out), from the job's counters: no item is read."""
        with self.session() as session:
            row = session.execute(select(*(JOBS.c[f"n_{s}"] for s in STATUSES)).where(JOBS.c.id == job_id)).first()
        return {status: count for status, count in zip(STATUSES, row or (), strict=False) if count}

    def counts_from_items(self, job_id: str) -> dict[str, int]:
        """Items per status counted from the items themselves (reads every item of the job: checks only)."""
        with self.session() as session:
            rows = session.execute(
                select(Item.status, func.count()).where(Item.job_id == job_id).group_by(Item.status)
            )
            return {status: count for status, count in rows}

    def summary(self, job_id: str) -> dict[str, Any]:
        """What ``jobs status`` prints: never item contents."""
        job = self.job(job_id)
        counts = {status: getattr(job, f"n_{status}") for status in STATUSES if getattr(job, f"n_{status}")}
        done = sum(counts.get(s, 0) for s in TERMINAL)
        status = job.final_status or derive_status(counts, job.total, job.started_at is not None,
                                                   job.interrupted_at is not None)
        if status in (*TERMINAL, "partial") and job.finished_at is None:
            status = "running"  # every item is done, but the job is not finalised yet (summary, hook)
        elapsed = None
        if job.started_at:
            end = job.finished_at or utcnow()
            started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=end.tzinfo)
            elapsed = max(0.0, (end - started).total_seconds())
        running = summarize_progress(job, done) if status in ("queued", "running") else None
        partial = running["done"] if running else 0.0
        return {
            "id": job.id, "task": job.task, "status": status, "total": job.total, "done": done,
            # done / total, counting what the running items reported of themselves (RunContext.progress)
            "progress": min(1.0, (done + partial) / job.total) if job.total else 1.0, "counts": counts,
            "item_progress": running,
            "params": redact_params(job.params),  # secret parameters: a mask and a fingerprint, never the value
            "options": job.options, "plugin": job.plugin, "plugin_version": job.plugin_version,
            "cancel_requested": job.cancel_requested, "created_at": _iso(job.created_at),
            "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at), "elapsed_s": elapsed,
            "tenant": job.tenant_id, "usage": self.job_usage(job.id),
        }

    def job_usage(self, job_id: str) -> dict[str, Any]:
        """What the job used (``job_usage``, every day summed): ``items`` (that ran and got a result), ``wall_s``
        (its batches' time), ``model_s`` and ``tokens`` (its models'), ``models`` (per model and device)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(USAGE.c.model, USAGE.c.device, func.sum(USAGE.c.item_count), func.sum(USAGE.c.tokens),
                       func.sum(USAGE.c.calls), func.sum(USAGE.c.model_s), func.sum(USAGE.c.wall_s),
                       func.max(USAGE.c.peak_memory_bytes))
                .where(USAGE.c.job_id == job_id).group_by(USAGE.c.model, USAGE.c.device)).all()
        return fold_usage(rows)

    def mark_interrupted(self, job_id: str, interrupted: bool = True) -> None:
        """Stamp a job whose local run was stopped (Ctrl-C, SIGTERM) with items pending: its status is
        ``interrupted`` until a chunk of it runs again (:func:`~verticals.core.jobs.engine.run_chunk` clears the
        stamp). A finished job is left alone."""
        with self.session() as session, session.begin():
            session.execute(update(Job).where(Job.id == job_id, Job.finished_at.is_(None))
                            .values(interrupted_at=utcnow() if interrupted else None))

    def release_attempts(self, job_id: str, seqs: Iterable[int]) -> None:
        """Give back the attempt :meth:`begin_batch` counted for items still pending whose batch was stopped by
        an interrupt (not by the items: their next run batches them as usual, not one at a time)."""
        seqs = list(seqs)
        if not seqs:
            return
        with self.session() as session, session.begin():
            session.execute(update(Item).where(Item.job_id == job_id, Item.status == "pending",
                                               Item.seq.in_(seqs), Item.attempts > 0)
                            .values(attempts=Item.attempts - 1))

    def request_cancel(self, job_id: str) -> None:
        with self.session() as session, session.begin():
            session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))

    def cancel_requested(self, job_id: str) -> bool:
        with self.engine.connect() as connection:
            return bool(connection.scalar(_CANCEL_REQUESTED, {"job_id": job_id}))

    # chunks ---------------------------------------------------------------
    def chunk_ranges(self, job_id: str, only_pending: bool = True) -> list[tuple[int, int]]:
        job = self.job(job_id)
        ranges = [(start, min(start + job.chunk_size, job.total)) for start in range(0, job.total, job.chunk_size)]
        if not only_pending:
            return ranges
        with self.session() as session:
            pending = set(session.scalars(
                select(Item.seq // job.chunk_size).where(Item.job_id == job_id, Item.status == "pending").distinct()
            ))
        return [r for r in ranges if r[0] // job.chunk_size in pending]

    def begin_items(self, job_id: str, seqs: list[int], max_attempts: int, mark_started: bool = True) -> set[int]:
        """Count an attempt on these pending items, right before they run; fail those past ``max_attempts``.

        Returns the seqs that were failed instead (they must not run). Counting per batch, not per chunk,
        means that only the items in flight when a worker died carry the extra attempt. One statement on
        the items, found through (job_id, status, seq): the items of this batch only, whatever the job's size.
        """
        return self._begin(job_id, seqs, max_attempts, mark_started, unless_cancelled=False) or set()

    def begin_batch(self, job_id: str, seqs: list[int], max_attempts: int,
                    mark_started: bool = True) -> set[int] | None:
        """:meth:`begin_items` unless the job's cancellation was requested: then nothing is changed and the
        answer is None. The cancel check is part of the UPDATE (a batch costs no statement more for it)."""
        return self._begin(job_id, seqs, max_attempts, mark_started, unless_cancelled=True)

    def _begin(self, job_id: str, seqs: list[int], max_attempts: int, mark_started: bool,
               unless_cancelled: bool) -> set[int] | None:
        error = f"gave up after {max_attempts} attempts (the item kept crashing or timing out its worker)"
        now = utcnow()
        seqs = list(seqs)
        if not seqs:
            return None if unless_cancelled and self.cancel_requested(job_id) else set()
        key = (len(seqs), unless_cancelled)
        statement = self._begin_items.get(key)
        if statement is None:  # one per batch length (a chunk's last batch is shorter)
            statement = self._begin_items[key] = _Prepared(_begin_items(*key), self.engine.dialect)
        with self.engine.begin() as connection:
            rows = list(statement.execute(connection, {"b_job_id": job_id, "b_max_attempts": max_attempts,
                                                       "b_error": error, "b_now": now,
                                                       **{f"b_s{i}": seq for i, seq in enumerate(seqs)}}))
            if not rows and unless_cancelled and connection.scalar(_CANCEL_REQUESTED, {"job_id": job_id}):
                return None  # (no row: cancelled, or every item already done by another run of the chunk)
            given_up = {seq for seq, status in rows if status == "failed"}
            # the job row last (after the items), as in every transaction: no lock-order deadlock
            _add_to_counts(connection, job_id, {"pending": -len(given_up), "failed": len(given_up)},
                           started_at=now if mark_started else None)
            return given_up

    def pending_items(self, job_id: str, start: int, end: int,
                      with_attempts: bool = False) -> list[tuple[Any, ...]]:
        """(seq, input) of the chunk's pending items, in order; (seq, input, attempts) ``with_attempts``."""
        with self.engine.connect() as connection:
            rows = connection.execute(_PENDING_ITEMS, {"job_id": job_id, "start": start, "end": end})
            return [(seq, data, attempts) if with_attempts else (seq, data) for seq, data, attempts in rows]

    def chunk_states(self, job_id: str) -> dict[int, tuple[int, bool]]:
        """Per chunk start: (pending items, started). A chunk is started once any of its items had an attempt."""
        job = self.job(job_id)
        chunk = Item.seq // job.chunk_size
        with self.session() as session:
            rows = session.execute(
                select(chunk, func.sum(case((Item.status == "pending", 1), else_=0)), func.max(Item.attempts))
                .where(Item.job_id == job_id).group_by(chunk)
            )
            return {int(index) * job.chunk_size: (int(pending or 0), bool(attempts))
                    for index, pending, attempts in rows}

    def update_options(self, job_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into the job's options (e.g. an executor's bookkeeping); returns the new options."""
        with self.session() as session, session.begin():
            job = session.get(Job, job_id, with_for_update=True)
            if job is None:
                raise KeyError(f"no job {job_id!r}")
            job.options = {**(job.options or {}), **values}
            return dict(job.options)

    def write_results(self, job_id: str, results: Iterable[ItemResult], purge_inputs: bool = False,
                      clear_progress: str | None = None, usage: BatchUsage | None = None) -> int:
        """Write results onto items still pending; already-finished items are left alone (idempotent).

        One executemany UPDATE per result status (each row found by (job_id, status, seq)), and the
        job's counters, in one transaction. Returns how many items were written. ``clear_progress``: the
        key of the progress entry the batch's task reported (:meth:`set_progress`), removed in the same
        transaction: its items now count as done, so the job's progress never counts them twice.
        ``usage``: what the batch used, added to the job's usage (``job_usage``) in the same transaction, with the
        items written (succeeded or failed) as its items: a result written once is metered once.
        """
        groups: dict[str, list[ItemResult]] = {}
        for result in results:
            if result.status not in TERMINAL:
                raise ValueError(f"an item result is {'/'.join(TERMINAL)}, not {result.status!r}")
            groups.setdefault(result.status, []).append(result)
        written: dict[str, int] = {}
        now = utcnow()
        with self.engine.begin() as connection:
            for status, group in groups.items():
                fixed = {"b_job_id": job_id, "b_status": status, "b_now": now}
                shared = all(result.provenance is group[0].provenance for result in group)
                if shared:  # a batch's results share one provenance: serialised once
                    fixed["b_provenance"] = group[0].provenance
                explained = any(result.explanation is not None for result in group)
                rows = [{"b_seq": r.seq, "b_output": r.output, "b_error": r.error and valid_text(r.error),
                         **({} if shared else {"b_provenance": r.provenance}),
                         **({"b_explanation": r.explanation} if explained else {})} for r in group]
                written[status] = self._write_results[purge_inputs, explained].executemany(connection, fixed, rows)
            if written:  # the job's counters, as _add_to_counts does, without building the statement each time
                self._add_counts.execute(connection, {"job_id": job_id, "d_pending": -sum(written.values()),
                                                      **{f"d_{status}": written.get(status, 0) for status in TERMINAL}})
            if clear_progress is not None:
                _change_progress(connection, job_id, clear_progress, None)
            if usage is not None:
                ran = written.get("succeeded", 0) + written.get("failed", 0)
                rows = _usage_rows(job_id, usage, ran, now)
                names = list(rows[0])
                self._add_usage.executemany(connection, {}, [{name: row[name] for name in names} for row in rows])
                seen = [("batch_seconds", float(usage.wall_s))]
                if usage.queue_wait_s is not None:
                    seen.append(("queue_wait_seconds", max(0.0, float(usage.queue_wait_s))))
                self._observe.executemany(connection, {}, [{"m_name": name, "m_le": bucket_of(name, value),
                                                            "m_seconds": value} for name, value in seen])
        return sum(written.values())

    # progress within items (RunContext.progress) ---------------------------------------------------------
    def set_progress(self, job_id: str, key: str, entry: dict[str, Any] | None) -> bool:
        """Set (``None``: remove) the progress entry ``key`` (a running chunk's start) of an unfinished job.

        One statement, whatever else runs: chunks of the same job running in parallel (workers) each keep
        their own entry. Returns whether the job was changed (False: no such job, or it is finished)."""
        with self.engine.begin() as connection:
            return _change_progress(connection, job_id, key, entry)

    def progress(self, job_id: str) -> dict[str, dict[str, Any]]:
        """The job's progress entries (running chunk -> its latest report); empty when none."""
        with self.engine.connect() as connection:
            value = connection.scalar(select(JOBS.c.progress).where(JOBS.c.id == job_id))
        return dict(value or {})

    def cancel_pending(self, job_id: str, start: int | None = None, end: int | None = None) -> int:
        conditions = [ITEMS.c.job_id == job_id, ITEMS.c.status == "pending"]
        if start is not None and end is not None:
            conditions += [ITEMS.c.seq >= start, ITEMS.c.seq < end]
        with self.session() as session, session.begin():
            count = _rowcount(session.execute(
                update(ITEMS).where(*conditions).values(status="cancelled", error="job cancelled", updated_at=utcnow())
            ))
            _add_to_counts(session, job_id, {"pending": -count, "cancelled": count})
            return count

    def try_finish(self, job_id: str) -> str | None:
        """Finish the job if no item is pending. Exactly one caller wins; it gets the final status.

        One transaction: one conditional UPDATE sets ``finished_at`` and ``final_status`` (derived from the
        counters in SQL by :data:`FINAL_STATUS_RULES`, the table :func:`derive_status` reads too) and, for the
        winner, a ``job_finished`` row goes into the ``job_events`` outbox. A process dying at any point leaves
        either an unfinished job (the next caller finishes it) or a finished job with its event pending
        (delivered by the next :func:`verticals.core.jobs.engine.deliver_job_events`): never a finished job whose
        event is lost.

        "No item pending" is the job's counter (kept in the transaction of every status change), not a
        search of its items: that is one row whatever the job's size, and a concurrent writer's change to
        it is seen by this UPDATE (the row is locked and its condition checked again).
        """
        now = utcnow()
        with self.engine.begin() as connection:
            status = connection.execute(_FINISH, {"job_id": job_id, "now": now}).scalar()
            if status is None:
                return None
            connection.execute(_ADD_EVENT, {"job_id": job_id, "event": "job_finished", "now": now})
        return str(status)

    # job events (the outbox) ---------------------------------------------
    def pending_events(self, job_id: str | None = None, lease: timedelta = EVENT_LEASE,
                       limit: int = 100) -> list[tuple[int, str, str]]:
        """(event id, job id, event) of the events not delivered and not claimed in the last ``lease``
        (a claim older than that belongs to a deliverer that died), oldest first."""
        query = (select(EVENTS.c.id, EVENTS.c.job_id, EVENTS.c.event)
                 .where(EVENTS.c.delivered_at.is_(None),
                        or_(EVENTS.c.claimed_at.is_(None), EVENTS.c.claimed_at < utcnow() - lease))
                 .order_by(EVENTS.c.id).limit(limit))
        if job_id is not None:
            query = query.where(EVENTS.c.job_id == job_id)
        with self.engine.connect() as connection:
            return [(event_id, job, event) for event_id, job, event in connection.execute(query)]

    def claim_event(self, event_id: int, lease: timedelta = EVENT_LEASE) -> bool:
        """Take an event for delivery; only one caller wins (until ``lease`` has passed without delivery)."""
        now = utcnow()
        with self.engine.begin() as connection:
            return bool(connection.execute(
                update(EVENTS).where(EVENTS.c.id == event_id, EVENTS.c.delivered_at.is_(None),
                                     or_(EVENTS.c.claimed_at.is_(None), EVENTS.c.claimed_at < now - lease))
                .values(claimed_at=now, attempts=EVENTS.c.attempts + 1)
            ).rowcount)

    def event_delivered(self, event_id: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(EVENTS).where(EVENTS.c.id == event_id).values(delivered_at=utcnow()))

    def reset_failed(self, job_id: str) -> int:
        """Put failed items back to pending (attempts reset) and reopen the job.

        Items whose *input* failed validation stay failed: re-running cannot change that (and would crash the chunk).
        """
        with self.session() as session, session.begin():
            count = _rowcount(session.execute(
                update(ITEMS).where(ITEMS.c.job_id == job_id, ITEMS.c.status == "failed", ITEMS.c.input.is_not(None),
                                    ITEMS.c.error.not_like("invalid input:%"))
                .values(status="pending", error=None, output=None, explanation=None, attempts=0,
                        updated_at=utcnow())
            ))
            if count:
                _add_to_counts(session, job_id, {"failed": -count, "pending": count},
                               also={"finished_at": None, "final_status": None, "cancel_requested": False})
        return count

    # results --------------------------------------------------------------
    def iter_items(self, job_id: str, status: str | None = None, offset: int = 0, limit: int | None = None,
                   page: int = 1000) -> Iterator[Item]:
        """Items in input order, fetched in pages (constant memory)."""
        last_seq, yielded = offset - 1, 0
        while limit is None or yielded < limit:
            size = page if limit is None else min(page, limit - yielded)
            with self.session() as session:
                query = select(Item).where(Item.job_id == job_id, Item.seq > last_seq).order_by(Item.seq).limit(size)
                if status:
                    query = query.where(Item.status == status)
                rows = list(session.scalars(query))
            if not rows:
                return
            yield from rows
            yielded += len(rows)
            last_seq = rows[-1].seq

    def iter_rows(self, job_id: str, columns: Iterable[str] = RESULT_COLUMNS, status: str | None = None,
                  page: int = 2000) -> Iterator[Any]:
        """Items in input order as rows of ``columns`` (and ``seq``) only, fetched in pages (constant memory):
        what the exports read. Unlike :meth:`iter_items`, no ORM object is built and no column that is not
        asked for is read or decoded (an item's provenance is its largest JSON); rows have attribute access."""
        wanted = [ITEMS.c[name] for name in dict.fromkeys(("seq", *columns))]
        last_seq = -1
        while True:
            query = select(*wanted).where(ITEMS.c.job_id == job_id, ITEMS.c.seq > last_seq)
            if status:
                query = query.where(ITEMS.c.status == status)
            with self.engine.connect() as connection:
                rows = connection.execute(query.order_by(ITEMS.c.seq).limit(page)).all()
            if not rows:
                return
            yield from rows
            last_seq = rows[-1].seq

    def purge_inputs(self, job_id: str) -> int:
        """Delete every item's input (failed ones too): the job option ``purge_inputs``, at job end.

        On SQLite the write-ahead log is then checkpointed and truncated, so that no copy of a purged
        input stays in ``*-wal`` (``secure_delete`` zeroes it in the database file). See docs/security.md.
        """
        with self.session() as session, session.begin():
            count = _rowcount(session.execute(
                update(Item).where(Item.job_id == job_id, Item.input.is_not(None)).values(input=None)
            ))
            session.execute(update(Job).where(Job.id == job_id).values(input_columns=None))  # none are left
        scrub_sqlite(self.engine)
        return count

    # artifacts ------------------------------------------------------------
    def put_artifact(self, job_id: str, name: str, content: bytes, media_type: str) -> None:
        with self.session() as session, session.begin():
            existing = session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
            if existing:
                existing.content, existing.media_type = content, media_type
            else:
                session.add(Artifact(job_id=job_id, name=name, content=content, media_type=media_type))

    def get_artifact(self, job_id: str, name: str) -> Artifact | None:
        with self.session() as session:
            return session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))


@dataclass
class BatchUsage:
    """What one batch of a job used: its wall seconds and, per (model, device), ``(seconds, tokens, calls, peak
    memory bytes or None)``."""

    tenant: str | None
    task: str
    wall_s: float
    models: dict[tuple[str, str], tuple[float, int, int, int | None]]
    queue_wait_s: float | None = None  # the first batch of a chunk: seconds from the job's creation to its start


USAGE = cast(Table, JobUsage.__table__)
BUCKETS = cast(Table, MetricBucket.__table__)
# the upper bounds of the histograms' buckets (seconds); "+Inf" catches the rest
BUCKET_BOUNDS: dict[str, tuple[float, ...]] = {
    "batch_seconds": (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    "queue_wait_seconds": (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
}


def bucket_of(name: str, seconds: float) -> str:
    """The ``le`` label of the bucket ``seconds`` falls in, for histogram ``name``."""
    for bound in BUCKET_BOUNDS[name]:
        if seconds <= bound:
            return f"{bound:g}"
    return "+Inf"


def _bucket_upsert(dialect: str) -> Any:
    """The upsert of one observation into its bucket (bind names ``m_*``): count + 1, sum + seconds."""
    from sqlalchemy.dialects import postgresql, sqlite

    upsert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = upsert(BUCKETS).values(name=bindparam("m_name", type_=String()), le=bindparam("m_le", type_=String()),
                                       count=1, sum_s=bindparam("m_seconds", type_=BUCKETS.c.sum_s.type))
    return statement.on_conflict_do_update(
        index_elements=[BUCKETS.c.name, BUCKETS.c.le],
        set_={"count": BUCKETS.c.count + 1, "sum_s": BUCKETS.c.sum_s + statement.excluded.sum_s})


def fold_usage(rows: Iterable[Any]) -> dict[str, Any]:
    """Usage rows (model, device, items, tokens, calls, model_s, wall_s, peak memory), summed: the totals and one
    entry per model and device (the most model time first)."""
    out: dict[str, Any] = {"items": 0, "wall_s": 0.0, "model_s": 0.0, "tokens": 0, "models": []}
    for model, device, items, tokens, calls, model_s, wall_s, peak in rows:
        out["items"] += int(items or 0)
        out["wall_s"] += float(wall_s or 0.0)
        if model:
            out["model_s"] += float(model_s or 0.0)
            out["tokens"] += int(tokens or 0)
            out["models"].append({"model": model, "device": device, "model_s": float(model_s or 0.0),
                                  "tokens": int(tokens or 0), "calls": int(calls or 0),
                                  "peak_memory_bytes": int(peak) if peak is not None else None})
    out["models"].sort(key=lambda entry: (-entry["model_s"], entry["model"], entry["device"]))
    return out


def _usage_upsert(dialect: str) -> Any:
    """The upsert of one usage row (bind names ``u_*``): inserted, or added to the row of the same job, day, model
    and device (an atomic increment: chunks of one job writing at once on several workers add up, none is lost)."""
    from sqlalchemy.dialects import postgresql, sqlite

    upsert: Any
    if dialect == "postgresql":
        upsert = postgresql.insert
    elif dialect == "sqlite":
        upsert = sqlite.insert
    else:  # pragma: no cover - the store runs on SQLite and PostgreSQL
        raise RuntimeError(f"usage metering does not support the {dialect} database")
    statement = upsert(USAGE).values({column.name: bindparam(f"u_{column.name}", type_=column.type)
                                      for column in USAGE.columns})
    new = statement.excluded
    peak = case((USAGE.c.peak_memory_bytes.is_(None), new.peak_memory_bytes),
                (new.peak_memory_bytes > USAGE.c.peak_memory_bytes, new.peak_memory_bytes),
                else_=USAGE.c.peak_memory_bytes)
    return statement.on_conflict_do_update(
        index_elements=[USAGE.c.job_id, USAGE.c.day, USAGE.c.model, USAGE.c.device],
        set_={"item_count": USAGE.c.item_count + new.item_count, "tokens": USAGE.c.tokens + new.tokens,
              "calls": USAGE.c.calls + new.calls, "model_s": USAGE.c.model_s + new.model_s,
              "wall_s": USAGE.c.wall_s + new.wall_s, "peak_memory_bytes": peak, "updated_at": new.updated_at})


def _usage_rows(job_id: str, usage: BatchUsage, items: int, now: Any) -> list[dict[str, Any]]:
    """A batch's usage rows of today (UTC): the job's row (items, wall seconds), then one per model and device."""
    shared = {"u_job_id": job_id, "u_day": now.date().isoformat(), "u_tenant_id": usage.tenant,
              "u_task": usage.task, "u_updated_at": now}
    rows = [{**shared, "u_model": "", "u_device": "", "u_item_count": items, "u_tokens": 0, "u_calls": 0,
             "u_model_s": 0.0, "u_wall_s": float(usage.wall_s), "u_peak_memory_bytes": None}]
    rows += [{**shared, "u_model": model[:200], "u_device": device[:32], "u_item_count": 0, "u_tokens": int(tokens),
              "u_calls": int(calls), "u_model_s": float(seconds), "u_wall_s": 0.0, "u_peak_memory_bytes": peak}
             for (model, device), (seconds, tokens, calls, peak) in sorted(usage.models.items())]
    return rows


class _Prepared:
    """A statement compiled once for a dialect and run through the DBAPI's executemany.

    The values go through SQLAlchemy's own bind processors (JSON, datetimes), so what is stored is what
    ``connection.execute`` stores; only its bookkeeping per row of an executemany (about 25 µs, more than
    a trivial task costs per item) is skipped.
    """

    def __init__(self, statement: Any, dialect: Any):
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = list(compiled.positiontup or ()) if compiled.positional else None
        self.processors = {name: processor for name, bind in compiled.binds.items()
                           if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))}
        self.defaults = {name: self._process(name, bind.effective_value) for name, bind in compiled.binds.items()
                         if not bind.required}

    def _process(self, name: str, value: Any) -> Any:
        processor = self.processors.get(name)
        return processor(value) if processor else value

    def execute(self, connection: Connection, values: dict[str, Any]) -> Any:
        """Run once with ``values`` (bind name -> value); returns the result."""
        values = {**self.defaults, **{name: self._process(name, value) for name, value in values.items()}}
        return connection.exec_driver_sql(
            self.sql, tuple(values[name] for name in self.order) if self.order is not None else values)

    def executemany(self, connection: Connection, fixed: dict[str, Any], rows: list[dict[str, Any]]) -> int:
        """Run once per row of ``rows`` (bind name -> value), with ``fixed`` for every row; returns the rowcount."""
        if not rows:
            return 0
        base = {**self.defaults, **{name: self._process(name, value) for name, value in fixed.items()}}
        names = list(rows[0])  # every row binds the same names
        processors = [self.processors.get(name) for name in names]
        params: list[Any] = []
        if self.order is None:  # named parameters (PostgreSQL)
            for row in rows:
                values = dict(base)
                for name, processor in zip(names, processors, strict=True):
                    values[name] = processor(row[name]) if processor else row[name]
                params.append(values)
        else:  # positional parameters (SQLite): fill the row's slots of a template
            template = [base.get(name) for name in self.order]
            slots = [[i for i, bound in enumerate(self.order) if bound == name] for name in names]
            for row in rows:
                slotted = list(template)
                for name, processor, where in zip(names, processors, slots, strict=True):
                    value = processor(row[name]) if processor else row[name]
                    for i in where:
                        slotted[i] = value
                params.append(tuple(slotted))
        return connection.exec_driver_sql(self.sql, params).rowcount or 0


def _add_to_counts(connection: Session | Connection, job_id: str, deltas: dict[str, int],
                   started_at: Any = None, also: dict[str, Any] | None = None) -> None:
    """Add ``deltas`` (status -> change) to the job's item counters in the caller's transaction; also set
    ``started_at`` if it is not set yet, and ``also`` (more job columns). Called after the items were
    changed, so that every transaction locks the job row last."""
    if not any(deltas.values()) and started_at is None and not also:
        return
    params = {"job_id": job_id, **{f"d_{status}": deltas.get(status, 0) for status in STATUSES}}
    if also:
        connection.execute(_ADD_TO_COUNTS[False].values(**also), params)
    elif started_at is None:
        connection.execute(_ADD_TO_COUNTS[False], params)
    else:
        connection.execute(_ADD_TO_COUNTS[True], {**params, "now": started_at})


def _change_progress(connection: Connection, job_id: str, key: str, entry: dict[str, Any] | None) -> bool:
    """Set or remove one key of ``jobs.progress`` in one statement (SQLite's json_set/json_remove, PostgreSQL's
    jsonb operators): two chunks reporting at once cannot lose each other's entry (no read-modify-write)."""
    if not key.isdigit():
        raise ValueError(f"a progress key is a chunk start, not {key!r}")
    params: dict[str, Any] = {"job_id": job_id, "key": key}
    if connection.dialect.name == "sqlite":
        path = f'$."{key}"'
        if entry is None:
            value = f"json_remove(progress, '{path}')"
        else:
            value = f"json_set(COALESCE(progress, '{{}}'), '{path}', json(:entry))"
    elif entry is None:
        value = "(progress::jsonb - CAST(:key AS text))::json"
    else:
        value = ("(COALESCE(progress::jsonb, '{}'::jsonb) || jsonb_build_object(CAST(:key AS text), "
                 "CAST(:entry AS jsonb)))::json")
    if entry is not None:
        params["entry"] = json.dumps(entry)
    condition = "" if entry is None else " AND finished_at IS NULL"
    result = connection.execute(text(f"UPDATE jobs SET progress = {value} WHERE id = :job_id{condition}"), params)
    return bool(_rowcount(result))


def summarize_progress(job: Any, done: int) -> dict[str, Any] | None:
    """What a job's progress entries add up to: ``items`` running, ``fraction`` of them done (in items),
    the latest ``note`` and when it was reported (``updated_at``); None when no running batch reported."""
    entries = [entry for entry in (job.progress or {}).values() if isinstance(entry, dict)]
    if not entries or job.finished_at is not None:
        return None
    items = sum(int(entry.get("items") or 0) for entry in entries)
    partial = 0.0
    for entry in entries:
        total, count = entry.get("total"), int(entry.get("items") or 0)
        if total:
            partial += min(max(float(entry.get("done") or 0) / float(total), 0.0), 1.0) * count
    # never past the items not done yet (a report read just before its batch's results were written)
    partial = min(partial, max(0, job.total - done))
    latest = max(entries, key=lambda entry: str(entry.get("at") or ""))
    return {"items": items, "done": round(partial, 3), "note": latest.get("note"),
            "step": latest.get("done"), "steps": latest.get("total"), "updated_at": latest.get("at")}


def _rowcount(result: Any) -> int:
    """The rows an UPDATE/DELETE changed (a DML statement's result is a CursorResult)."""
    return cast(CursorResult[Any], result).rowcount or 0


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def open_store(url: str | None = None) -> Store:
    """The store at ``url`` (default: ``VERTICALS_DATABASE_URL`` or the SQLite file), schema checked."""
    from verticals.config import database_url

    engine = make_engine(url or database_url())
    ensure_ready(engine)
    return Store(engine)
