"""The queues chunks go to (no Celery needed to name them): ``gpu``, ``cpu`` and ``code``."""

from __future__ import annotations

__all__ = ["QUEUES", "queue_of"]

QUEUES = ("gpu", "cpu", "code")  # code: tasks that execute untrusted code (Task.executes_code), kept apart


def queue_of(task: object) -> str:
    """The queue a task's chunks go to: ``code`` for tasks that execute untrusted code, else its device class."""
    if getattr(task, "executes_code", False):
        return "code"
    device = getattr(task, "device", "cpu")
    return device if device in QUEUES else "cpu"
