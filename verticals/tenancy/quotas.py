"""Admission per tenant: whether a tenant may start one more job now, and if not, when to ask again.

The API asks :meth:`Quotas.admit` before it stores a job (``POST /v1/jobs``, uploads, evaluations, a retry);
a refusal is ``429 Too Many Requests`` with ``Retry-After``. Each rule is a :class:`Quota`, checked against the
tenant's :class:`Limits` (the operator's quota, ``verticals tenants quota set``, table ``tenant_quotas``):

- :class:`ActiveJobs`: at most ``max_active_jobs`` unfinished jobs (default ``VERTICALS_API_MAX_ACTIVE_JOBS``);
- :class:`ItemsPerDay`: the items its jobs ran today (UTC, from the usage rows), the items its unfinished jobs
  still have pending, and the new job's items stay within ``items_per_day``;
- :class:`ModelSecondsPerDay`: a tenant that has used its model seconds of the day (UTC) starts no other job
  (a job's model time is only known as it runs: its running jobs finish; the next day it may start again).

Running is the other half: the local executor gives each tenant at most ``VERTICALS_API_JOBS_PER_TENANT``
threads (:mod:`verticals.core.jobs.fairness`).

Exact under concurrent requests: :meth:`Quotas.admit` checks and stores under a lock of the tenant's (one per
tenant and server process: other tenants are not held up) and, on PostgreSQL, under a session advisory lock of
the tenant's too, so that requests to several API server processes are admitted one at a time as well: what
one admission stored (the job, its pending items) is what the next one counts. On SQLite (one server process)
the process's lock is the whole story.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol

from sqlalchemy import func, select, text

from verticals.config import Settings
from verticals.core.errors import Meaning
from verticals.core.store import Store
from verticals.core.store.repo import USAGE
from verticals.core.store.tables import Job

__all__ = ["ActiveJobs", "ItemsPerDay", "Limits", "ModelSecondsPerDay", "Quota", "QuotaExceeded", "Quotas"]


class QuotaExceeded(Exception):
    """A tenant is past a quota: ``detail`` says which and what to do, ``retry_after`` when to ask again (s)."""

    meaning: ClassVar[Meaning] = Meaning(429)  # the API adds Retry-After (verticals.core.errors)

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.detail, self.retry_after = detail, retry_after


@dataclass(frozen=True)
class Limits:
    """A tenant's limits now: the operator's quota over the server's defaults (None: no limit)."""

    max_active_jobs: int
    items_per_day: int | None = None
    model_seconds_per_day: float | None = None
    from_quota: frozenset[str] = frozenset()  # the limits the operator set for this tenant

    def source(self, name: str, setting: str | None = None) -> str:
        """Where a limit comes from, for the messages."""
        if name in self.from_quota or setting is None:
            return "this tenant's quota, set by the server's operator"
        return f"the server's {setting}"


class Quota(Protocol):
    """One admission rule. ``check`` raises :class:`QuotaExceeded` when ``tenant`` may not start one more job of
    ``items`` items now (called under the tenant's admission lock)."""

    def check(self, store: Store, tenant: str, limits: Limits, items: int) -> None: ...


def seconds_to_midnight(now: datetime | None = None) -> int:
    """Seconds until the next UTC day begins (when daily quotas start again), at least 1."""
    now = now or datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()) + 1)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class ActiveJobs:
    """At most ``limits.max_active_jobs`` unfinished (queued or running) jobs per tenant."""

    retry_after: int = 30

    def check(self, store: Store, tenant: str, limits: Limits, items: int) -> None:
        with store.session() as session:
            active = session.scalar(select(func.count()).select_from(Job).where(
                Job.tenant_id == tenant, Job.finished_at.is_(None))) or 0
        limit = limits.max_active_jobs
        if active >= limit:
            where = limits.source("max_active_jobs", f"VERTICALS_API_MAX_ACTIVE_JOBS={limit}")
            raise QuotaExceeded(f"this tenant has {active} unfinished jobs, the most it may have at once ({limit}: "
                                f"{where}): retry after {self.retry_after} s, once some have finished (or cancel "
                                "some)", self.retry_after)


