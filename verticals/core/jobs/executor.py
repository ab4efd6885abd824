"""The ``Executor`` protocol (where a job's chunks run) and the local executor.

An executor only decides *where* :func:`verticals.core.jobs.engine.run_chunk` is called for each
(job id, chunk range) of a job; every rule about a job (what cancel, retry or resume mean)
lives in :class:`verticals.core.jobs.service.JobService`, which drives an executor through this
protocol. :class:`LocalExecutor` (chunks run in this process: the embedded default) is core;
the distributed one (Celery) lives in :mod:`verticals.workers`, which the core never imports:
the composition roots pick the executor (``verticals.workers.get_executor``) and hand it in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from verticals.core import tracing
from verticals.core.jobs.engine import run_chunk
from verticals.core.jobs.fairness import FairQueue
from verticals.core.models.host import ModelHost

if TYPE_CHECKING:
    from verticals.core.store import Store
    from verticals.registry import Registry

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]
"""Called with how many more items of the job are done (succeeded, failed or cancelled)."""


class ExecutorUnavailable(RuntimeError):
    """Jobs cannot be run now (no broker, the broker is down, no executor configured).
    The message says what to do; the job stays stored and can be resumed."""


@runtime_checkable
class Executor(Protocol):
    """Runs the pending chunks of stored jobs.

    - ``name``: ``"local"`` or ``"celery"`` (shown by ``/readyz``, ``verticals worker``...).
    - ``remote``: chunks run outside this process, so what :meth:`start` handed over goes on after this
      process exits (Celery: True; local: False, its background threads die with the process).
    - ``start(job_id)``: hand the job's pending chunks over and return at once (the local executor
      runs them on a background thread of this process; Celery sends one message per chunk).
      Returns how many chunks were handed over.
    - ``execute(job_id, on_progress)``: run (or dispatch) the pending chunks and wait until nothing of the
      job is pending; return its final status (:func:`outcome`).
    - ``wait(job_id, on_progress, timeout)``: wait until nothing of the job is pending, without handing any
      chunk over (except chunks a broker restart lost); return the final status. ``TimeoutError``
      after ``timeout`` seconds.
      An executor never finishes a job: the chunk that writes its last results does (``run_chunk``), and
      :class:`~verticals.core.jobs.service.JobService` after every ``execute`` and ``wait`` (what a process
      that died between writing and finishing left).
    - ``revoke(job_id, starts)``: forget the chunks starting at ``starts`` that were handed over and
      not started (their items are already cancelled in the store): revoke queued messages, drop
      queued local work. Best effort: a chunk that arrives anyway finds nothing pending.
    - ``queue_status(job_id)``: where the job's chunks wait, as this executor knows it (Celery: ``queue``,
      ``priority``, ``broker_backlog``; local: nothing). :meth:`JobService.queue_status` adds the chunk counts.
    - ``check()``: raise :class:`ExecutorUnavailable` when chunks cannot be handed over now (Celery: the
      broker does not answer). Asked before a job is stored (:meth:`JobService.check_ready`), so that no
      job waits ``queued`` for an executor that is down.
    - ``close()``: stop background work this executor started (threads, connections).
    """

    name: str
    remote: bool

    def check(self) -> None: ...

    def start(self, job_id: str) -> int: ...

    def execute(self, job_id: str, on_progress: ProgressCallback | None = None) -> str: ...

    def wait(self, job_id: str, on_progress: ProgressCallback | None = None,
             timeout: float | None = None) -> str: ...

    def revoke(self, job_id: str, starts: Sequence[int]) -> int: ...

    def queue_status(self, job_id: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


def outcome(store: Store, job_id: str) -> str | None:
    """The final status of a job once nothing of it is pending (the one table of
    :func:`verticals.core.store.repo.final_status`, whether or not it is finished yet); None while items are
    pending or its submission is not complete. What an executor's ``execute`` and ``wait`` return."""
    from verticals.core.store.repo import final_status

    job = store.job(job_id)
    if job.final_status:
        return str(job.final_status)
    counts = store.counts(job.id)
    if counts.get("pending") or not job.submitted:
        return None
    return final_status(counts)


