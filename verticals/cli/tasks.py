"""``verticals tasks ...``: the tasks the installed plugins provide.

``tasks list`` and ``tasks show`` read at 80 columns, narrower and in pipes: their lists go through
:mod:`verticals.cli.listing` (a table while names stay whole and descriptions and types wrap between words, else
one block of ``name: value`` lines per task or field); ``--json`` gives the raw data (JSON Schemas) for programs.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Annotated, Any

import typer
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from rich.table import Table
from rich.text import Text

from verticals.cli.common import _handle, _registry, out
from verticals.cli.listing import print_rows, say

tasks_app = typer.Typer(help="Tasks the installed plugins provide.", no_args_is_help=True)

# below this width ``tasks list`` leaves out the plugin column (``verticals plugins list`` has it)
WIDE = 100


@tasks_app.command("list")
def tasks_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON with schemas.")] = False) -> None:
    """Tasks of the loaded plugins."""
    registry = _registry()
    if as_json:
        out.print_json(json.dumps([t.info() for t in registry.tasks.values()]))
        return
    wide = out.width >= WIDE
    headers = ["task", *(["plugin"] if wide else []), "device", "models", "description"]
    values = []
    for name, task in sorted(registry.tasks.items()):
        plugin = registry.task_plugin.get(name)
        values.append([Text(name, style="bold"), *([plugin.name if plugin else ""] if wide else []), task.device,
                       ", ".join(dict.fromkeys(task.models.values())), task.description])
    print_rows(out, headers, values, prose=("models", "description"))


@tasks_app.command("show")
def tasks_show(
    task: Annotated[str, typer.Argument(help="Task name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON (input, output and params JSON "
                                          "Schemas) instead of tables.")] = False,
) -> None:
    """A task's input fields, output fields and parameters (types, defaults, descriptions), models and device."""
    try:
        registry = _registry()
        task_cls = registry.task(task)
        if as_json:
            out.print_json(json.dumps(task_cls.info()))
            return
        _show(registry, task_cls)
    except Exception as error:
        raise _handle(error) from None


# -- tasks show ---------------------------------------------------------------------------------------------

def _show(registry: Any, task_cls: Any) -> None:
    plugin = registry.task_plugin.get(task_cls.name)
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")
    version = f" {plugin.version}" if plugin and plugin.version else ""
    head.add_row("task", Text(task_cls.name, style="bold")
                 + Text(f"  (plugin {plugin.name}{version})" if plugin else ""))
    if task_cls.description:
        head.add_row("", Text(task_cls.description))
    head.add_row("device", f"{task_cls.device} (worker queue {'code' if task_cls.executes_code else task_cls.device})")
    head.add_row("chunks", f"{task_cls.chunk_size} item{'s' * (task_cls.chunk_size != 1)} per chunk, "
                           f"{task_cls.batch_size} per batch")
    if task_cls.text_field:
        head.add_row("text field", f"{task_cls.text_field} (what --text-column maps to)")
    flags = [text for flag, text in (
        ("sensitive", "sensitive: inputs may hold PHI/PII (no inputs in exports by default, no item contents in logs)"),
        ("executes_code", "executes code from its inputs (in the jail; the API needs a key with code execution)"),
        ("operator_only", "operator only: the API refuses it; run it with the CLI on the server"),
    ) if getattr(task_cls, flag, False)]
    for text in flags:
        head.add_row("note", text)
    if task_cls.explains():
        head.add_row("explain", "yes: --explain stores why each result is what it is")
    if getattr(task_cls, "evaluator", None) is not None:
        head.add_row("evaluation", f"verticals eval {task_cls.name}"
                     + (" (a golden set ships with the plugin)" if getattr(task_cls, "golden", None) else ""))
    out.print(head)
    if task_cls.models:
        from verticals.core.models.host import ModelHost, ModelUnavailable

        host = ModelHost(registry.models)
        out.print()
        out.print(Text("models", style="bold"))
        for role, name in task_cls.models.items():
            spec = registry.models.get(name)
            say(out, f"  {role}: [bold]{name}[/bold] ({spec.kind if spec else 'not registered'})", indent="    ")
            if spec is None:
                continue
            try:  # where the weights come from now (the resolution order), not a hub id that is never used
                found = host.resolve(name)
                source = f"{found.kind}: {found.reference}"
            except ModelUnavailable as error:
                source = f"unavailable ({len(error.attempts)} sources tried: `verticals models list`)"
            say(out, f"    resolves to {source}", indent="      ")  # a path is never broken
    for title, model, as_option in (("input (one item)", task_cls.Input, False),
                                    ("output (one result)", task_cls.Output, False),
                                    ("parameters", task_cls.Params, True)):
        _print_model(title, model, as_option)


def _print_model(title: str, model: type[BaseModel], as_option: bool, seen: set[type] | None = None) -> None:
    """The fields of ``model`` (field, type, default, description) as a table, or as blocks where a table would
    fold a word (:func:`verticals.cli.listing.rows`), then the models it nests."""
    seen = set() if seen is None else seen
    seen.add(model)
    fields = model.model_fields
    out.print()
    if not fields:
        out.print(f"[bold]{title}[/bold]: none")
        return
    values = []
    nested: list[type[BaseModel]] = []
    for name, field in fields.items():
        label = "--" + name.replace("_", "-") if as_option else name
        values.append([label, _type_text(field), _default_text(field), field.description or ""])
        nested += [m for m in _models_in(field.annotation) if m not in seen and m not in nested]
    print_rows(out, ("option" if as_option else "field", "type", "default", "description"), values,
               prose=("type", "description"), title=title)
    for inner in nested:
        if inner not in seen:
            _print_model(f"{inner.__name__} (in {title.split(' (')[0]})", inner, False, seen)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _type_name(annotation: Any) -> str:
    """``list[str] | None``, ``mask | surrogate | hash`` (a Literal), ``Entity`` (a nested model)."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(str(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(arg) for arg in args)}]" if args else name
    if isinstance(annotation, type):
        if issubclass(annotation, SecretStr):
            return "secret"
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _type_text(field: FieldInfo) -> str:
    text = _type_name(field.annotation)
    limits = []
    for item in field.metadata:
        for attribute, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"),
                                ("min_length", "len≥"), ("max_length", "len≤")):
            value = getattr(item, attribute, None)
            if value is not None:
                limits.append(f"{sign}{value}")
    return f"{text} ({', '.join(limits)})" if limits else text


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
    else:
        value = field.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, SecretStr):
        return "(secret)"
    if value is None:
        return "-"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str) if not isinstance(value, str) else value
