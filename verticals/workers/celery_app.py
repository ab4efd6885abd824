"""The Celery application: one task, ``verticals.run_chunk(job_id, start, end)``.

Broker messages carry only a job id and a chunk range; workers read the
chunk's items from the database and write results back to it, through the
same :func:`verticals.core.jobs.run_chunk` the local executor calls.

Delivery is at-least-once (acks late, reject on worker lost, prefetch 1, a
visibility timeout longer than the longest chunk); the store makes it
exactly-once per item: results are written only onto items still pending,
attempts are counted in the database (an item that keeps killing workers is
failed after ``VERTICALS_MAX_ATTEMPTS``), and one conditional UPDATE decides
which worker finishes the job. A chunk that fails for a reason of the machinery
(database down, a bug) is retried by Celery itself (``autoretry_for`` with
``retry_backoff`` and ``retry_jitter``, at most ``MAX_RETRIES`` times); then
its pending items fail with the reason (``ChunkTask.on_failure``).

Settings (environment):

- ``VERTICALS_BROKER_URL``: e.g. ``redis://127.0.0.1:6379/0`` (required).
- ``VERTICALS_VISIBILITY_TIMEOUT``: seconds before Redis hands an unacknowledged
  chunk to another worker (default 7200). Must exceed the longest chunk.
- ``VERTICALS_PRELOAD``: ``1`` to load the models of the queue's tasks in each
  worker process right after the fork (``verticals worker --preload``).

No worker process touches CUDA before the fork: the parent never loads a
model, and each pool process builds its own store, registry and model host.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery, Task, signals
from kombu import Queue

log = logging.getLogger(__name__)

QUEUES = ("gpu", "cpu", "code")  # code: tasks that execute untrusted code (Task.executes_code), kept apart
PRIORITIES = {"high": 0, "normal": 5, "low": 9}  # Redis: lower number is served first
DEFAULT_VISIBILITY_TIMEOUT = 7200
TASK_NAME = "verticals.run_chunk"
MAX_RETRIES = 8  # machinery failures of a chunk: backoff 1, 2, 4... 60 s (with jitter), then its items fail


def visibility_timeout() -> int:
    from verticals.config import settings

    return settings().visibility_timeout


def task_id(job_id: str, start: int, dispatch_round: int) -> str:
    """Deterministic message id of a chunk, so a cancel can revoke the chunks it knows are queued."""
    return f"{job_id}:{start}:{dispatch_round}"


def make_app(broker: str | None = None) -> Celery:
    from verticals.config import broker_url

    url = broker or broker_url() or "redis://127.0.0.1:6379/0"
    app = Celery("verticals", broker=url, set_as_current=False)
    vt = visibility_timeout()
    restore_every = max(1, min(10, vt // 4))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="cpu",
        task_queues=[Queue(name, routing_key=name) for name in QUEUES],
        task_default_priority=PRIORITIES["normal"],
        broker_transport_options={
            "visibility_timeout": vt,
            "queue_order_strategy": "priority",
            # look for chunks of dead workers often enough for a short visibility timeout
            "unacked_restore_interval": restore_every,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker restart must not end a worker
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=True,
    )
    return app


app = make_app()


class _WorkerState:
    """Per pool process: built lazily after the fork, never inherited."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store: Any = None
        self.registry: Any = None
        self.host: Any = None

    def get(self) -> tuple[Any, Any, Any]:
        with self.lock:
            if self.store is None:
                from verticals.core.models import ModelHost
                from verticals.core.store import open_store
                from verticals.plugins import get_registry

                registry = get_registry()
                registry.attach("verticals.api.webhooks")  # job_finished events reach the tenants' webhooks
                self.registry = registry
                self.host = ModelHost(registry.models)
                self.store = open_store()
            return self.store, self.registry, self.host


state = _WorkerState()


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    """In each pool process: drop any database connections copied from the parent; maybe preload models.

    Preloading runs in a background thread so that Celery's process-init timeout
    (a few seconds) is never tripped by a large model; a chunk that arrives
    meanwhile waits on the model host's lock instead of loading twice.
    """
    from verticals.config import database_url
    from verticals.core.store.db import make_engine

    make_engine(database_url()).dispose(close=False)
    threading.Thread(target=_deliver_events, name="verticals-events", daemon=True).start()
    from verticals.config import settings

    if settings().preload:
        threading.Thread(target=_preload, name="verticals-preload", daemon=True).start()


