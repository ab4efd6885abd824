"""Admission per tenant: whether a tenant may start one more job now, and if not, when to ask again.

The API asks :meth:`Quotas.admit` before it stores a job (``POST /v1/jobs``, uploads, evaluations, a retry);
a refusal is ``429 Too Many Requests`` with ``Retry-After``. Each rule is a :class:`Quota`: today
:class:`ActiveJobs` (at most ``VERTICALS_API_MAX_ACTIVE_JOBS`` unfinished jobs per tenant); operator quotas
per tenant (items per day, model seconds) are more of them. Running is the other half: the local executor
gives each tenant at most ``VERTICALS_API_JOBS_PER_TENANT`` threads (:mod:`verticals.core.jobs.fairness`).

:meth:`Quotas.admit` checks and stores under a lock of the tenant's (one per tenant and server process), so
that concurrent requests of one tenant to this server cannot pass the check together: a tenant's job creations
are stored one at a time, other tenants' are not held up. With several API server processes, a tenant may pass
by at most one job per other process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sqlalchemy import func, select

from verticals.config import Settings
from verticals.core.errors import Meaning
from verticals.core.store import Store
from verticals.core.store.tables import Job

__all__ = ["ActiveJobs", "Quota", "QuotaExceeded", "Quotas"]


class QuotaExceeded(Exception):
    """A tenant is past a quota: ``detail`` says which and what to do, ``retry_after`` when to ask again (s)."""

    meaning: ClassVar[Meaning] = Meaning(429)  # the API adds Retry-After (verticals.core.errors)

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.detail, self.retry_after = detail, retry_after


class Quota(Protocol):
    """One admission rule. ``check`` raises :class:`QuotaExceeded` when ``tenant`` may not start one more job
    now (called under the tenant's admission lock)."""

    def check(self, store: Store, tenant: str) -> None: ...


@dataclass(frozen=True)
class ActiveJobs:
    """At most ``limit`` unfinished (queued or running) jobs per tenant."""

    limit: int
    retry_after: int = 30

    def check(self, store: Store, tenant: str) -> None:
        with store.session() as session:
            active = session.scalar(select(func.count()).select_from(Job).where(
                Job.tenant_id == tenant, Job.finished_at.is_(None))) or 0
        if active >= self.limit:
            raise QuotaExceeded(f"this tenant has {active} unfinished jobs, the most the server runs for one "
                                f"tenant (VERTICALS_API_MAX_ACTIVE_JOBS={self.limit}): retry after "
                                f"{self.retry_after} s, once some have finished (or cancel some)", self.retry_after)


class Quotas:
    """Every admission rule, checked in order."""

    def __init__(self, store: Store, rules: list[Quota]):
        self.store, self.rules = store, list(rules)
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, store: Store, config: Settings) -> Quotas:
        return cls(store, [ActiveJobs(config.api_max_active_jobs)])

    @contextlib.contextmanager
    def admit(self, tenant: str) -> Iterator[None]:
        """Check every rule for one more job of ``tenant``, then let the body store it, under the tenant's lock."""
        with self._lock:
            lock = self._locks.setdefault(tenant, threading.Lock())
        with lock:
            for rule in self.rules:
                rule.check(self.store, tenant)
            yield
