"""The Celery executor: sends a job's chunks to Redis and follows the job in the database.

Selected when ``VERTICALS_BROKER_URL`` is set. ``start`` (alias ``dispatch``) sends one small
message per chunk that still has pending items (job id, chunk range) to the
queue of the task's device class (``gpu`` or ``cpu``) at the job's priority;
``execute`` dispatches and waits, polling the database for progress.

While it waits it also watches the broker: a Redis restarted without
persistence has lost every queued message, so when the server's run id
changes the pending chunks are sent again (running a chunk twice is safe).
A job submitted with ``--detach`` whose messages were lost that way is
continued with ``verticals jobs resume JOB``. When the job makes no progress for a few seconds
(``no_worker_notice_s``), it asks the workers (Celery's remote control) whether any consumes the
job's queue, and if none does logs one WARNING: "no worker is consuming queue 'cpu': start one with
`verticals worker --queue cpu`" (the CLI shows warnings on stderr).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

from verticals.core import tracing
from verticals.core.jobs.executor import ExecutorUnavailable, ProgressCallback
from verticals.core.jobs.service import chunk_progress
from verticals.core.store import Store
from verticals.core.store.repo import final_status
from verticals.registry import Registry
from verticals.workers.celery_app import PRIORITIES, TASK_NAME, make_app, queue_of, task_id, visibility_timeout

log = logging.getLogger(__name__)

__all__ = ["BrokerUnavailable", "CeleryExecutor", "chunk_progress"]  # chunk_progress: moved to core.service


class BrokerUnavailable(ExecutorUnavailable):
    """The broker could not be reached (or none is configured)."""


@functools.cache
def _app(broker: str, _visibility_timeout: int):
    return make_app(broker)


class CeleryExecutor:
    name = "celery"
    waits = True
    remote = True  # chunks run on workers: they go on after this process exits

    def __init__(self, store: Store, registry: Registry, broker: str | None = None, poll_interval: float = 0.5,
                 stall_warning_s: float = 60.0, no_worker_notice_s: float = 5.0):
        from verticals.config import broker_url

        self.store = store
        self.registry = registry
        url = broker or broker_url()
        if not url:
            raise BrokerUnavailable("no broker: set VERTICALS_BROKER_URL, e.g. redis://127.0.0.1:6379/0")
        self.broker: str = url
        self.app = _app(self.broker, visibility_timeout())
        self.poll_interval = poll_interval
        self.stall_warning_s = stall_warning_s
        self.no_worker_notice_s = no_worker_notice_s

    # -- where a job's chunks go ------------------------------------------------------
    def queue_for(self, task_name: str) -> str:
        return queue_of(self.registry.task(task_name))

    @staticmethod
    def priority_of(options: dict[str, Any] | None) -> str:
        priority = (options or {}).get("priority") or "normal"
        return priority if priority in PRIORITIES else "normal"

    # -- dispatch -----------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`BrokerUnavailable` when the broker does not answer now (one connection attempt, at
        most 2 s): the front ends ask before a job row exists, so that a job is never stored only to wait in
        ``queued`` for a broker that is down."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        except Exception as error:
            if _is_connection_error(error):
                raise self._unreachable(error) from None
            raise

    def _unreachable(self, error: Exception) -> BrokerUnavailable:
        return BrokerUnavailable(
            f"cannot reach the broker at {_safe_url(self.broker)} ({type(error).__name__}: {error}). Start Redis "
            "(scripts/ensure-services.sh), or unset VERTICALS_BROKER_URL to run jobs in this process")

    def start(self, job_id: str) -> int:
        """Send every chunk that still has pending items; return how many were sent. Does not wait."""
        return self.dispatch(job_id)

    def dispatch(self, job_id: str) -> int:
        """Send every chunk that still has pending items; return how many were sent. Does not wait."""
        job = self.store.job(job_id)
        ranges = self.store.chunk_ranges(job.id)
        if not ranges:  # nothing pending: finished by whoever left it so (run_chunk, JobService)
            return 0
        queue = self.queue_for(job.task)
        priority = self.priority_of(job.options)
        bookkeeping = dict((job.options or {}).get("celery") or {})
        dispatch_round = int(bookkeeping.get("round", 0)) + 1
        self.store.update_options(job.id, {"celery": {"round": dispatch_round, "queue": queue}})
        trace_context = tracing.carrier()  # OTEL_* set: the chunks' spans continue this trace on the workers
        extra = {"kwargs": {"trace": trace_context}} if trace_context else {}
        try:
            with self.app.producer_or_acquire() as producer:
                for start, end in ranges:
                    self.app.send_task(TASK_NAME, args=[job.id, start, end], **extra, queue=queue, routing_key=queue,
                                       task_id=task_id(job.id, start, dispatch_round),
                                       priority=PRIORITIES[priority], producer=producer,
                                       retry=True, retry_policy={"max_retries": 3, "interval_start": 0.5,
                                                                 "interval_step": 1, "interval_max": 2})
        except Exception as error:
            if _is_connection_error(error):
                raise self._unreachable(error) from None
            raise
        log.info("job %s: %d chunk(s) sent to queue %s (priority %s)", job.id, len(ranges), queue, priority)
        return len(ranges)

    # -- wait -----------------------------------------------------------------------------
    def execute(self, job_id: str, on_progress: ProgressCallback | None = None) -> str:
        """Dispatch the pending chunks and wait for the job to finish; return its final status."""
        job_id = self.store.job(job_id).id
        before = self.store.summary(job_id)
        if before["finished_at"] and before["counts"].get("pending", 0) == 0:
            return before["status"]
        broker_id = self._broker_run_id()
        self.dispatch(job_id)
        return self.wait(job_id, on_progress, done_before=before["done"], broker_id=broker_id)

    def wait(self, job_id: str, on_progress: ProgressCallback | None = None, timeout: float | None = None, *,
             done_before: int | None = None, broker_id: str | None = None) -> str:
        """Poll the database until the job is finished; re-send chunks lost by a broker restart."""
        job_id = self.store.job(job_id).id
        last_done = self.store.summary(job_id)["done"] if done_before is None else done_before
        last_change = started = time.monotonic()
        last_broker_check = 0.0
        broker_id = broker_id or self._broker_run_id()
        warned = consumers_checked = False
        while True:
            job = self.store.job(job_id)
            counts = self.store.counts(job_id)
            done = sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))
            if done != last_done:
                if on_progress and done > last_done:
                    on_progress(done - last_done)
                last_done, last_change = done, time.monotonic()
                consumers_checked = False
            if job.final_status:
                return job.final_status
            if not counts.get("pending") and job.submitted:  # the service finishes it if its worker did not
                return final_status(counts)
            now = time.monotonic()
            if now - last_broker_check >= 2.0:
                last_broker_check = now
                current = self._broker_run_id()
                if current and broker_id and current != broker_id:
                    log.warning("the broker restarted (its queued messages may be lost): sending the pending "
                                "chunks of job %s again", job_id)
                    try:
                        self.dispatch(job_id)
                        broker_id = current
                    except BrokerUnavailable as error:
                        log.warning("%s", error)
                elif current and not broker_id:
                    broker_id = current
            if not consumers_checked and not warned and now - last_change > self.no_worker_notice_s:
                consumers_checked = True
                queue = ((job.options or {}).get("celery") or {}).get("queue") or self.queue_for(job.task)
                if self.consumers(queue) == []:
                    warned = True  # the stall warning below would only repeat it
                    log.warning("no worker is consuming queue %r: start one with `verticals worker --queue %s` "
                                "(with the same VERTICALS_BROKER_URL and VERTICALS_DATABASE_URL); job %s waits "
                                "for it", queue, queue, job_id[:8])
            if not warned and now - last_change > self.stall_warning_s:
                warned = True
                log.warning("job %s: no progress for %.0fs. Is a worker running for queue %r? Start one with "
                            "`verticals worker --queue %s` (same VERTICALS_BROKER_URL and VERTICALS_DATABASE_URL).",
                            job_id, now - last_change, self.queue_for(job.task), self.queue_for(job.task))
            if timeout is not None and now - started > timeout:
                raise TimeoutError(f"job {job_id} not finished after {timeout:.0f}s")
            time.sleep(self.poll_interval)

    # -- cancel -----------------------------------------------------------------------------
    def revoke(self, job_id: str, starts: Sequence[int]) -> int:
        """Revoke the queued messages of the chunks starting at ``starts`` (every dispatch round's);
        their items are already cancelled in the database. Returns how many message ids were revoked."""
        job = self.store.job(job_id)
        rounds = int(((job.options or {}).get("celery") or {}).get("round", 0))
        ids = [task_id(job.id, start, r) for start in starts for r in range(1, rounds + 1)]
        if ids:
            self.app.control.revoke(ids)
        return len(ids)

    def close(self) -> None:
        """Nothing to stop: the app and its connection pool are shared by the process."""

    # -- status ---------------------------------------------------------------------------------
    def queue_status(self, job_id: str) -> dict[str, Any]:
        """The job's queue and priority, and the broker's backlog of that queue (every job's; None when the
        broker cannot say). :meth:`verticals.core.jobs.service.JobService.queue_status` adds the chunk counts."""
        job = self.store.job(job_id)
        queue = ((job.options or {}).get("celery") or {}).get("queue") or self.queue_for(job.task)
        return {"queue": queue, "priority": self.priority_of(job.options), "broker_backlog": self.backlog(queue)}

    def backlog(self, queue: str) -> int | None:
        """Messages waiting in a broker queue (every job's, every priority), or None when the broker cannot say.

        Asked through kombu (:func:`verticals.workers.fleet.queue_backlog`)."""
        from verticals.workers.fleet import queue_backlog

        return queue_backlog(self.app, queue)

    def consumers(self, queue: str, timeout: float = 1.0) -> list[str] | None:
        """The workers consuming ``queue`` (their node names), asked through Celery's remote control; None when
        that cannot be asked (broker unreachable). Takes ``timeout`` seconds: the workers' answers are awaited."""
        if self.broker.startswith(("redis://", "rediss://", "unix://")) and self._broker_run_id() is None:
            return None  # Redis does not answer: asking the workers would wait on reconnects
        try:
            replies = self.app.control.inspect(timeout=timeout).active_queues() or {}
        except Exception:
            log.debug("could not ask the workers for their queues", exc_info=True)
            return None
        return sorted(worker for worker, queues in replies.items()
                      if any(isinstance(q, dict) and q.get("name") == queue for q in queues or []))

    # -- broker helpers -------------------------------------------------------------------------
    def _redis(self):
        if not self.broker.startswith(("redis://", "rediss://", "unix://")):
            return None
        import redis

        return redis.Redis.from_url(self.broker, socket_timeout=2, socket_connect_timeout=2)

    def _broker_run_id(self) -> str | None:
        """The Redis server's run id: it changes when the server restarts."""
        client = self._redis()
        if client is None:
            return None
        try:
            return str(client.info("server").get("run_id") or "") or None
        except Exception:
            return None
        finally:
            client.close()


def _is_connection_error(error: Exception) -> bool:
    import kombu.exceptions

    return isinstance(error, kombu.exceptions.OperationalError | ConnectionError | OSError)


def _safe_url(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)
