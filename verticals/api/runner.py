"""Where the API server's jobs run: the server's :class:`~verticals.core.jobs.service.JobService` and its executor.

- Local executor (no ``VERTICALS_BROKER_URL``): background worker threads in the server process; the HTTP
  request that creates a job returns at once. On start, the server resumes unfinished API jobs (chunks are
  idempotent).
- Celery (``VERTICALS_BROKER_URL`` set): the job's chunks are sent to the workers.

Every rule about a job (submit, cancel, retry, resume) is the service's; this module only decides when the
executor is built and started (with the app, not before: ``create_app(background=False)`` runs nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from verticals.core.jobs.engine import JobError
from verticals.core.jobs.executor import Executor, ExecutorUnavailable
from verticals.core.jobs.service import JobService
from verticals.core.models.host import ModelHost
from verticals.core.store import Store
from verticals.core.store.tables import Job
from verticals.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["ExecutorUnavailable", "JobRunner"]


class JobRunner:
    """The API's job service (``self.service``) and the executor it runs jobs on.

    Until :meth:`start`, jobs handed over are only remembered (``create_app(background=False)``: unit tests);
    :meth:`start` builds the executor (a problem is kept in ``problem``: ``/readyz`` and 503 answers show it)
    and, with the local executor, resumes the unfinished API jobs.
    """

    def __init__(self, store: Store, registry: Registry, host: ModelHost, threads: int = 1,
                 on_progress: Callable[[int], None] | None = None, per_tenant: int | None = None):
        self.store, self.registry, self.host = store, registry, host
        self.threads = max(1, threads)
        self.per_tenant = per_tenant  # chunks of one tenant at once on the local executor's threads
        self.on_progress = on_progress
        self.problem: str | None = None
        self.started = False
        self.waiting: list[str] = []  # handed over before start()
        self.local: Any = None  # the local executor, once built (its queue length is a metric)
        self.kind = self._configured_kind()
        self.service = JobService(store, registry, host=host, executor_factory=self._build)

    @staticmethod
    def _configured_kind() -> str:
        from verticals.config import broker_url

        return "celery" if broker_url() else "local"

    def _build(self) -> Executor:
        if self.kind == "local":
            from verticals.core.jobs.executor import LocalExecutor

            self.local = LocalExecutor(self.store, self.registry, self.host, threads=self.threads,
                                       on_progress=self.on_progress, per_tenant=self.per_tenant)
            return self.local
        from verticals.workers import get_executor

        return get_executor(self.store, self.registry, self.host, name="celery")

    def start(self, resume: bool = True) -> None:
        try:
            self.service.executor  # noqa: B018 - built now, so that a problem shows at start
        except ExecutorUnavailable as error:
            self.problem = (f"{error}" if "VERTICALS_BROKER_URL" in str(error) else
                            f"VERTICALS_BROKER_URL is set but the Celery executor cannot be used ({error}). Install "
                            "it with pip install 'verticals[celery]', or unset VERTICALS_BROKER_URL to run jobs in the "
                            "server process")
            log.error("%s", self.problem)
            return
        self.started = True
        waiting, self.waiting = self.waiting, []
        if resume and self.kind == "local":
            waiting += [job_id for job_id in self._unfinished() if job_id not in waiting]
        for job_id in waiting:
            self.service.resume(job_id, wait=False)

    def stop(self) -> None:
        self.service.close()

    def _unfinished(self) -> list[str]:
        with self.store.session() as session:
            return list(session.scalars(select(Job.id).where(Job.tenant_id.is_not(None), Job.submitted.is_(True),
                                                             Job.finished_at.is_(None)).order_by(Job.created_at)))

    def check(self) -> None:
        """``ExecutorUnavailable`` when the executor could not be built at start."""
        if self.problem:
            raise ExecutorUnavailable(self.problem)

    def ready(self) -> None:
        """:meth:`check`, and once started, whether the executor can take a job now (the broker answers):
        asked before a job is stored, so that a broker that is down is a 503 and not a job left queued."""
        self.check()
        if self.started:
            self.service.check_ready()

    def submit(self, job_id: str, fresh: bool = False) -> None:
        """Hand the job's pending chunks to the executor (return at once). ``fresh``: the job was just created;
        refused by the executor before anything ran, it is withdrawn (``JobService.start``)."""
        self.check()
        if not self.started:
            self.waiting.append(job_id)
            return
        try:
            self.service.start(job_id, fresh=fresh)
        except ExecutorUnavailable:
            raise
        except Exception as error:
            raise ExecutorUnavailable(f"could not hand job {job_id} to the {self.kind} executor "
                                      f"({type(error).__name__}: {error}); check the broker, then "
                                      f"POST /v1/jobs/{job_id}/retry") from None

    def resume(self, job_id: str) -> None:
        """Hand the pending items of a stored job to the executor again (``JobService.resume``, without waiting):
        a job whose chunks a broker restart lost, or one a stopped server left unfinished."""
        self.check()
        if not self.started:
            if job_id not in self.waiting:
                self.waiting.append(job_id)
            return
        try:
            self.service.resume(job_id, wait=False)
        except (ExecutorUnavailable, JobError):
            raise
        except Exception as error:
            raise ExecutorUnavailable(f"could not hand job {job_id} to the {self.kind} executor "
                                      f"({type(error).__name__}: {error}); check the broker, then "
                                      f"POST /v1/jobs/{job_id}/resume again") from None

    def pending(self) -> int:
        """Jobs waiting for this server's threads (local executor), or handed over before the start."""
        if not self.started:
            return len(self.waiting)
        return self.local.pending() if self.local is not None else 0
