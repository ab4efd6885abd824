"""The Celery application: one task, ``verticals.run_chunk(job_id, start, end)``.

Broker messages carry only a job id and a chunk range; workers read the
chunk's items from the database and write results back to it, through the
same :func:`verticals.core.jobs.engine.run_chunk` the local executor calls.

Delivery is at-least-once (acks late, reject on worker lost, prefetch 1, a
visibility timeout derived from the queue's expected chunk time, see
:func:`visibility_timeout`); the store makes it
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
  chunk to another worker. Default: derived per queue from its tasks' expected
  chunk time (:func:`visibility_timeout`); setting it overrides that.
- ``VERTICALS_PRELOAD``: ``1`` to load the models of the queue's tasks in each
  worker process right after the fork (``verticals worker --preload``).

No worker process touches CUDA before the fork: the parent never loads a
model, and each pool process builds its own store, registry and model host.

A pool process lost while the worker starts (killed, out of memory, a crash while
loading a library, or slower than the start-up timeout) no longer ends the worker:
Celery's own check raises ``WorkerLostError('Could not start worker processes')``
and exits for good; :class:`ResilientTaskPool` logs it and lets the pool replace the
process, and ``worker_proc_alive_timeout`` is raised from Celery's 4 s to
:data:`PROC_ALIVE_TIMEOUT` so that a slow start on a loaded machine is not killed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

from celery import Celery, Task, signals
from celery.concurrency.prefork import TaskPool
from kombu import Queue

from verticals.workers.queues import QUEUES, queue_of

log = logging.getLogger(__name__)

PRIORITIES = {"high": 0, "normal": 5, "low": 9}  # Redis: lower number is served first
TASK_NAME = "verticals.run_chunk"
MAX_RETRIES = 8  # machinery failures of a chunk: backoff 1, 2, 4... 60 s (with jitter), then its items fail
PROC_ALIVE_TIMEOUT = 60.0  # seconds a new pool process may take to start (Celery's default, 4 s, is too short)
POOL = "verticals.workers.celery_app:ResilientTaskPool"

# the visibility timeout: SAFETY x the longest expected chunk of a queue, at least MIN (and 5 min by default)
MIN_VISIBILITY_TIMEOUT = 300
VISIBILITY_SAFETY = 4.0
# seconds per item of a task that does not say (Task.expected_item_seconds): a model call on a batch is
# milliseconds per item; code-executing tasks run test suites in a jail
DEFAULT_ITEM_SECONDS = {"gpu": 0.1, "cpu": 0.1, "code": 60.0}
DEFAULT_VISIBILITY_TIMEOUT = MIN_VISIBILITY_TIMEOUT  # processes that consume no chunk queue (submitters)


def item_seconds(task: object) -> float:
    """How long one item of ``task`` is expected to take: its ``expected_item_seconds`` if it declares one,
    else :data:`DEFAULT_ITEM_SECONDS` of its queue."""
    declared = getattr(task, "expected_item_seconds", None)
    if isinstance(declared, int | float) and declared > 0:
        return float(declared)
    return DEFAULT_ITEM_SECONDS[queue_of(task)]


def expected_chunk_seconds(tasks: Iterable[object], queue: str) -> float:
    """The longest expected chunk of the tasks whose chunks go to ``queue``: chunk_size x seconds per item."""
    return max((int(getattr(task, "chunk_size", 256)) * item_seconds(task) for task in tasks
                if queue_of(task) == queue), default=0.0)


def derived_visibility_timeout(tasks: Iterable[object], queue: str) -> int:
    """Seconds before Redis hands an unacknowledged chunk of ``queue`` to another worker:
    :data:`VISIBILITY_SAFETY` x the longest expected chunk, at least :data:`MIN_VISIBILITY_TIMEOUT`, in whole
    minutes. A killed worker's chunk comes back after that long; a running chunk renews its lease
    (:class:`_Lease`), so one that outlives the estimate is still not handed out twice."""
    seconds = max(float(MIN_VISIBILITY_TIMEOUT), VISIBILITY_SAFETY * expected_chunk_seconds(tasks, queue))
    return int(math.ceil(seconds / 60.0) * 60)


def visibility_timeout(queue: str | None = None, tasks: Iterable[object] | None = None) -> int:
    """``VERTICALS_VISIBILITY_TIMEOUT`` when set; else derived for ``queue`` from ``tasks``
    (:func:`derived_visibility_timeout`); else :data:`DEFAULT_VISIBILITY_TIMEOUT` (a process that consumes
    no chunk queue holds no unacknowledged chunk)."""
    from verticals.config import settings

    override = settings().visibility_timeout
    if override:
        return override
    if queue is None or tasks is None:
        return DEFAULT_VISIBILITY_TIMEOUT
    return derived_visibility_timeout(tasks, queue)


def transport_options(vt: int, queue: str | None = None) -> dict[str, Any]:
    """The Redis transport options. A worker keeps its queue's unacknowledged chunks under keys of their own
    (``unacked:<queue>``...), so each queue's visibility timeout applies to its own chunks only: a short one
    for the cpu queue never hands out a long gpu chunk that is still running."""
    options: dict[str, Any] = {
        "visibility_timeout": vt,
        "queue_order_strategy": "priority",
        # look for chunks of dead workers often enough for a short visibility timeout
        "unacked_restore_interval": max(1, min(10, vt // 4)),
        "unacked_restore_throttle": 1,
    }
    if queue:
        options.update(unacked_key=f"unacked:{queue}", unacked_index_key=f"unacked_index:{queue}",
                       unacked_mutex_key=f"unacked_mutex:{queue}")
    return options


def configure_worker(app: Celery, queue: str, tasks: Iterable[object]) -> int:
    """Set the app of a worker serving ``queue`` up before it starts: the queue's visibility timeout and
    unacked keys, and the resilient pool. Returns the visibility timeout."""
    vt = visibility_timeout(queue, list(tasks))
    app.conf.broker_transport_options = transport_options(vt, queue)
    app.conf.worker_pool = POOL
    return vt


def task_id(job_id: str, start: int, dispatch_round: int) -> str:
    """Deterministic message id of a chunk, so a cancel can revoke the chunks it knows are queued."""
    return f"{job_id}:{start}:{dispatch_round}"


def make_app(broker: str | None = None) -> Celery:
    from verticals.config import broker_url

    url = broker or broker_url() or "redis://127.0.0.1:6379/0"
    app = Celery("verticals", broker=url, set_as_current=False)
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
        broker_transport_options=transport_options(visibility_timeout()),
        worker_proc_alive_timeout=PROC_ALIVE_TIMEOUT,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker restart must not end a worker
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_send_task_events=True,  # task events on: `celery flower` against the same broker shows the chunks
        task_send_sent_event=True,
        worker_enable_remote_control=True,
    )
    return app


app = make_app()


class ResilientTaskPool(TaskPool):
    """Celery's prefork pool, except that a pool process lost while the worker starts is logged and replaced.

    Celery checks once, right after the worker is ready, that no pool process has exited yet, and if one
    has, raises ``WorkerLostError('Could not start worker processes')``: the worker exits for good (a
    service manager restarts it into the same failure, or nothing does). The pool replaces a lost process
    anyway (as it does for one lost later), so here the check logs what happened and the worker goes on.
    """

    def did_start_ok(self) -> bool:
        if super().did_start_ok():
            return True
        log.error("a pool process exited while the worker was starting (killed, out of memory, or its start-up "
                  "failed: see the lines above); the pool starts a new one and the worker goes on")
        return True


class _WorkerState:
    """Per pool process: built lazily after the fork, never inherited."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store: Any = None
        self.registry: Any = None
        self.host: Any = None
        self.heartbeat: Any = None  # verticals.workers.fleet.Heartbeat of this pool process (Redis brokers)

    def get(self) -> tuple[Any, Any, Any]:
        with self.lock:
            if self.store is None:
                from verticals.core.models.host import ModelHost
                from verticals.core.store import open_store
                from verticals.registry import get_registry
                from verticals.tenancy.webhooks import Outbox

                registry = get_registry()
                store = open_store()
                Outbox(store).attach_to(registry)  # the jobs this worker finishes reach the tenants' webhooks
                self.registry = registry
                self.host = ModelHost(registry.models)
                self.store = store
            return self.store, self.registry, self.host


