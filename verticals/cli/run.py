"""``verticals run TASK INPUT``: submit, run with a progress bar, preview, summarise, export."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from verticals.cli.common import (
    _coerce,
    _execute,
    _exit_code,
    _export,
    _extra_params,
    _field_map,
    _handle,
    _parse_pairs,
    _preview,
    _print_summary,
    _read_input,
    _registry,
    _secret_params,
    _store,
    err,
)

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}  # extra --NAME VALUE: task parameters


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
    from verticals.core.jobs import submit_job

    job_id = None
    try:
        registry = _registry()
        task_cls = registry.task(task)
        params = {**_extra_params(list(ctx.args), task_cls),
                  **{k: _coerce(v) for k, v in _parse_pairs(param, "--param").items()}}
        params = _secret_params(task_cls, params)
        if output is not None:
            check_output(output)  # a bad -o is refused before the job runs, not after
        store = _store()
        started = time.perf_counter()
        rows = _read_input(task_cls, input, format, text_column, field, encoding)
        options = {"purge_inputs": purge_inputs, "field_map": _field_map(task_cls, text_column, field)}
        job_id = submit_job(store, registry, task, rows, params, options, chunk_size, allow_empty=False)
        stored_in = time.perf_counter() - started
        err.print(f"[dim]job {job_id}: {store.job(job_id).total} items stored ({stored_in:.1f}s)[/dim]")
        status = _execute(store, registry, job_id, quiet)
        if not quiet:
            _preview(store, registry, job_id, preview)
        summary = _print_summary(store, job_id)
        if output is not None:
            count = _export(store, registry, job_id, output, include_inputs)
            err.print(f"wrote {count} results to [bold]{output}[/bold]")
        else:
            err.print(f"export with: verticals jobs export {job_id} -o results.csv")
        if summary["counts"].get("failed"):
            err.print(f"[yellow]{summary['counts']['failed']} item(s) failed; see the error column, or "
                      f"`verticals jobs results {job_id[:8]} --status failed`[/yellow]")
    except (Exception, KeyboardInterrupt) as error:
        raise _handle(error, job_id) from None
    raise typer.Exit(_exit_code(status if isinstance(status, str) else summary["status"]))

