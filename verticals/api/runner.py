"""Where the API server's jobs run: the server's :class:`~verticals.core.jobs.service.JobService` and its executor.

- Local executor (no ``VERTICALS_BROKER_URL``): background worker threads in the server process; the HTTP
  request that creates a job returns at once. On start, the server resumes unfinished API jobs (chunks are
  idempotent).
- Celery (``VERTICALS_BROKER_URL`` set): the job's chunks are sent to the workers.

Every rule about a job (submit and start, cancel, retry, resume, evaluate) is the service's, which the routes
call; this module only decides which executor the service runs jobs on, and from when (with the app, not
before: ``create_app(background=False)`` runs nothing: until :meth:`JobRunner.start`, the service's executor
only remembers the jobs handed to it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from verticals.core.jobs.executor import Executor, ExecutorUnavailable, ProgressCallback
from verticals.core.jobs.service import Admission, JobService
from verticals.core.models.host import ModelHost
from verticals.core.store import Store
from verticals.core.store.tables import Job
from verticals.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["ExecutorUnavailable", "JobRunner"]


class HeldExecutor:
    """The server's executor until it starts: a job handed over is remembered (and started with the server);
    nothing runs. ``create_app(background=False)`` (unit tests) keeps it."""

    name = "held"
    remote = False

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def check(self) -> None:
        """Ready: what is handed over waits for the start."""

    def start(self, job_id: str) -> int:
        if job_id not in self.jobs:
            self.jobs.append(job_id)
        return 0

    def execute(self, job_id: str, on_progress: ProgressCallback | None = None) -> str:
        raise ExecutorUnavailable("the server's executor has not started: jobs run once it has")

    def wait(self, job_id: str, on_progress: ProgressCallback | None = None, timeout: float | None = None) -> str:
        raise ExecutorUnavailable("the server's executor has not started: jobs run once it has")

    def revoke(self, job_id: str, starts: Sequence[int]) -> int:
        return 0

    def queue_status(self, job_id: str) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Nothing runs."""


class JobRunner:
    """The API's job service (``self.service``) and the executor it runs jobs on.

    Until :meth:`start`, the service's executor is a :class:`HeldExecutor`; :meth:`start` builds the real one
    (a problem is kept in ``problem``: ``/readyz`` and 503 answers show it, and the service refuses to hand jobs
    over) and, with the local executor, resumes the unfinished API jobs (and those handed over before).
    """

    def __init__(self, store: Store, registry: Registry, host: ModelHost, threads: int = 1,
                 on_progress: Callable[[int], None] | None = None, per_tenant: int | None = None,
                 admission: Admission | None = None):
        self.store, self.registry, self.host = store, registry, host
        self.threads = max(1, threads)
        self.per_tenant = per_tenant  # chunks of one tenant at once on the local executor's threads
        self.on_progress = on_progress
        self.problem: str | None = None
        self.started = False
        self.held = HeldExecutor()
        self.local: Any = None  # the local executor, once built (its queue length is a metric)
        self.kind = self._configured_kind()
        self.service = JobService(store, registry, self.held, host=host, admission=admission)

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
            executor = self._build()
        except Exception as error:
            self.problem = (f"{error}" if "VERTICALS_BROKER_URL" in str(error) else
                            f"VERTICALS_BROKER_URL is set but the Celery executor cannot be used ({error}). Install "
                            "it with pip install 'verticals[celery]', or unset VERTICALS_BROKER_URL to run jobs in the "
                            "server process")
            log.error("%s", self.problem)
            self.service.use_executor(None, self.problem)
            return
        self.service.use_executor(executor)
        self.started = True
        waiting, self.held.jobs = self.held.jobs, []
        if resume and self.kind == "local":
            waiting += [job_id for job_id in self._unfinished() if job_id not in waiting]
        for job_id in waiting:
            try:
                self.service.resume(job_id, wait=False)
            except Exception:
                log.exception("job %s could not be resumed at start; resume it with POST /v1/jobs/%s/resume",
                              job_id, job_id)

    def stop(self) -> None:
        self.service.close()

    def _unfinished(self) -> list[str]:
        with self.store.session() as session:
            return list(session.scalars(select(Job.id).where(Job.tenant_id.is_not(None), Job.submitted.is_(True),
                                                             Job.finished_at.is_(None)).order_by(Job.created_at)))

    def ready(self) -> None:
        """``/readyz``: :class:`ExecutorUnavailable` when the executor could not be built at start, or cannot take
        a job now (the broker does not answer)."""
        if self.problem:
            raise ExecutorUnavailable(self.problem)
        self.service.check_ready()

    def pending(self) -> int:
        """Jobs waiting for this server's threads (local executor), or handed over before the start."""
        if not self.started:
            return len(self.held.jobs)
        return self.local.pending() if self.local is not None else 0