state = _WorkerState()


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    """In each pool process: drop any database connections copied from the parent; maybe preload models.

    Preloading runs in a background thread so that Celery's process-init timeout
    (a few seconds) is never tripped by a large model; a chunk that arrives
    meanwhile waits on the model host's lock instead of loading twice.
    """
    try:
        from verticals.config import database_url, settings
        from verticals.core.store.db import make_engine

        make_engine(database_url()).dispose(close=False)
        _start_heartbeat()
        threading.Thread(target=_deliver_events, name="verticals-events", daemon=True).start()
        if settings().preload:
            threading.Thread(target=_preload, name="verticals-preload", daemon=True).start()
    except Exception:  # never let the start of a pool process fail: its chunks set the store up again
        log.exception("pool process set-up failed; going on (the first chunk opens the store itself)")


@signals.celeryd_after_setup.connect
def _worker_setup(sender: str, instance: Any, **_: Any) -> None:
    """In the worker's main process, before the pool forks: its node name and queues, for the heartbeats."""
    from verticals.workers import fleet

    fleet.NODE = str(sender)
    try:
        fleet.QUEUES = sorted(instance.app.amqp.queues.consume_from)
    except Exception:  # the heartbeat only says less
        fleet.QUEUES = []


@signals.worker_ready.connect
def _worker_ready(**_: Any) -> None:
    """In the worker's main process, once its pool is up: its starting row leaves the fleet (the pool processes
    report themselves)."""
    from verticals.workers import fleet

    fleet.started()


def _start_heartbeat() -> None:
    """This pool process reports itself to the fleet (``verticals workers``) while it lives."""
    from verticals.config import settings
    from verticals.workers import fleet

    url = str(app.conf.broker_url or "")
    if fleet.is_redis(url):
        state.heartbeat = fleet.Heartbeat(url, settings().worker_heartbeat_s, host=lambda: state.host).start()