@dataclass(frozen=True)
class ItemsPerDay:
    """The items a tenant's jobs ran today (UTC), plus those its unfinished jobs have pending, plus the new job's,
    stay within ``limits.items_per_day``."""

    def check(self, store: Store, tenant: str, limits: Limits, items: int) -> None:
        limit = limits.items_per_day
        if limit is None:
            return
        with store.engine.connect() as connection:
            ran = connection.scalar(select(func.coalesce(func.sum(USAGE.c.item_count), 0)).where(
                USAGE.c.tenant_id == tenant, USAGE.c.day == _today(), USAGE.c.model == "")) or 0
            pending = connection.scalar(select(func.coalesce(func.sum(Job.n_pending), 0)).where(
                Job.tenant_id == tenant, Job.finished_at.is_(None))) or 0
        if ran + pending + items <= limit:
            return
        wait = seconds_to_midnight()
        if items > limit:
            raise QuotaExceeded(f"this job has {items} items, more than this tenant may run in a day ({limit}: "
                                f"{limits.source('items_per_day')}): split it into smaller jobs", wait)
        raise QuotaExceeded(f"this job's {items} items would take this tenant past its {limit} items a day "
                            f"({limits.source('items_per_day')}): {ran} ran today (UTC) and {pending} are pending in "
                            f"its unfinished jobs; retry after {wait} s, when the next day begins, or with fewer "
                            "items", wait)


@dataclass(frozen=True)
class ModelSecondsPerDay:
    """A tenant whose jobs used ``limits.model_seconds_per_day`` model seconds today (UTC) starts no other job."""

    def check(self, store: Store, tenant: str, limits: Limits, items: int) -> None:
        limit = limits.model_seconds_per_day
        if limit is None:
            return
        with store.engine.connect() as connection:
            used = float(connection.scalar(select(func.coalesce(func.sum(USAGE.c.model_s), 0.0)).where(
                USAGE.c.tenant_id == tenant, USAGE.c.day == _today(), USAGE.c.model != "")) or 0.0)
        if used >= limit:
            wait = seconds_to_midnight()
            raise QuotaExceeded(f"this tenant's jobs used {used:.1f} model seconds today (UTC), its limit is {limit:g} "
                                f"({limits.source('model_seconds_per_day')}): its running jobs finish, new ones "
                                f"start again after {wait} s, when the next day begins", wait)


class Quotas:
    """Every admission rule, checked in order, against each tenant's limits."""

    def __init__(self, store: Store, rules: list[Quota], default_active_jobs: int = 100):
        self.store, self.rules = store, list(rules)
        self.default_active_jobs = default_active_jobs
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, store: Store, config: Settings) -> Quotas:
        return cls(store, [ActiveJobs(), ItemsPerDay(), ModelSecondsPerDay()], config.api_max_active_jobs)

    def limits(self, tenant: str) -> Limits:
        """The tenant's limits now (its quota row over the defaults)."""
        from verticals.tenancy.tenants import TenantQuota

        with self.store.session() as session:
            quota = session.get(TenantQuota, tenant)
        if quota is None:
            return Limits(self.default_active_jobs)
        chosen = frozenset(name for name in ("max_active_jobs", "items_per_day", "model_seconds_per_day")
                           if getattr(quota, name) is not None)
        active = quota.max_active_jobs if quota.max_active_jobs is not None else self.default_active_jobs
        return Limits(active, quota.items_per_day, quota.model_seconds_per_day, chosen)

    @contextlib.contextmanager
    def admit(self, tenant: str, items: int = 0) -> Iterator[None]:
        """Check every rule for one more job of ``items`` items of ``tenant``, then let the body store it, under
        the tenant's locks (this process's, and on PostgreSQL the database's advisory lock)."""
        with self._lock:
            lock = self._locks.setdefault(tenant, threading.Lock())
        with lock, self._database_lock(tenant):
            limits = self.limits(tenant)
            for rule in self.rules:
                rule.check(self.store, tenant, limits, items)
            yield

    @contextlib.contextmanager
    def _database_lock(self, tenant: str) -> Iterator[None]:
        """PostgreSQL: a session advisory lock of the tenant's, held on a connection of its own while the body
        runs (other server processes wait for it); other databases: nothing."""
        if self.store.engine.dialect.name != "postgresql":
            yield
            return
        key = int.from_bytes(hashlib.sha256(f"verticals-admission:{tenant}".encode()).digest()[:8], "big",
                             signed=True)
        with self.store.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
