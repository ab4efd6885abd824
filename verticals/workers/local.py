"""The local executor: the embedded default. No broker; chunks run in this process, in order."""

from __future__ import annotations

from collections.abc import Callable

from verticals.core.jobs import finish_if_done, run_chunk
from verticals.core.models import ModelHost
from verticals.core.store import Store
from verticals.plugins import Registry


class LocalExecutor:
    name = "local"
    waits = True  # execute() returns when the job is done

    def __init__(self, store: Store, registry: Registry, host: ModelHost | None = None):
        self.store = store
        self.registry = registry
        self.host = host or ModelHost(registry.models)

    def execute(self, job_id: str, on_progress: Callable[[int], None] | None = None) -> str | None:
        """Run every chunk that still has pending items; return the final status."""
        status = None
        for start, end in self.store.chunk_ranges(job_id):
            report = run_chunk(self.store, self.registry, self.host, job_id, start, end, on_progress)
            status = report.finished_status or status
        return status or finish_if_done(self.store, self.registry, job_id) or \
            self.store.summary(job_id)["status"]
