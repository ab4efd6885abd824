"""Database tables. The schema is created and changed only by Alembic migrations
(``verticals/migrations``); these classes must match the latest migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    """A batch job: a task, its parameters and options; its status is derived from its items."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task: Mapped[str] = mapped_column(String(200), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    plugin: Mapped[str | None] = mapped_column(String(200))
    plugin_version: Mapped[str | None] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(Integer, default=0)
    chunk_size: Mapped[int] = mapped_column(Integer)
    submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    final_status: Mapped[str | None] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(String(64), index=True)  # 0002: None for CLI/local jobs
    # 0004: items per status, kept by the store in the same transaction as every status change
    n_pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    n_succeeded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    n_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    n_cancelled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # 0007: progress within the running batches, as tasks report it (RunContext.progress): chunk start ->
    # {"done", "total", "items", "note", "at"}; an entry is removed with its batch's results. None: nothing runs
    # that reported progress.
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # 0008: when the process running it locally was stopped (Ctrl-C, SIGTERM) with items pending: the job is
    # "interrupted" (nothing runs it; `verticals jobs resume` does) until a chunk of it runs again
    interrupted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # 0013: the flat columns of the stored inputs, as [[flat name, top-level key, kind or None], ...], recorded at
    # submission (verticals.core.io.InputColumns) so that an export names its input columns without reading every
    # input first; None: not known (a job stored before 0013, or its inputs purged): the export reads them
    input_columns: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class Item(Base):
    """One input of a job, and its output or error. One row per item, ever."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("job_id", "seq", name="uq_items_job_seq"),
        Index("ix_items_job_status_seq", "job_id", "status", "seq"),  # 0004
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    input: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # 0009: why the output is what it is (verticals.contract.Explanation), for jobs with the option ``explain``
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Artifact(Base):
    """A file produced for a job (e.g. its summary.json)."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "name", name="uq_artifacts_job_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

class JobEvent(Base):
    """0006: the outbox of job events (``job_finished``). Written in the transaction that finishes the job,
    delivered at least once by :func:`verticals.core.jobs.engine.deliver_job_events`: a process that dies after
    finishing a job leaves its event here for the next one."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_pending", "delivered_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a deliverer took it at
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

class JobUsage(Base):
    """0010: what a job used, per UTC day, model and device: one row per (job, day, model, device), added to in the
    transaction that writes each batch's results (so it is exact: a result written once is metered once).

    The row with ``model`` and ``device`` empty holds the job's items (``item_count``) and wall seconds (its
    batches' time); the other rows hold each model's seconds and tokens. No foreign key: usage outlives a
    deleted or pruned job."""

    __tablename__ = "job_usage"
    __table_args__ = (Index("ix_job_usage_tenant_day", "tenant_id", "day"), Index("ix_job_usage_day", "day"))

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    model: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    device: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    tenant_id: Mapped[str | None] = mapped_column(String(64))  # None: a CLI / SDK in-process job
    task: Mapped[str] = mapped_column(String(200))
    item_count: Mapped[int] = mapped_column(BigInteger, default=0)  # items that ran and got a result
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    model_s: Mapped[float] = mapped_column(Float, default=0.0)
    wall_s: Mapped[float] = mapped_column(Float, default=0.0)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)  # CUDA only: torch's peak allocated
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MetricBucket(Base):
    """0012: histograms every process adds to (``/metrics``): per histogram ``name`` and bucket upper bound ``le``
    (``"0.05"``, ``"+Inf"``), the observations that fell in that bucket (not cumulative) and their sum. Added to in
    the transaction that writes a batch's results: ``batch_seconds`` (each batch's time), ``queue_wait_seconds``
    (from a job's creation to the start of each of its chunks)."""

    __tablename__ = "metric_buckets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    le: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    sum_s: Mapped[float] = mapped_column(Float, default=0.0)


# The REST API's tables (0002: tenants, API keys, webhooks, deliveries, idempotency keys) are declared on this
# same Base by verticals.tenancy.tenants: only the API uses them.
