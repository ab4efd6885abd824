"""The ``Executor`` protocol: where a job's chunks run.

An executor only decides *where* :func:`verticals.core.jobs.run_chunk` is called for each
(job id, chunk range) of a job; every rule about a job (what cancel, retry or resume mean)
lives in :class:`verticals.core.service.JobService`, which drives an executor through this
protocol. The implementations live in :mod:`verticals.workers` (``local``: in this process;
``celery``: on workers through a broker); the core never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

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
    - ``execute(job_id, on_progress)``: run (or dispatch) the pending chunks and wait until the job
      is finished; return its final status.
    - ``wait(job_id, on_progress, timeout)``: wait until the job is finished, without handing any
      chunk over (except chunks a broker restart lost); return the final status. ``TimeoutError``
      after ``timeout`` seconds.
    - ``revoke(job_id, starts)``: forget the chunks starting at ``starts`` that were handed over and
      not started (their items are already cancelled in the store): revoke queued messages, drop
      queued local work. Best effort: a chunk that arrives anyway finds nothing pending.
    - ``queue_status(job_id)``: where the job's chunks wait, as this executor knows it (Celery: ``queue``,
      ``priority``, ``broker_backlog``; local: nothing). :meth:`JobService.queue_status` adds the chunk counts.
    - ``close()``: stop background work this executor started (threads, connections).
    """

    name: str
    remote: bool

    def start(self, job_id: str) -> int: ...

    def execute(self, job_id: str, on_progress: ProgressCallback | None = None) -> str: ...

    def wait(self, job_id: str, on_progress: ProgressCallback | None = None,
             timeout: float | None = None) -> str: ...

    def revoke(self, job_id: str, starts: Sequence[int]) -> int: ...

    def queue_status(self, job_id: str) -> dict[str, Any]: ...

    def close(self) -> None: ...
