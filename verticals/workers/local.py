"""The local executor: the embedded default. No broker; chunks run in this process, in order.

``execute`` runs a job's pending chunks on the calling thread and returns its final status;
``start`` hands the job to background threads of this process (started on first use) and
returns at once: the API server and the SDK's in-process mode submit that way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from verticals.core.executor import ProgressCallback
from verticals.core.jobs import finish_if_done, run_chunk
from verticals.core.models import ModelHost
from verticals.core.store import Store
from verticals.plugins import Registry

log = logging.getLogger(__name__)


class LocalExecutor:
    name = "local"
    waits = True  # execute() returns when the job is done
    remote = False  # background jobs die with this process

    def __init__(self, store: Store, registry: Registry, host: ModelHost | None = None, threads: int = 1,
                 on_progress: ProgressCallback | None = None, poll_interval: float = 0.1):
        self.store = store
        self.registry = registry
        self.host = host or ModelHost(registry.models)
        self.threads = max(1, threads)
        self.on_progress = on_progress  # for jobs run by start(): e.g. the API's items counter
        self.poll_interval = poll_interval
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- run here ---------------------------------------------------------------------------
    def execute(self, job_id: str, on_progress: ProgressCallback | None = None) -> str:
        """Run every chunk that still has pending items; return the final status."""
        job_id = self.store.job(job_id).id
        status = None
        for start, end in self.store.chunk_ranges(job_id):
            report = run_chunk(self.store, self.registry, self.host, job_id, start, end, on_progress)
            status = report.finished_status or status
        return status or finish_if_done(self.store, self.registry, job_id) or \
            self.store.summary(job_id)["status"]

    # -- run in the background ----------------------------------------------------------------
    def start(self, job_id: str) -> int:
        """Queue the job for this process's background threads; return its chunks with pending items."""
        job_id = self.store.job(job_id).id
        chunks = len(self.store.chunk_ranges(job_id))
        with self._lock:
            if not self._workers:
                for number in range(self.threads):
                    thread = threading.Thread(target=self._work, name=f"verticals-jobs-{number}", daemon=True)
                    thread.start()
                    self._workers.append(thread)
        self._queue.put(job_id)
        return chunks

    def pending(self) -> int:
        """Jobs queued for the background threads and not picked up yet."""
        return self._queue.qsize()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self.execute(job_id, on_progress=self.on_progress)
            except Exception:
                log.exception("job %s failed to run in this process; its pending items stay pending "
                              "(resume it to run them)", job_id)

    def wait(self, job_id: str, on_progress: ProgressCallback | None = None, timeout: float | None = None) -> str:
        """Poll the store until the job is finished (run by a background thread or another process)."""
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
            if not summary["counts"].get("pending") and self.store.job(job_id).submitted:
                status = finish_if_done(self.store, self.registry, job_id)
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
        for _ in workers:
            self._queue.put(None)
        for thread in workers:
            thread.join(timeout=timeout)
