"""The hook markers (:data:`hookspec`, :data:`hookimpl`) and every hook specification.

Implement a hook with ``@verticals.hookimpl`` on a function of the same name in the module your distribution
registers under the entry-point group ``verticals``; a misspelled hook name is rejected when the plugin loads.
Each hook is documented in ``docs/plugins.md`` too (a test checks it).

How the hooks are called (the registry, ``verticals.registry.Registry``, calls each implementation on its own,
so that a failure is attributed to the plugin that raised it):

=================  ===========================================================================================
hook               semantics
=================  ===========================================================================================
register_tasks     once per plugin when the registry is built; raising quarantines the plugin
register_models    idem (a quarantined plugin registers no task and no model)
register_commands  once per plugin when the CLI starts; raising is logged with the plugin's name, the CLI starts
prepare_items      a chain, in pluggy's call order: each implementation receives the list the previous one
                   returned (``None``: unchanged); raising fails every item of that batch, naming the plugin
finish_items       every implementation sees the same ``outputs`` list and may replace entries in place; raising
                   fails every item of that batch, naming the plugin
job_submitted      once per job; raising is logged with the plugin's name and never affects the job
job_finished       at least once per job (an outbox event; see the spec); raising is logged with the plugin's
                   name and never affects the job
=================  ===========================================================================================

pluggy's call order: implementations marked ``tryfirst=True`` first, then the others, the plugin registered
*last* first (built-in plugins are registered before the installed ones, so they come last), then those marked
``trylast=True``. Hook wrappers (``wrapper=True`` / ``hookwrapper=True``) are not supported on these hooks: a
plugin declaring one is quarantined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel

from verticals.contract.handles import JobSummary
from verticals.contract.models import ModelSpec
from verticals.contract.tasks import ItemError, Task

if TYPE_CHECKING:
    import typer

__all__ = ["finish_items", "hookimpl", "hookspec", "job_finished", "job_submitted", "prepare_items",
           "register_commands", "register_models", "register_tasks"]

# -------------------------------------------------------------------------------------------------------- hooks

hookspec = pluggy.HookspecMarker("verticals")
hookimpl = pluggy.HookimplMarker("verticals")

# Every hook returns its result to the registry, which calls the implementations one by one (never
# firstresult, never historic); see the table in the module docstring for what each failure does.


@hookspec(firstresult=False)
def register_tasks(register: Callable[[type[Task[Any, Any, Any]]], None]) -> None:
    """Register the tasks a plugin provides.

    Called once per plugin when the plugin registry is built (CLI start, worker start,
    API start).

    :param register: call ``register(TaskClass)`` for each ``Task`` subclass.
        A task name already registered by another plugin is rejected, and the
        clash is shown by ``verticals plugins list``.

    If it raises, the plugin is quarantined: none of its tasks and models is registered, its other hooks are
    not called, ``verticals plugins list`` shows the error (``VERTICALS_STRICT_PLUGINS=1``: the error is raised).
    """


@hookspec(firstresult=False)
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register named model specs that tasks refer to by name.

    Called once per plugin when the registry is built, before its ``register_tasks``. A plugin may register
    only models (e.g. to ship weights, or to point a task at a bigger model).

    :param register: call ``register(ModelSpec(...))`` for each model. A later
        registration of the same name replaces an earlier one (the built-in
        specs are registered first), so a plugin can swap a task's model.

    If it raises, the plugin is quarantined as for ``register_tasks``.
    """


@hookspec(firstresult=False)
def register_commands(cli: typer.Typer) -> None:
    """Add commands to the ``verticals`` command line.

    Called once per plugin when the CLI starts.

    :param cli: the root ``typer.Typer`` app; add commands with
        ``@cli.command()`` or sub-apps with ``cli.add_typer(...)``.

    If it raises, the error is logged with the plugin's name and the CLI starts without what it did not add.
    """


@hookspec(firstresult=False)
def prepare_items(task: Task[Any, Any, Any], items: list[BaseModel]) -> list[BaseModel] | None:
    """Inspect or rewrite a batch of validated inputs before inference. A chain.

    Called for every task and every batch, in the worker, before ``Task.run``, once per implementation in
    pluggy's call order (module docstring). Use it for cross-cutting concerns (redaction, auditing).

    :param task: the task instance about to run.
    :param items: the batch as the previous implementation left it (the validated inputs for the first).
    :return: a replacement list of the same length and order (items of ``task.Input``, or what validates
        as one), or ``None`` to leave the batch unchanged. The next implementation receives it, so two
        redacting plugins both apply.

    If it raises (or returns a list of another length, or items that are not valid inputs), every item of
    the batch fails with ``plugin NAME failed in prepare_items: ErrorType: message`` (no message for a
    ``sensitive`` task) and the job goes on with the next batch.
    """


@hookspec(firstresult=False)
def finish_items(task: Task[Any, Any, Any], items: list[BaseModel], outputs: list[BaseModel | ItemError]) -> None:
    """Observe a batch after inference, before its results are stored.

    Called for every task and every batch, in the worker, once per implementation in pluggy's call order.

    :param task: the task instance that ran.
    :param items: the (possibly prepared) inputs.
    :param outputs: one output model or ``ItemError`` per input, in order;
        a hook may replace entries in place (e.g. to redact an output); the next implementation and the
        store see the replacement.

    If it raises (or changes the length of ``outputs``), every item of the batch fails with
    ``plugin NAME failed in finish_items: ...`` (as for ``prepare_items``): no output of the batch is stored
    unfinished.
    """


@hookspec(firstresult=False)
def job_submitted(job: JobSummary) -> None:
    """A job was stored and is about to be executed.

    Called once per job, in the submitting process.

    :param job: the job summary (``id``, ``task``, ``params``, ``total``, ...)
        as ``verticals jobs status --json`` prints it. Never item contents.

    If it raises, the error is logged with the plugin's name; the job is not affected.
    """


@hookspec(firstresult=False)
def job_finished(job: JobSummary) -> None:
    """A job reached a final state (succeeded, partial, failed, cancelled).

    The transition is one conditional database update that also writes a ``job_finished`` event to an
    outbox; the event is delivered (this hook called) by the process that finished the job or, if it died
    first, by the next process that delivers pending events. So: at least once per job (in practice once);
    make an implementation idempotent on ``job["id"]``. Use it for webhooks and notifications.

    :param job: the job summary, with final ``status`` and ``counts``.

    If it raises, the error is logged with the plugin's name; the job and the other plugins are not affected,
    and the event is not delivered again for it.
    """
