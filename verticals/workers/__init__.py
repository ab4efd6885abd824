"""Executors: where chunks run. ``local`` (default) or ``celery`` (when VERTICALS_BROKER_URL is set).

The composition roots (CLI, API server, SDK in-process mode, worker) build their
:class:`~verticals.core.jobs.service.JobService` with :func:`job_service`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when used: `verticals worker` reads verticals.workers.queues and .fleet first, and
    # reports itself to the fleet before the store, the engine and torch are imported (seconds on a busy machine)
    from verticals.core.jobs.executor import Executor, ExecutorUnavailable, ProgressCallback
    from verticals.core.jobs.service import JobService
    from verticals.core.models.host import ModelHost
    from verticals.core.store import Store
    from verticals.registry import Registry
    from verticals.workers.preload import preload_models

__all__ = ["Executor", "ExecutorUnavailable", "get_executor", "job_service", "preload_models"]


def __getattr__(name: str) -> Any:
    if name in ("Executor", "ExecutorUnavailable"):
        from verticals.core.jobs import executor

        return getattr(executor, name)
    if name == "preload_models":
        from verticals.workers.preload import preload_models

        return preload_models
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_executor(store: Store, registry: Registry, host: ModelHost | None = None, name: str | None = None,
                 threads: int = 1, on_progress: ProgressCallback | None = None) -> Executor:
    """The executor ``name`` (default: ``celery`` when a broker is configured, else ``local``).

    ``ExecutorUnavailable`` when the Celery executor is asked for and cannot be used (Celery not
    installed, no broker URL); ``ValueError`` for an unknown name. ``threads`` and ``on_progress`` are the
    local executor's, for the jobs it runs in the background (:meth:`~verticals.core.jobs.service.JobService.start`)."""
    from verticals.config import broker_url
    from verticals.core.jobs.executor import ExecutorUnavailable

    name = name or ("celery" if broker_url() else "local")
    if name == "local":
        from verticals.core.jobs.executor import LocalExecutor

        return LocalExecutor(store, registry, host, threads=threads, on_progress=on_progress)
    if name == "celery":
        try:
            from verticals.workers.celery_executor import CeleryExecutor
        except ImportError as error:
            raise ExecutorUnavailable(
                f"VERTICALS_BROKER_URL is set but the Celery executor cannot be used ({type(error).__name__}: "
                f"{error}). Install it with pip install 'verticals[celery]', or unset VERTICALS_BROKER_URL to run "
                "jobs in this process") from None
        return CeleryExecutor(store, registry)
    raise ValueError(f"unknown executor {name!r}: use local or celery")


def job_service(store: Store, registry: Registry, host: ModelHost | None = None,
                executor: Executor | None = None, name: str | None = None, threads: int = 1,
                on_progress: ProgressCallback | None = None) -> JobService:
    """A job service over ``executor``, or over the configured one (built on first use: reading results,
    cancelling or exporting never needs it; running does, and says what is wrong when it cannot be built)."""
    from verticals.core.jobs.service import JobService
    from verticals.core.models.host import ModelHost

    host = host or getattr(executor, "host", None)
    if executor is not None:
        return JobService(store, registry, executor, host=host)
    shared = host or ModelHost(registry.models)
    return JobService(store, registry, host=shared,
                      executor_factory=lambda: get_executor(store, registry, shared, name=name, threads=threads,
                                                            on_progress=on_progress))
