"""Fair turns for the local executor's threads: tenants take turns chunk by chunk, each at most ``per_tenant``
chunks at once, so that one tenant's hung or heavy jobs cannot hold every thread (issue 22).

A job waits in its tenant's line; a thread takes the job at the head of the next tenant's line (round robin
over the tenants with a job waiting and a free place), runs one of its chunks, and puts it back at the end of
its tenant's line while it has chunks left. A tenant whose ``per_tenant`` chunks are running is skipped
until one ends: with more threads than ``per_tenant``, the other tenants always get a thread. Jobs without a
tenant (the CLI's, the in-process SDK's) form one line of their own.

Small on purpose: the admission side (how many jobs a tenant may have waiting: 429 with ``Retry-After``) is
:mod:`verticals.tenancy.quotas`; operator quotas per tenant build on both.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

__all__ = ["FairQueue"]


class FairQueue:
    """Jobs waiting for a pool of threads, in turns per tenant. Thread-safe.

    ``per_tenant``: chunks of one tenant running at once (None: no limit). :meth:`put` a job (a job already
    waiting or running is not queued twice: it is put back after its running chunk), :meth:`get` the next
    (blocks; None once :meth:`close` was called and nothing waits), :meth:`done` when its chunk ended.
    """

    def __init__(self, per_tenant: int | None = None):
        self.per_tenant = per_tenant
        self._cond = threading.Condition()
        self._lines: dict[Any, deque[str]] = {}  # tenant -> its waiting jobs, in order
        self._turns: deque[Any] = deque()  # tenants with a waiting job, in turn order
        self._running: Counter[Any] = Counter()  # tenant -> its chunks running now
        self._tenant: dict[str, Any] = {}  # every job waiting or running -> its tenant
        self._busy: set[str] = set()  # jobs running now
        self._again: set[str] = set()  # running jobs put again meanwhile: back in line after the chunk
        self._closing = False

    def put(self, job_id: str, tenant: Any) -> None:
        with self._cond:
            if job_id in self._busy:
                self._again.add(job_id)
                return
            if job_id in self._tenant:
                return  # already waiting
            self._enqueue(job_id, tenant)

    def _enqueue(self, job_id: str, tenant: Any) -> None:  # under the lock
        self._tenant[job_id] = tenant
        line = self._lines.setdefault(tenant, deque())
        line.append(job_id)
        if tenant not in self._turns:
            self._turns.append(tenant)
        self._cond.notify()

    def get(self) -> str | None:
        """The next job to run one chunk of; None when closing and nothing waits."""
        with self._cond:
            while True:
                for _ in range(len(self._turns)):
                    tenant = self._turns[0]
                    self._turns.rotate(-1)  # this tenant's next turn comes after every other tenant's
                    if self.per_tenant is not None and self._running[tenant] >= self.per_tenant:
                        continue
                    line = self._lines[tenant]
                    job_id = line.popleft()
                    if not line:
                        del self._lines[tenant]
                        self._turns.remove(tenant)
                    self._running[tenant] += 1
                    self._busy.add(job_id)
                    return job_id
                if self._closing and not self._turns:
                    return None
                self._cond.wait()

    def done(self, job_id: str, more: bool) -> None:
        """The chunk of ``job_id`` that :meth:`get` gave ended; ``more``: the job has chunks left."""
        with self._cond:
            tenant = self._tenant.pop(job_id)
            self._busy.discard(job_id)
            self._running[tenant] -= 1
            if self._running[tenant] <= 0:
                del self._running[tenant]
            again = job_id in self._again
            self._again.discard(job_id)
            if more or again:
                self._enqueue(job_id, tenant)
            self._cond.notify_all()

    def waiting(self) -> int:
        """Jobs waiting for a thread (not running now)."""
        with self._cond:
            return sum(len(line) for line in self._lines.values())

    def running(self, tenant: Any) -> int:
        with self._cond:
            return self._running[tenant]

    def close(self) -> None:
        """Let :meth:`get` return None once nothing waits (what waits still runs)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