class LocalExecutor:
    """The embedded default: no broker; chunks run in this process, in order.

    ``execute`` runs a job's pending chunks on the calling thread and returns its final status;
    ``start`` hands the job to background threads of this process (started on first use) and
    returns at once: the API server and the SDK's in-process mode submit that way.
    """

    name = "local"
    waits = True  # execute() returns when the job is done
    remote = False  # background jobs die with this process

    def __init__(self, store: Store, registry: Registry, host: ModelHost | None = None, threads: int = 1,
                 on_progress: ProgressCallback | None = None, poll_interval: float = 0.1,
                 per_tenant: int | None = None):
        self.store = store
        self.registry = registry
        self.host = host or ModelHost(registry.models)
        self.threads = max(1, threads)
        self.on_progress = on_progress  # for jobs run by start(): e.g. the API's items counter
        self.poll_interval = poll_interval
        self.per_tenant = per_tenant  # chunks of one tenant running at once in the background (None: any)
        self._queue = FairQueue(per_tenant)
        self._next: dict[str, int] = {}  # job -> the first chunk start its next turn may take
        self._rewound: set[str] = set()  # jobs started again (retry, resume): their next turn starts at 0
        self._traces: dict[str, dict[str, str]] = {}  # job -> the trace context it was started in (OTEL_* set)
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- run here ---------------------------------------------------------------------------
    def execute(self, job_id: str, on_progress: ProgressCallback | None = None) -> str:
        """Run every chunk that still has pending items; return the final status. Interrupted (Ctrl-C, SIGTERM:
        ``KeyboardInterrupt``), the job is marked ``interrupted`` (its finished items are kept; a resume runs the
        rest) before the interrupt goes on."""
        job_id = self.store.job(job_id).id
        status = None
        try:
            for start, end in self.store.chunk_ranges(job_id):
                report = run_chunk(self.store, self.registry, self.host, job_id, start, end, on_progress)
                status = report.finished_status or status
        except KeyboardInterrupt:
            self.store.mark_interrupted(job_id)
            raise
        return status or outcome(self.store, job_id) or self.store.summary(job_id)["status"]

    def check(self) -> None:
        """Always ready: chunks run in this process."""

    # -- run in the background ----------------------------------------------------------------
    def start(self, job_id: str) -> int:
        """Queue the job for this process's background threads; return its chunks with pending items.

        The threads take turns per tenant, one chunk at a time (:class:`~verticals.core.jobs.fairness.FairQueue`),
        each tenant at most ``per_tenant`` chunks at once."""
        job = self.store.job(job_id)
        chunks = len(self.store.chunk_ranges(job.id))
        with self._lock:
            if not self._workers:
                for number in range(self.threads):
                    thread = threading.Thread(target=self._work, name=f"verticals-jobs-{number}", daemon=True)
                    thread.start()
                    self._workers.append(thread)
            self._rewound.add(job.id)
            trace_context = tracing.carrier()  # the request's trace goes on in the background threads
            if trace_context:
                self._traces[job.id] = trace_context
        self._queue.put(job.id, job.tenant_id)
        return chunks

    def pending(self) -> int:
        """Jobs queued for the background threads and not running now."""
        return self._queue.waiting()

    def _work(self) -> None:
        queue = self._queue
        while True:
            job_id = queue.get()
            if job_id is None:
                return
            more = False
            try:
                more = self._one_chunk(job_id)
            except Exception:
                log.exception("job %s failed to run in this process; its pending items stay pending "
                              "(resume it to run them)", job_id)
            finally:
                queue.done(job_id, more)

    def _one_chunk(self, job_id: str) -> bool:
        """Run the job's next pending chunk (its turn); True when it has chunks after it."""
        with self._lock:
            first = 0 if job_id in self._rewound else self._next.get(job_id, 0)
            self._rewound.discard(job_id)
        ranges = [span for span in self.store.chunk_ranges(job_id) if span[0] >= first]
        if not ranges:  # nothing pending: whoever left it so finished it (run_chunk, JobService)
            with self._lock:
                self._next.pop(job_id, None)
                self._traces.pop(job_id, None)
            return False
        start, end = ranges[0]
        with tracing.attach(self._traces.get(job_id)):
            run_chunk(self.store, self.registry, self.host, job_id, start, end, self.on_progress)
        with self._lock:  # a chunk left pending (its items were given up on) is not taken again this round
            self._next[job_id] = 0 if job_id in self._rewound else end
            if len(ranges) > 1 or job_id in self._rewound:
                return True
            self._next.pop(job_id, None)
            self._traces.pop(job_id, None)
        return False  # its last chunk's run_chunk finished it

    def wait(self, job_id: str, on_progress: ProgressCallback | None = None, timeout: float | None = None) -> str:
        """Poll the store until nothing of the job is pending (run by a background thread or another process)."""
        job_id = self.store.job(job_id).id
        started = time.monotonic()
        last_done = None
        while True:
            summary = self.store.summary(job_id)
            if last_done is not None and on_progress and summary["done"] > last_done:
                on_progress(summary["done"] - last_done)
            last_done = summary["done"]
            if summary["finished_at"]:
                return summary["status"]
            status = outcome(self.store, job_id)
            if status:
                return status
            if timeout is not None and time.monotonic() - started > timeout:
                raise TimeoutError(f"job {job_id} not finished after {timeout:.0f}s")
            time.sleep(self.poll_interval)

    def revoke(self, job_id: str, starts: Sequence[int]) -> int:
        """Nothing to take back: a queued job's chunks find their items cancelled when they run."""
        return 0

    def queue_status(self, job_id: str) -> dict[str, Any]:
        """No queue outside this process: nothing to add to the chunk counts."""
        return {}

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the background threads after the jobs queued for them (waiting at most ``timeout`` s for
        each thread; ``None``: until they are done, as the SDK's ``close`` does)."""
        with self._lock:
            workers, self._workers = self._workers, []
            closing, self._queue = self._queue, FairQueue(self.per_tenant)  # a later start() gets new threads
        closing.close()
        for thread in workers:
            thread.join(timeout=timeout)
