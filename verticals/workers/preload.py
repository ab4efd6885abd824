"""Models loaded before work arrives: ``verticals worker --preload`` (each pool process) and ``verticals serve
--preload`` (before the API takes requests)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from verticals.core.models.host import ModelHost
from verticals.registry import Registry
from verticals.workers.queues import queue_of

__all__ = ["preload_models"]

preload_log = logging.getLogger("verticals.preload")


def preload_models(registry: Registry, host: ModelHost, tasks: Iterable[str] | None = None,
                   queue: str | None = None) -> list[str]:
    """Load the models of ``tasks`` (names; default: every registered task, or those whose chunks go to
    ``queue``) into ``host`` now, each once; return their names, in load order. One INFO line per model on the
    ``verticals.preload`` logger (name, tasks, source, device, seconds: never an item). ``verticals worker
    --preload`` (each pool process) and ``verticals serve --preload`` (before the API takes requests) use it.
    An unknown task name raises the registry's error; a model that fails to load is logged and left to load
    on first use."""
    if tasks is not None:
        chosen = [registry.task(name) for name in tasks]
    elif queue:
        chosen = [task for task in registry.tasks.values() if queue_of(task) == queue]
    else:
        chosen = list(registry.tasks.values())
    users: dict[str, list[str]] = {}
    for task in chosen:
        for model_name in task.models.values():
            users.setdefault(model_name, []).append(task.name)
    loaded: list[str] = []
    for name in sorted(users):
        started = time.perf_counter()
        try:
            model = host.get(name)
        except Exception as error:
            preload_log.error("model %s (for %s) could not be preloaded: %s: %s; it loads on first use", name,
                              ", ".join(users[name]), type(error).__name__, (str(error).splitlines() or [""])[0][:300])
            continue
        source = model.provenance()
        preload_log.info("model %s loaded for %s: %s %s on %s (%s), %.1fs", name, ", ".join(users[name]),
                         source.get("source"), source.get("reference"), model.device, source.get("precision"),
                         time.perf_counter() - started)
        loaded.append(name)
    return loaded
