"""The plugin contract: every hook a verticals plugin may implement.

Implement a hook with ``@verticals.hookimpl`` on a function of the same name
in the module your distribution registers under the entry-point group
``verticals``. Hooks *register* things; objects (Task, ModelSpec) do the work.
A misspelled hook name is rejected when the plugin loads. Each hook below is
documented in ``docs/plugins.md`` too (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer
    from pydantic import BaseModel

    from verticals.core.models import ModelSpec
    from verticals.core.tasks import Task

hookspec = pluggy.HookspecMarker("verticals")
hookimpl = pluggy.HookimplMarker("verticals")


@hookspec
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    """Register the tasks a plugin provides.

    Called once when the plugin registry is built (CLI start, worker start,
    API start).

    :param register: call ``register(TaskClass)`` for each ``Task`` subclass.
        A task name already registered by another plugin is rejected, and the
        clash is shown by ``verticals plugins list``.
    """


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register named model specs that tasks refer to by name.

    Called once when the plugin registry is built. A plugin may register only
    models (e.g. to ship weights, or to point a task at a bigger model).

    :param register: call ``register(ModelSpec(...))`` for each model. A later
        registration of the same name replaces an earlier one (the built-in
        specs are registered first), so a plugin can swap a task's model.
    """


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add commands to the ``verticals`` command line.

    Called once when the CLI starts.

    :param cli: the root ``typer.Typer`` app; add commands with
        ``@cli.command()`` or sub-apps with ``cli.add_typer(...)``.
    """


@hookspec
def prepare_items(task: Task, items: list[BaseModel]) -> list[BaseModel] | None:
    """Inspect or rewrite a batch of validated inputs before inference.

    Called for every task and every batch, in the worker, before
    ``Task.run``. Use it for cross-cutting concerns (redaction, auditing).

    :param task: the task instance about to run.
    :param items: the validated input models of the batch.
    :return: a replacement list of the same length and order, or ``None`` to
        leave the batch unchanged. When several plugins return a list, each
        sees the previous one's result.
    """


@hookspec
def finish_items(task: Task, items: list[BaseModel], outputs: list[Any]) -> None:
    """Observe a batch after inference, before its results are stored.

    Called for every task and every batch, in the worker.

    :param task: the task instance that ran.
    :param items: the (possibly prepared) inputs.
    :param outputs: one output model or ``ItemError`` per input, in order;
        a hook may replace entries in place (e.g. to redact an output).
    """


@hookspec
def job_submitted(job: dict[str, Any]) -> None:
    """A job was stored and is about to be executed.

    Called once per job, in the submitting process.

    :param job: the job summary (``id``, ``task``, ``params``, ``total``, ...)
        as ``verticals jobs status --json`` prints it. Never item contents.
    """


@hookspec
def job_finished(job: dict[str, Any]) -> None:
    """A job reached a final state (succeeded, partial, failed, cancelled).

    Called exactly once per job, by whichever process finished its last
    item (the transition is a conditional database update, so concurrent
    workers cannot both fire it). Use it for webhooks and notifications.

    :param job: the job summary, with final ``status`` and ``counts``.
    """