@signals.worker_process_shutdown.connect
def _process_shutdown(**_: Any) -> None:
    if state.heartbeat is not None:
        state.heartbeat.stop()


def _deliver_events() -> None:
    """Fire the ``job_finished`` events still pending (a process died between finishing a job and firing
    them): delivery is at least once. Runs once per pool process, in the background."""
    from verticals.core.jobs.service import JobService

    try:
        store, registry, _host = state.get()
    except Exception:
        log.exception("delivering pending job events failed; the next worker start tries again")
        return
    JobService(store, registry).deliver_pending()  # logs a failure: they stay pending for the next start


def _preload() -> None:
    from verticals.config import settings
    from verticals.workers.preload import preload_models

    try:
        _, registry, host = state.get()
        names = preload_models(registry, host, queue=settings().worker_queue)
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
def run_chunk_task(self: ChunkTask, job_id: str, start: int, end: int,
                   trace: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one chunk; a failure of the machinery (database down...) retries the chunk with backoff. ``trace``: the
    trace context of the dispatch (sent only when OTEL_* asks for traces), which the chunk's span continues."""
    from verticals.core import tracing
    from verticals.core.jobs.engine import run_chunk

    started = time.monotonic()
    lease = _Lease(self.app, self.request.id)
    if state.heartbeat is not None:
        state.heartbeat.running(job_id, start, end)
    try:
        store, registry, host = state.get()
        with tracing.attach(trace):
            report = run_chunk(store, registry, host, job_id, start, end)
    except KeyError as error:  # the job was deleted
        log.warning("chunk %s:%d-%d skipped: %s", job_id, start, end, error)
        return {"skipped": True}
    except Exception as error:
        log.debug("chunk failure", exc_info=True)
        raise ChunkFailed(describe(error)) from None
    finally:
        lease.stop()
        if state.heartbeat is not None:
            state.heartbeat.idle()
    took = time.monotonic() - started
    vt = int((self.app.conf.broker_transport_options or {}).get("visibility_timeout") or visibility_timeout())
    if took > vt:
        log.info("chunk %s:%d-%d took %.0fs, longer than the visibility timeout (%ds): its lease was renewed "
                 "while it ran, so no other worker took it", job_id, start, end, took, vt)
    return {"succeeded": report.succeeded, "failed": report.failed, "cancelled": report.cancelled,
            "finished": report.finished_status}


class _Lease:
    """While a chunk runs, its message's entry in the queue's unacked index is renewed every quarter of the
    visibility timeout, so Redis never hands a chunk that is still running to a second worker, however long
    it runs; once the worker is gone the renewals stop, and the chunk comes back after the timeout."""

    def __init__(self, app: Celery, task_id: str | None):
        self._stop = threading.Event()
        options = app.conf.broker_transport_options or {}
        url = str(app.conf.broker_url or "")
        if not task_id or not url.startswith(("redis://", "rediss://", "unix://")):
            return
        self.task_id = task_id
        self.url = url
        self.every = max(1.0, float(options.get("visibility_timeout") or DEFAULT_VISIBILITY_TIMEOUT) / 4)
        self.hash_key = str(options.get("unacked_key") or "unacked")
        self.index_key = str(options.get("unacked_index_key") or "unacked_index")
        threading.Thread(target=self._renew, name="verticals-lease", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _renew(self) -> None:
        import json

        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        tag: bytes | None = None
        try:
            while not self._stop.wait(self.every):
                try:
                    if tag is None:  # the in-flight messages of the queue: a few, one per busy pool process
                        for field, value in client.hscan_iter(self.hash_key):
                            if self.task_id.encode() in value and \
                                    json.loads(value)[0].get("headers", {}).get("id") == self.task_id:
                                tag = field
                                break
                    if tag is not None and not self._stop.is_set():
                        client.zadd(self.index_key, {tag: time.time()}, xx=True)
                except Exception:
                    log.debug("could not renew the lease of chunk %s", self.task_id, exc_info=True)
        finally:
            client.close()


def describe(error: BaseException) -> str:
    """An exception for logs and item errors, without SQL parameters (they may hold item text)."""
    cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver error with its parameters
    first_line = (str(cause).strip().splitlines() or [""])[0][:300]
    return f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__


def _give_up(job_id: str, start: int, end: int, error: BaseException) -> None:
    """The chunk failed on every retry: fail its pending items with the reason, so the job can end."""
    from verticals.core.jobs.engine import fail_chunk

    try:
        store, registry, _host = state.get()
        why = str(error) if isinstance(error, ChunkFailed) else describe(error)
        reason = (f"worker error after retries: {why} "
                  f"(fix the cause, then `verticals jobs retry {job_id[:8]} --failed`)")
        fail_chunk(store, registry, job_id, start, end, reason)
    except Exception:
        log.exception("could not record the failure of chunk %s:%d-%d", job_id, start, end)
