"""Repository functions: every read and write of jobs, items and artifacts goes through :class:`Store`.

Writes that may be repeated (a chunk re-run after a crash or a redelivered
broker message) are written so that repeating them changes nothing: results
are written only onto items still ``pending``, and a job is marked finished by
one conditional UPDATE that only one process can win.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from verticals.core.store.db import ensure_ready, make_engine, scrub_sqlite
from verticals.core.store.secrets import redact_params
from verticals.core.store.tables import Artifact, Item, Job, utcnow

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class ItemResult:
    seq: int
    status: str  # succeeded | failed
    output: dict[str, Any] | None = None
    error: str | None = None
    provenance: dict[str, Any] | None = None


def derive_status(counts: dict[str, int], total: int, started: bool) -> str:
    """Job status from item counts: queued, running, succeeded, partial, failed, cancelled."""
    pending = counts.get("pending", 0)
    if pending and not started and pending == total:
        return "queued"
    if pending:
        return "running"
    if counts.get("cancelled"):
        return "cancelled"
    failed, succeeded = counts.get("failed", 0), counts.get("succeeded", 0)
    if failed and succeeded:
        return "partial"
    if failed:
        return "failed"
    return "succeeded"


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

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
        """Insert items as (seq, input, status, error); status is ``pending`` or ``failed`` (invalid input)."""
        values = [{"job_id": job_id, "seq": seq, "input": data, "status": status, "error": error, "attempts": 0,
                   "updated_at": utcnow()} for seq, data, status, error in rows]
        if values:
            with self.session() as session, session.begin():
                session.execute(Item.__table__.insert(), values)

    def mark_submitted(self, job_id: str, total: int) -> None:
        with self.session() as session, session.begin():
            session.execute(update(Job).where(Job.id == job_id).values(total=total, submitted=True))

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
        with self.session() as session:
            rows = session.execute(
                select(Item.status, func.count()).where(Item.job_id == job_id).group_by(Item.status)
            )
            return {status: count for status, count in rows}

    def summary(self, job_id: str) -> dict[str, Any]:
        """What ``jobs status`` prints: never item contents."""
        job = self.job(job_id)
        counts = self.counts(job.id)
        done = sum(counts.get(s, 0) for s in TERMINAL)
        status = job.final_status or derive_status(counts, job.total, job.started_at is not None)
        if status in (*TERMINAL, "partial") and job.finished_at is None:
            status = "running"  # every item is done, but the job is not finalised yet (summary, hook)
        elapsed = None
        if job.started_at:
            end = job.finished_at or utcnow()
            started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=end.tzinfo)
            elapsed = max(0.0, (end - started).total_seconds())
        return {
            "id": job.id, "task": job.task, "status": status, "total": job.total, "done": done,
            "progress": (done / job.total) if job.total else 1.0, "counts": counts,
            "params": redact_params(job.params),  # secret parameters: a mask and a fingerprint, never the value
            "options": job.options, "plugin": job.plugin, "plugin_version": job.plugin_version,
            "cancel_requested": job.cancel_requested, "created_at": _iso(job.created_at),
            "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at), "elapsed_s": elapsed,
            "tenant": job.tenant_id,
        }

    def request_cancel(self, job_id: str) -> None:
        with self.session() as session, session.begin():
            session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))

    def cancel_requested(self, job_id: str) -> bool:
        with self.session() as session:
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

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
        means that only the items in flight when a worker died carry the extra attempt. One statement.
        """
        exhausted = Item.attempts >= max_attempts
        error = f"gave up after {max_attempts} attempts (the item kept crashing or timing out its worker)"
        with self.session() as session, session.begin():
            if mark_started:
                session.execute(
                    update(Job).where(Job.id == job_id, Job.started_at.is_(None)).values(started_at=utcnow()))
            rows = session.execute(
                update(Item).where(Item.job_id == job_id, Item.seq.in_(seqs), Item.status == "pending").values(
                    status=case((exhausted, "failed"), else_=Item.status),
                    error=case((exhausted, error), else_=Item.error),
                    attempts=case((exhausted, Item.attempts), else_=Item.attempts + 1),
                    updated_at=utcnow(),
                ).returning(Item.seq, Item.status)
            )
            return {seq for seq, status in rows if status == "failed"}

    def pending_items(self, job_id: str, start: int, end: int,
                      with_attempts: bool = False) -> list[tuple[Any, ...]]:
        """(seq, input) of the chunk's pending items, in order; (seq, input, attempts) ``with_attempts``."""
        with self.session() as session:
            rows = session.execute(
                select(Item.seq, Item.input, Item.attempts)
                .where(Item.job_id == job_id, Item.seq >= start, Item.seq < end, Item.status == "pending")
                .order_by(Item.seq)
            )
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
            job.options = {**(job.options or {}), **values}
            return dict(job.options)

    def write_results(self, job_id: str, results: Iterable[ItemResult], purge_inputs: bool = False) -> int:
        """Write results onto items still pending; already-finished items are left alone (idempotent)."""
        written = 0
        with self.session() as session, session.begin():
            for result in results:
                values: dict[str, Any] = {"status": result.status, "output": result.output, "error": result.error,
                                          "provenance": result.provenance, "updated_at": utcnow()}
                if purge_inputs:
                    values["input"] = None
                written += session.execute(
                    update(Item).where(Item.job_id == job_id, Item.seq == result.seq, Item.status == "pending")
                    .values(**values)
                ).rowcount or 0
        return written

    def cancel_pending(self, job_id: str, start: int | None = None, end: int | None = None) -> int:
        conditions = [Item.job_id == job_id, Item.status == "pending"]
        if start is not None and end is not None:
            conditions += [Item.seq >= start, Item.seq < end]
        with self.session() as session, session.begin():
            return session.execute(
                update(Item).where(*conditions).values(status="cancelled", error="job cancelled", updated_at=utcnow())
            ).rowcount or 0

    def try_finish(self, job_id: str) -> str | None:
        """Mark the job finished if no item is pending. Exactly one caller wins; it gets the final status."""
        no_pending = ~exists().where(Item.job_id == job_id, Item.status == "pending")
        with self.session() as session, session.begin():
            won = session.execute(
                update(Job).where(Job.id == job_id, Job.finished_at.is_(None), Job.submitted.is_(True), no_pending)
                .values(finished_at=utcnow())
            ).rowcount
            if not won:
                return None
        job = self.job(job_id)
        status = derive_status(self.counts(job_id), job.total, True)
        with self.session() as session, session.begin():
            session.execute(update(Job).where(Job.id == job_id).values(final_status=status))
        return status

    def reset_failed(self, job_id: str) -> int:
        """Put failed items back to pending (attempts reset) and reopen the job.

        Items whose *input* failed validation stay failed: re-running cannot change that (and would crash the chunk).
        """
        with self.session() as session, session.begin():
            count = session.execute(
                update(Item).where(Item.job_id == job_id, Item.status == "failed", Item.input.is_not(None),
                                   Item.error.not_like("invalid input:%"))
                .values(status="pending", error=None, output=None, attempts=0, updated_at=utcnow())
            ).rowcount or 0
            if count:
                session.execute(update(Job).where(Job.id == job_id).values(
                    finished_at=None, final_status=None, cancel_requested=False))
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

    def purge_inputs(self, job_id: str) -> int:
        """Delete every item's input (failed ones too): the job option ``purge_inputs``, at job end.

        On SQLite the write-ahead log is then checkpointed and truncated, so that no copy of a purged
        input stays in ``*-wal`` (``secure_delete`` zeroes it in the database file). See docs/security.md.
        """
        with self.session() as session, session.begin():
            count = session.execute(
                update(Item).where(Item.job_id == job_id, Item.input.is_not(None)).values(input=None)
            ).rowcount or 0
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


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def open_store(url: str | None = None) -> Store:
    """The store at ``url`` (default: ``VERTICALS_DATABASE_URL`` or the SQLite file), schema checked."""
    from verticals.config import database_url

    engine = make_engine(url or database_url())
    ensure_ready(engine)
    return Store(engine)
