"""Where the API server's jobs run.

- Local executor (no ``VERTICALS_BROKER_URL``): background worker threads in
  the server process; the HTTP request that creates a job returns at once.
  On start, the server resumes unfinished API jobs (chunks are idempotent).
- Celery (``VERTICALS_BROKER_URL`` set): jobs are dispatched to the workers
  through ``verticals.workers.get_executor(...).dispatch(job_id)``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from sqlalchemy import select

from verticals.core.models import ModelHost
from verticals.core.store import Store
from verticals.core.store.tables import Job
from verticals.plugins import Registry

log = logging.getLogger(__name__)


class ExecutorUnavailable(RuntimeError):
    """Jobs cannot be executed now; the message says what to do."""


class JobRunner:
    def __init__(self, store: Store, registry: Registry, host: ModelHost, threads: int = 1,
                 on_progress: Callable[[int], None] | None = None):
        self.store, self.registry, self.host = store, registry, host
        self.threads = max(1, threads)
        self.on_progress = on_progress
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.workers: list[threading.Thread] = []
        self.dispatcher = None
        self.problem: str | None = None
        self.kind = "local"

    def start(self, resume: bool = True) -> None:
        from verticals.config import broker_url

        if broker_url():
            self.kind = "celery"
            try:
                from verticals.workers import get_executor

                executor = get_executor(self.store, self.registry, self.host, name="celery")
                if not hasattr(executor, "dispatch"):
                    raise ImportError("the celery executor has no dispatch()")
                self.dispatcher = executor
            except Exception as error:  # executor module missing, broker library missing...
                self.problem = (f"VERTICALS_BROKER_URL is set but the Celery executor cannot be used "
                                f"({type(error).__name__}: {error}). Install it with pip install 'verticals[celery]', "
                                "or unset VERTICALS_BROKER_URL to run jobs in the server process")
                log.error("%s", self.problem)
            return
        for number in range(self.threads):
            thread = threading.Thread(target=self._work, name=f"verticals-jobs-{number}", daemon=True)
            thread.start()
            self.workers.append(thread)
        if resume:
            for job_id in self._unfinished():
                self.queue.put(job_id)

    def stop(self) -> None:
        for _ in self.workers:
            self.queue.put(None)
        for thread in self.workers:
            thread.join(timeout=5)

    def _unfinished(self) -> list[str]:
        with self.store.session() as session:
            return list(session.scalars(select(Job.id).where(Job.tenant_id.is_not(None), Job.submitted.is_(True),
                                                             Job.finished_at.is_(None)).order_by(Job.created_at)))

    def check(self) -> None:
        if self.problem:
            raise ExecutorUnavailable(self.problem)

    def submit(self, job_id: str) -> None:
        self.check()
        if self.dispatcher is not None:
            try:
                self.dispatcher.dispatch(job_id)
            except Exception as error:
                raise ExecutorUnavailable(f"could not dispatch job {job_id} to the Celery workers "
                                          f"({type(error).__name__}: {error}); check the broker, then "
                                          f"POST /v1/jobs/{job_id}/retry") from None
            return
        self.queue.put(job_id)

    def pending(self) -> int:
        return self.queue.qsize()

    def _work(self) -> None:
        from verticals.workers.local import LocalExecutor

        executor = LocalExecutor(self.store, self.registry, self.host)
        while True:
            job_id = self.queue.get()
            if job_id is None:
                return
            try:
                executor.execute(job_id, on_progress=self.on_progress)
            except Exception:
                log.exception("job %s failed to run in the server process; its pending items stay pending "
                              "(POST /v1/jobs/%s/retry or restart the server to resume)", job_id, job_id)
