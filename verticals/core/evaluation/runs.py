"""Stored evaluation runs (``verticals eval``): table ``eval_runs`` (migration 0005) and its repository."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from verticals.core.store.repo import Store
from verticals.core.store.tables import Base, utcnow


class EvalRun(Base):
    """One evaluation of a task on labelled data: where the data came from, the models used, the metrics.

    ``records`` keeps, per item, its key (a hash of the input row), sequence number, gold and predicted value
    in compact form, so that ``eval show`` lists what the model got wrong and ``eval compare`` finds the items
    whose prediction changed between two runs. Inputs stay in the run's job (``job_id``) unless purged.
    """

    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    task: Mapped[str] = mapped_column(String(200), index=True)
    job_id: Mapped[str | None] = mapped_column(String(32), index=True)
    data_name: Mapped[str] = mapped_column(String(500))
    data_hash: Mapped[str] = mapped_column(String(64))
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    gold_field: Mapped[str] = mapped_column(String(200))
    evaluator: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # per-class figures, confusion matrix
    models: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # provenance of every model used
    records: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)  # [key, seq, gold, predicted, failed]
    tenant_id: Mapped[str | None] = mapped_column(String(64), index=True)


def save_run(store: Store, **values: Any) -> str:
    run_id = uuid.uuid4().hex
    with store.session() as session, session.begin():
        session.add(EvalRun(id=run_id, **values))
    return run_id


def list_runs(store: Store, task: str | None = None, limit: int = 20, tenant: str | None = None) -> list[EvalRun]:
    with store.session() as session:
        query = select(EvalRun).order_by(EvalRun.created_at.desc()).limit(limit)
        if task:
            query = query.where(EvalRun.task == task)
        if tenant is not None:
            query = query.where(EvalRun.tenant_id == tenant)
        return list(session.scalars(query))


def find_run_for_job(store: Store, job_id: str) -> EvalRun | None:
    with store.session() as session:
        return session.scalars(select(EvalRun).where(EvalRun.job_id == job_id).limit(1)).first()


def get_run(store: Store, run_id: str, tenant: str | None = None) -> EvalRun:
    """A run by id or unique id prefix (KeyError with a clear message otherwise)."""
    with store.session() as session:
        query = select(EvalRun).where(EvalRun.id.like(f"{run_id}%")).limit(2)
        if tenant is not None:
            query = query.where(EvalRun.tenant_id == tenant)
        found = list(session.scalars(query))
    if not found:
        raise KeyError(f"no evaluation run {run_id!r}: see `verticals eval list`")
    if len(found) > 1 and found[0].id != run_id:
        raise KeyError(f"evaluation run prefix {run_id!r} is ambiguous: give more characters")
    return found[0]