def _deliver_events() -> None:
    """Fire the ``job_finished`` events still pending (a process died between finishing a job and firing
    them): delivery is at least once. Runs once per pool process, in the background."""
    from verticals.core.jobs import deliver_job_events

    try:
        store, registry, _host = state.get()
        deliver_job_events(store, registry)
    except Exception:
        log.exception("delivering pending job events failed; the next worker start tries again")


def queue_of(task: object) -> str:
    """The queue a task's chunks go to: ``code`` for tasks that execute untrusted code, else its device class."""
    if getattr(task, "executes_code", False):
        return "code"
    device = getattr(task, "device", "cpu")
    return device if device in QUEUES else "cpu"


def _preload() -> None:
    from verticals.config import settings

    queue = settings().worker_queue
    try:
        _, registry, host = state.get()
        names = sorted({name for task in registry.tasks.values() if not queue or queue_of(task) == queue
                        for name in task.models.values()})
        for name in names:
            host.get(name)
        log.info("preloaded models: %s", ", ".join(names) or "none")
    except Exception:
        log.exception("preloading models failed; they will load on the first chunk that needs them")


class ChunkFailed(Exception):
    """Running a chunk failed for a reason of the machinery (database down, a bug): retried with backoff.
    Its message is :func:`describe`'s: no SQL parameters (they may hold item text), so Celery's retry
    and failure logs carry none either."""


class ChunkTask(Task):
    """Retries are Celery's (``autoretry_for`` with exponential backoff and jitter); once they are used
    up, :meth:`on_failure` fails the chunk's pending items with the reason, so that the job can end."""

    def on_retry(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id, start, end = args
        log.warning("chunk %s:%d-%d failed (%s); retry %d of %d with backoff", job_id, start, end, exc,
                    self.request.retries + 1, self.max_retries)

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if isinstance(exc, ChunkFailed):
            job_id, start, end = args
            _give_up(job_id, start, end, exc)


@app.task(name=TASK_NAME, bind=True, base=ChunkTask, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
          autoretry_for=(ChunkFailed,), max_retries=MAX_RETRIES, retry_backoff=True, retry_backoff_max=60,
          retry_jitter=True)
def run_chunk_task(self: ChunkTask, job_id: str, start: int, end: int) -> dict[str, Any]:
    """Run one chunk; a failure of the machinery (database down...) retries the chunk with backoff."""
    from verticals.core.jobs import run_chunk

    started = time.monotonic()
    try:
        store, registry, host = state.get()
        report = run_chunk(store, registry, host, job_id, start, end)
    except KeyError as error:  # the job was deleted
        log.warning("chunk %s:%d-%d skipped: %s", job_id, start, end, error)
        return {"skipped": True}
    except Exception as error:
        log.debug("chunk failure", exc_info=True)
        raise ChunkFailed(describe(error)) from None
    took = time.monotonic() - started
    if took > visibility_timeout() / 2:
        log.warning("chunk %s:%d-%d took %.0fs, more than half the visibility timeout (%ds): Redis may hand it "
                    "to a second worker. Raise VERTICALS_VISIBILITY_TIMEOUT or submit with a smaller --chunk-size.",
                    job_id, start, end, took, visibility_timeout())
    return {"succeeded": report.succeeded, "failed": report.failed, "cancelled": report.cancelled,
            "finished": report.finished_status}


def describe(error: BaseException) -> str:
    """An exception for logs and item errors, without SQL parameters (they may hold item text)."""
    cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver error with its parameters
    first_line = (str(cause).strip().splitlines() or [""])[0][:300]
    return f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__


def _give_up(job_id: str, start: int, end: int, error: BaseException) -> None:
    """The chunk failed on every retry: fail its pending items with the reason, so the job can end."""
    from verticals.core.jobs import finish_if_done
    from verticals.core.store import ItemResult

    try:
        store, registry, _host = state.get()
        why = str(error) if isinstance(error, ChunkFailed) else describe(error)
        reason = (f"worker error after retries: {why} "
                  f"(fix the cause, then `verticals jobs retry {job_id[:8]} --failed`)")
        results = [ItemResult(seq, "failed", error=reason) for seq, _ in store.pending_items(job_id, start, end)]
        store.write_results(job_id, results)
        finish_if_done(store, registry, job_id)
    except Exception:
        log.exception("could not record the failure of chunk %s:%d-%d", job_id, start, end)
