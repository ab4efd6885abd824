"""``verticals run TASK INPUT``: submit, run with a progress bar, preview, summarise, export."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from verticals.cli.common import (
    _copyable,
    _exit_code,
    _handle,
    _joined,
    _service,
    _submit_and_start,
    _task_params,
    err,
)
from verticals.cli.render import _preview, _print_summary

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}  # extra --NAME VALUE: task parameters


def _option_names(args: list[str]) -> list[str]:
    """The parameter names of extra ``--NAME [VALUE]`` / ``--NAME=VALUE`` options (``time_budget`` style)."""
    return [arg[2:].partition("=")[0].replace("-", "_") for arg in args if arg.startswith("--") and arg != "--"]


def _check_param_names(task_cls, names: list[str], own: list[str] | None = None) -> None:
    """An option the task does not take is refused in the CLI's words, before anything else is read
    (``--time-budgt``: did you mean ``--time-budget``?). Which names a task takes is one rule,
    :func:`verticals.core.jobs.engine.unknown_params`, by which the job service refuses them in words without CLI
    options (the API's and the SDK's); this only words it for the command line. ``own``: the command's own
    options, suggested too (``--text-colum``: did you mean ``--text-column``?)."""
    from verticals.cli.common import UserError
    from verticals.core.jobs.engine import unknown_params
    from verticals.core.store.secrets import secret_fields
    from verticals.registry import close_matches

    fields = task_cls.Params.model_fields
    files = {f"{name}_file" for name in secret_fields(task_cls.Params)}  # --surrogate-key-file PATH: the CLI's own
    keys = {name: name.strip().replace("-", "_") for name in names}
    unknown = set(unknown_params(task_cls, [key for key in keys.values() if key not in files]))  # the service's rule
    for name in names:
        if keys[name] in unknown:
            option = "--" + name.strip().replace("_", "-")[:100]
            options = ["--" + field.replace("_", "-") for field in fields]
            matches = close_matches(option, [*options, *(own or [])])
            hint = f": did you mean {' or '.join(matches)}?" if matches else ""
            takes = (f"(its options: {', '.join(options)}; `verticals tasks show {task_cls.name}` describes them)"
                     if options else "(it takes none)")
            raise UserError(f"unknown option {option} for {task_cls.name}{hint} {takes}")


def run(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task name, e.g. finance.sentiment (see `verticals tasks list`).")],
    input: Annotated[Path, typer.Argument(help="Input file: .csv, .jsonl, .parquet or .txt.")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                      help="Write results here (.csv/.jsonl/.parquet, or a folder).")] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the task's text field.")] = None,
    field: Annotated[list[str], typer.Option("--field", help="Map FIELD=COLUMN (repeatable).")] = [],  # noqa: B006
    param: Annotated[list[str], typer.Option("--param", "-p", help="Task parameter NAME=VALUE (repeatable).")] = [],  # noqa: B006
    chunk_size: Annotated[int | None, typer.Option(help="Items per chunk (default: the task's).")] = None,
    purge_inputs: Annotated[bool, typer.Option(help="Delete each item's input once its output is stored.")] = False,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Store each result's explanation (evidence, one-line summary) and export it; tasks "
                          "that explain (`verticals tasks show TASK`). Costs extra model calls.")] = False,
    include_inputs: Annotated[bool | None, typer.Option(
        "--include-inputs/--no-inputs", help="Export input columns (default: yes, no for sensitive tasks).")] = None,
    format: Annotated[str | None, typer.Option(help="Input format when the extension does not tell.")] = None,
    encoding: Annotated[str | None, typer.Option(
        help="Text encoding of the input (default UTF-8), e.g. cp1252, latin-1, utf-16.")] = None,
    preview: Annotated[int, typer.Option(help="Result rows to print (0: none).")] = 10,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or preview.")] = False,
) -> None:
    """Run TASK over INPUT as one batch job: store, run with a progress bar, export, summarise.

    Extra options --NAME VALUE are task parameters (e.g. --mode surrogate).
    """
    from verticals.core.io import check_output

    job_id = None
    try:
        service = _service()
        task_cls = service.registry.task(task)
        _check_param_names(task_cls, [*_option_names(ctx.args), *(pair.partition("=")[0] for pair in param)],
                           [o for p in ctx.command.params for o in p.opts if o.startswith("--")])
        params = _task_params(ctx.args, param, task_cls)
        if output is not None:
            check_output(output)  # a bad -o is refused before the job runs, not after
        options: dict[str, Any] = {"purge_inputs": purge_inputs}
        if explain:
            options["explain"] = True
        if output is not None:  # a run stopped half-way: `jobs resume` writes it when the job is done
            options["output"] = {"path": str(output.resolve()), "include_inputs": include_inputs}
        started = time.perf_counter()

        def stored(job: str) -> None:
            nonlocal job_id
            job_id = job
            stored_in = time.perf_counter() - started
            err.print(_joined([f"[dim]job {job}:[/dim]",
                               f"[dim]{service.job(job).total} items stored ({stored_in:.1f}s)[/dim]"]))

        status = _submit_and_start(service, task_cls, input, format, text_column, field, encoding, params, options,
                                   chunk_size, run="wait", on_stored=stored, quiet=quiet).status
        assert job_id is not None
        if not quiet:
            _preview(service.store, service.registry, job_id, preview)
        summary = _print_summary(service.store, job_id)
        if output is not None:
            count = service.export(job_id, output, include_inputs)
            _copyable(f"wrote {count} results to", str(output))
        else:
            _copyable("export with:", f"verticals jobs export {job_id[:12]} -o results.csv")  # a prefix: one line
        if summary["counts"].get("failed"):
            err.print(Text.from_markup(_joined([f"{summary['counts']['failed']} item(s) failed;", "their errors:",
                                                "the status column above,", "or"]), style="yellow"))
            err.print(Text(f"  verticals jobs results {job_id[:12]} --status failed", style="yellow"), soft_wrap=True)
    except (Exception, KeyboardInterrupt) as error:
        raise _handle(error, job_id) from None
    raise typer.Exit(_exit_code(status))
