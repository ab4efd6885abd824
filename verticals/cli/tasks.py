"""``verticals tasks ...``: the tasks the installed plugins provide."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from verticals.cli.common import _handle, _registry, out

tasks_app = typer.Typer(help="Tasks the installed plugins provide.", no_args_is_help=True)


@tasks_app.command("list")
def tasks_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON with schemas.")] = False) -> None:
    """Tasks of the loaded plugins."""
    registry = _registry()
    if as_json:
        out.print_json(json.dumps([t.info() for t in registry.tasks.values()]))
        return
    table = Table("task", "plugin", "device", "models", "description")
    for name, task in sorted(registry.tasks.items()):
        table.add_row(name, registry.task_plugin[name].name, task.device, ", ".join(task.models.values()),
                      task.description)
    out.print(table)


@tasks_app.command("show")
def tasks_show(task: Annotated[str, typer.Argument(help="Task name.")]) -> None:
    """A task's input, output and parameter JSON schemas."""
    try:
        out.print_json(json.dumps(_registry().task(task).info()))
    except Exception as error:
        raise _handle(error) from None
