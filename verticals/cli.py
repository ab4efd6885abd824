"""The ``verticals`` command line (Typer + Rich).

Data goes to stdout; progress, tables and messages go to stderr, so
``verticals jobs results JOB > out.jsonl`` stays clean.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from verticals import __version__

app = typer.Typer(help="verticals: vertical AI tasks on transformer models, as batch jobs.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
jobs_app = typer.Typer(help="Submit, inspect, export and cancel batch jobs.", no_args_is_help=True)
plugins_app = typer.Typer(help="List, install and uninstall domain plugins.", no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks the installed plugins provide.", no_args_is_help=True)
models_app = typer.Typer(help="Model specs: where weights resolve from; pre-load them.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(plugins_app, name="plugins")
app.add_typer(tasks_app, name="tasks")
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")

err = Console(stderr=True)
out = Console()


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(Text("error: ", style="bold red") + Text(str(message)), soft_wrap=True)  # paths stay whole
    return typer.Exit(code)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"verticals {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v: INFO logs, -vv: DEBUG.")] = 0,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=err, show_path=False)], force=True)
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


# -- shared helpers ----------------------------------------------------------

def _registry():
    from verticals.plugins import get_registry

    return get_registry()


def _store():
    from verticals.core.store import open_store

    return open_store()


def _parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"bad {what} {pair!r}: expected NAME=VALUE")
        parsed[key.strip()] = value
    return parsed


def _coerce(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _is_flag(task_cls, key: str) -> bool:
    """Whether the task parameter ``key`` is a bool (``--NAME`` alone means true)."""
    import typing

    field = task_cls.Params.model_fields.get(key) if task_cls is not None else None
    if field is None:
        return task_cls is None  # without a task to ask, keep the old reading (a bare flag is true)
    annotation = field.annotation
    return annotation is bool or bool in typing.get_args(annotation)


def _extra_params(args: list[str], task_cls=None) -> dict[str, Any]:
    """``--mode surrogate --purge-x`` style extra options -> task params.

    With ``task_cls``, an option without a value (``--threshold`` then nothing, or another option) is
    an error unless the parameter is a bool.
    """
    params: dict[str, Any] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("--") or arg == "--":
            raise UserError(f"unexpected argument {arg!r}")
        name, sep, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        if sep:
            params[key] = _coerce(value)
        elif index + 1 < len(args) and not args[index + 1].startswith("--"):
            params[key] = _coerce(args[index + 1])
            index += 1
        elif _is_flag(task_cls, key):
            params[key] = True
        else:
            raise UserError(f"--{name} needs a value, e.g. --{name} VALUE or --{name}=VALUE")
        index += 1
    return params


def _secret_params(task_cls, params: dict[str, Any]) -> dict[str, Any]:
    """Secret task parameters (typed ``SecretStr``) from ``--NAME-file PATH`` or the environment variable the
    parameter declares (``json_schema_extra={"env": ...}``, e.g. ``VERTICALS_SURROGATE_KEY``)."""
    from verticals.core.store.secrets import secret_fields

    for name in secret_fields(task_cls.Params):
        option = "--" + name.replace("_", "-")
        extra = task_cls.Params.model_fields[name].json_schema_extra
        env = extra.get("env") if isinstance(extra, dict) else None
        file = params.pop(f"{name}_file", None)
        if file is not None:
            if name in params:
                raise UserError(f"give {option} or {option}-file, not both")
            try:
                value = Path(str(file)).expanduser().read_text(encoding="utf-8").strip("\r\n")
            except OSError as error:
                raise UserError(f"cannot read {option}-file {file}: {error.strerror}") from None
            if not value:
                raise UserError(f"{option}-file {file} is empty")
            params[name] = value
        elif name in params:
            params[name] = params[name] if isinstance(params[name], str) else json.dumps(params[name])
            err.print(f"[yellow]warning: {option} on the command line can be seen by other users of this machine "
                      f"(ps) and stays in your shell history; prefer {option}-file PATH"
                      + (f" or the environment variable {env}" if env else "") + "[/yellow]")
        elif env and os.environ.get(env):
            params[name] = os.environ[env]
    return params


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} items/s" if speed else "-- items/s", style="cyan")


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=False)


def _load_models(host, task_cls, params: dict[str, Any]) -> None:
    for role, name in task_cls().models_for(task_cls.Params.model_validate(params)).items():
        with err.status(f"Loading model {name} ({role})..."):
            model = host.get(name)
        source = model.provenance()
        err.print(f"[dim]model {name}: {source['source']} {source['reference']} on {model.device} "
                  f"({source['precision']})[/dim]")


def _execute(store, registry, job_id: str, quiet: bool = False) -> str:
    from verticals.core.models import ModelHost
    from verticals.core.store.secrets import unseal_params
    from verticals.workers import get_executor

    summary = store.summary(job_id)
    executor = get_executor(store, registry, ModelHost(registry.models))
    if getattr(executor, "name", "") == "local":
        _load_models(executor.host, registry.task(summary["task"]), unseal_params(store.job(job_id).params))
    if quiet:
        return executor.execute(job_id)
    with _progress() as progress:
        bar = progress.add_task(summary["task"], total=summary["total"], completed=summary["done"])
        status = executor.execute(job_id, on_progress=lambda n: progress.advance(bar, n))
    return status


def _field_map(task_cls, text_column: str | None, fields: list[str]) -> dict[str, str]:
    """Task field -> input column, from --field FIELD=COLUMN and --text-column COLUMN."""
    mapping = _parse_pairs(fields, "--field")
    if text_column:
        if not task_cls.text_field:
            raise UserError(f"{task_cls.name} has no single text field; use --field FIELD=COLUMN")
        mapping[task_cls.text_field] = text_column
    return mapping


def _read_input(task_cls, path: Path, fmt: str | None, text_column: str | None, fields: list[str],
                encoding: str | None = None):
    from verticals.core.io import map_fields, read_rows

    mapping = _field_map(task_cls, text_column, fields)
    return map_fields(read_rows(path, fmt, encoding), mapping, required=task_cls.text_field)


def _export(store, registry, job_id: str, output: Path, include_inputs: bool | None) -> int:
    from verticals.core.io import flat_columns, is_folder_output, write_rows
    from verticals.core.jobs import iter_results

    job = store.job(job_id)
    task_cls = registry.tasks.get(job.task)
    if include_inputs is None:
        include_inputs = not (task_cls and task_cls.sensitive)
    if is_folder_output(output):
        output.mkdir(parents=True, exist_ok=True)
        count = write_rows(output / "results.jsonl", iter_results(store, job_id, include_inputs))
        if task_cls:
            task = task_cls()
            for item in store.iter_items(job_id, status="succeeded"):
                if item.input is None:
                    continue
                files = task.files(task_cls.Input.model_validate(item.input),
                                   task_cls.Output.model_validate(item.output))
                for name, text in files.items():
                    target = (output / name).resolve()
                    if output.resolve() not in target.parents:
                        raise UserError(f"task wanted to write outside {output}: {name}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text, encoding="utf-8")
        summary = store.get_artifact(job_id, "summary.json")
        if summary:
            (output / "summary.json").write_bytes(summary.content)
        return count
    columns: list[str] = []
    types: dict[str, str] = {}
    if output.suffix.lower() in {".csv", ".parquet"}:  # a first pass: every row's columns, in schema order
        columns, types = flat_columns(iter_results(store, job_id, include_inputs))
    return write_rows(output, iter_results(store, job_id, include_inputs), columns, types=types)


def _preview(store, registry, job_id: str, limit: int) -> None:
    if limit <= 0:
        return
    job = store.job(job_id)
    task_cls = registry.tasks.get(job.task)
    show_text = task_cls is not None and task_cls.text_field and not task_cls.sensitive
    rows = list(store.iter_items(job_id, limit=limit))
    if not rows:
        return
    output_keys: list[str] = []
    for item in rows:
        for key, value in (item.output or {}).items():
            # an optional field left empty on every previewed row (e.g. entities not asked for) takes no column
            if (key not in output_keys and value is not None and not isinstance(value, dict | list)
                    and len(output_keys) < 4):
                output_keys.append(key)
    table = Table(title=f"{job.task}: first {len(rows)} of {job.total} results", title_justify="left")
    widths = {key: min(max(len(key), 9), 24) for key in output_keys}
    seq_width = len(str(rows[-1].seq))
    # output columns keep their width; the text column gets what is left of the terminal
    text_width = max(16, err.width - seq_width - sum(widths.values()) - 9 - 3 * (len(widths) + 3) - 1)
    table.add_column("#", justify="right", min_width=seq_width, no_wrap=True)
    if show_text:
        table.add_column(task_cls.text_field, overflow="ellipsis", no_wrap=True, max_width=text_width)
    for key, width in widths.items():
        table.add_column(key, no_wrap=True, overflow="ellipsis", min_width=width, max_width=24)
    table.add_column("status", no_wrap=True, min_width=9)
    for item in rows:
        cells = [str(item.seq)]
        if show_text:
            cells.append(str((item.input or {}).get(task_cls.text_field, "")))
        for key in output_keys:
            value = (item.output or {}).get(key)
            cells.append(f"{value:.3f}" if isinstance(value, float) else "" if value is None else str(value))
        style = {"succeeded": "green", "failed": "red"}.get(item.status, "yellow")
        cells.append(f"[{style}]{item.status}[/{style}]" if not item.error else f"[red]{item.error[:60]}[/red]")
        table.add_row(*cells)
    err.print(table)


def _print_summary(store, job_id: str) -> dict[str, Any]:
    summary = store.summary(job_id)
    counts = summary["counts"]
    rate = summary["done"] / summary["elapsed_s"] if summary["elapsed_s"] else None
    err.print(f"job [bold]{summary['id']}[/bold]: [bold]{summary['status']}[/bold] — "
              f"{counts.get('succeeded', 0)} succeeded, {counts.get('failed', 0)} failed"
              + (f", {counts.get('cancelled', 0)} cancelled" if counts.get("cancelled") else "")
              + (f" in {summary['elapsed_s']:.1f}s ({rate:,.1f} items/s)" if rate else ""))
    artifact = store.get_artifact(job_id, "summary.json")
    if artifact:
        err.print("[bold]summary[/bold]")
        err.print_json(artifact.content.decode())
    return summary


def _exit_code(status: str) -> int:
    return {"succeeded": 0, "partial": 0, "failed": 1, "cancelled": 130}.get(status, 0)


# -- run ----------------------------------------------------------------------

@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
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


def _handle(error: BaseException, job_id: str | None = None) -> typer.Exit:
    """An expected error as one ``error:`` line (exit 2; Ctrl-C: 130); anything else is a bug and raises."""
    from verticals.core.io import InputError
    from verticals.core.jobs import JobError
    from verticals.core.models import ModelUnavailable
    from verticals.core.store import DatabaseNotReady
    from verticals.plugins import PluginError

    if isinstance(error, typer.Exit):
        return error
    if isinstance(error, KeyboardInterrupt):
        if job_id is None:
            return _fail("interrupted before a job was stored: nothing was kept", 130)
        return _fail(f"interrupted: finished items are stored; continue with `verticals jobs resume {job_id}`", 130)
    if isinstance(error, UserError | InputError | JobError | ModelUnavailable | DatabaseNotReady | PluginError):
        return _fail(str(error))
    if isinstance(error, KeyError):
        return _fail(str(error.args[0]) if error.args else str(error))
    if type(error).__name__ in ("BrokerUnavailable", "ExecutorUnavailable"):  # their messages say what to do
        return _fail(str(error))
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return _fail(f"cannot access{where}: {error.strerror or error}")
    raise error


# -- jobs -----------------------------------------------------------------------

@jobs_app.command("submit", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def jobs_submit(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task name.")],
    input: Annotated[Path, typer.Argument(help="Input file: .csv, .jsonl, .parquet or .txt.")],
    text_column: Annotated[str | None, typer.Option(help="Column holding the task's text field.")] = None,
    field: Annotated[list[str], typer.Option("--field", help="Map FIELD=COLUMN (repeatable).")] = [],  # noqa: B006
    param: Annotated[list[str], typer.Option("--param", "-p", help="Task parameter NAME=VALUE.")] = [],  # noqa: B006
    chunk_size: Annotated[int | None, typer.Option(help="Items per chunk.")] = None,
    purge_inputs: Annotated[bool, typer.Option(help="Delete inputs once outputs are stored.")] = False,
    detach: Annotated[bool, typer.Option(
        help="Do not wait: with workers (VERTICALS_BROKER_URL) send the chunks and return; "
             "otherwise only store the job (run it later with `jobs resume`).")] = False,
    priority: Annotated[str, typer.Option(
        help="high, normal or low: the order in which workers take chunks (Celery executor).")] = "normal",
    format: Annotated[str | None, typer.Option(help="Input format when the extension does not tell.")] = None,
    encoding: Annotated[str | None, typer.Option(
        help="Text encoding of the input (default UTF-8), e.g. cp1252, latin-1, utf-16.")] = None,
) -> None:
    """Submit a job and print its id. It runs here (or on workers, waiting for them) unless --detach."""
    from verticals.core.jobs import submit_job

    job_id = None
    try:
        registry = _registry()
        task_cls = registry.task(task)
        params = {**_extra_params(list(ctx.args), task_cls),
                  **{k: _coerce(v) for k, v in _parse_pairs(param, "--param").items()}}
        params = _secret_params(task_cls, params)
        if priority not in ("high", "normal", "low"):
            raise UserError(f"unknown priority {priority!r}: use high, normal or low")
        store = _store()
        options = {"purge_inputs": purge_inputs, "field_map": _field_map(task_cls, text_column, field)}
        if priority != "normal":
            options["priority"] = priority
        job_id = submit_job(store, registry, task, _read_input(task_cls, input, format, text_column, field, encoding),
                            params, options, chunk_size, allow_empty=False)
        out.print(job_id)
        if detach:
            from verticals.config import broker_url

            if broker_url():
                from verticals.workers import get_executor

                sent = get_executor(store, registry).dispatch(job_id)
                err.print(f"{sent} chunk(s) sent to the workers; follow with `verticals jobs status {job_id[:8]}`")
        else:
            _execute(store, registry, job_id)
            _print_summary(store, job_id)
    except (Exception, KeyboardInterrupt) as error:
        raise _handle(error, job_id) from None


@jobs_app.command("status")
def jobs_status(job: Annotated[str, typer.Argument(help="Job id (a unique prefix is enough).")],
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Status, progress and counts of a job."""
    try:
        store = _store()
        summary = store.summary(store.job(job).id)
    except Exception as error:
        raise _handle(error) from None
    if as_json:
        out.print_json(json.dumps(summary))
        return
    table = Table(show_header=False, box=None)
    for key in ("id", "task", "status", "progress", "counts", "params", "created_at", "started_at", "finished_at"):
        value = summary[key]
        if key == "progress":
            value = f"{summary['done']}/{summary['total']} ({value:.0%})"
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    for key, value in _queue_rows(store, summary):
        table.add_row(key, value)
    out.print(table)


def _queue_rows(store, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Per-queue progress of a job run by workers: its queue and priority, chunks, the broker's backlog."""
    from verticals.config import broker_url

    celery = (summary.get("options") or {}).get("celery")
    if not celery and not broker_url():
        return []
    from verticals.workers.celery_executor import chunk_progress

    chunks = chunk_progress(store, summary["id"])
    queue = (celery or {}).get("queue") or "-"
    rows = [("queue", f"{queue} (priority {(summary.get('options') or {}).get('priority') or 'normal'})"),
            ("chunks", f"{chunks['done']} done, {chunks['running']} running, {chunks['waiting']} waiting "
                       f"of {chunks['chunks']}")]
    if broker_url() and queue != "-":
        try:
            from verticals.workers import get_executor

            backlog = get_executor(store, _registry()).backlog(queue)
        except Exception:
            backlog = None
        if backlog is not None:
            rows.append(("broker", f"{backlog} message(s) waiting in queue {queue} (all jobs)"))
    return rows


@jobs_app.command("list")
def jobs_list(
    limit: Annotated[int, typer.Option(help="How many (newest first).")] = 20,
    status: Annotated[list[str] | None, typer.Option(
        "--status", help="Only jobs with this status (repeatable): queued, running, succeeded, partial, failed, "
                         "cancelled.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only jobs of this task.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per job) on stdout.")] = False,
) -> None:
    """Recent jobs."""
    known = ("queued", "running", "succeeded", "partial", "failed", "cancelled")
    status = status or []
    try:
        for wanted in status:
            if wanted not in known:
                raise UserError(f"unknown status {wanted!r}: use {', '.join(known)}")
        store = _store()
        summaries, offset = [], 0
        while len(summaries) < limit:
            page = store.list_jobs(200, offset)
            for job in page:
                if task and job.task != task:
                    continue
                summary = store.summary(job.id)
                if status and summary["status"] not in status:
                    continue
                summaries.append(summary)
                if len(summaries) >= limit:
                    break
            if len(page) < 200:
                break
            offset += 200
    except Exception as error:
        raise _handle(error) from None
    if as_json:
        keys = ("id", "task", "status", "total", "done", "counts", "created_at", "started_at", "finished_at")
        sys.stdout.write(json.dumps([{key: summary[key] for key in keys} for summary in summaries]) + "\n")
        return
    table = Table("id", "task", "status", "progress", "created")
    for summary in summaries:
        table.add_row(summary["id"][:12], summary["task"], summary["status"], f"{summary['done']}/{summary['total']}",
                      summary["created_at"][:19])
    out.print(table)


@jobs_app.command("delete")
def jobs_delete(
    jobs: Annotated[list[str], typer.Argument(help="Job id(s) or unique prefixes.")],
    force: Annotated[bool, typer.Option("--force", help="Delete even a job that is queued or running (e.g. one "
                                                        "whose process died).")] = False,
) -> None:
    """Delete jobs with their items, results and artifacts."""
    from verticals.core.jobs import discard_job

    try:
        store = _store()
        for job in jobs:
            summary = store.summary(store.job(job).id)
            if summary["status"] in ("queued", "running") and not force:
                raise UserError(f"job {summary['id']} is {summary['status']}: cancel it first "
                                f"(`verticals jobs cancel {summary['id'][:8]}`), or pass --force")
            discard_job(store, summary["id"])
            err.print(f"deleted job {summary['id']} ({summary['task']}, {summary['status']}, "
                      f"{summary['total']} items)")
    except Exception as error:
        raise _handle(error) from None


@jobs_app.command("prune")
def jobs_prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age, e.g. 30d, 12h, 2w (by creation time).")],
    status: Annotated[list[str] | None, typer.Option(
        "--status", help="Only this status (repeatable; default: every finished job: succeeded, partial, failed, "
                         "cancelled).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete finished jobs older than an age (queued and running jobs are never pruned)."""
    from verticals.core.jobs import FINISHED, discard_job, jobs_to_prune, parse_age

    try:
        store = _store()
        chosen = jobs_to_prune(store, parse_age(older_than), status or FINISHED)
        for summary in chosen:
            if not dry_run:
                discard_job(store, summary["id"])
            out.print(f"{summary['id']}  {summary['task']}  {summary['status']}  {summary['created_at'][:19]}")
    except Exception as error:
        raise _handle(error) from None
    err.print(f"{'would delete' if dry_run else 'deleted'} {len(chosen)} job(s)")


@jobs_app.command("results")
def jobs_results(
    job: Annotated[str, typer.Argument(help="Job id or prefix.")],
    status: Annotated[str | None, typer.Option(help="Only items with this status (succeeded, failed...).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
    offset: Annotated[int, typer.Option(help="Start at this item number.")] = 0,
) -> None:
    """Print results as JSON lines (seq, status, output, error) on stdout."""
    try:
        store = _store()
        job_id = store.job(job).id
        for item in store.iter_items(job_id, status=status, offset=offset, limit=limit):
            sys.stdout.write(json.dumps({"seq": item.seq, "status": item.status, "output": item.output,
                                         "error": item.error, "provenance": item.provenance}) + "\n")
    except Exception as error:
        raise _handle(error) from None


@jobs_app.command("export")
def jobs_export(
    job: Annotated[str, typer.Argument(help="Job id or prefix.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".csv, .jsonl, .parquet or a folder.")],
    include_inputs: Annotated[bool | None, typer.Option("--include-inputs/--no-inputs")] = None,
) -> None:
    """Write a job's results to a file."""
    try:
        store, registry = _store(), _registry()
        count = _export(store, registry, store.job(job).id, output, include_inputs)
    except Exception as error:
        raise _handle(error) from None
    err.print(f"wrote {count} results to {output}")


def _submitted_job(store, job: str) -> str:
    """The id of ``job``, refused when its items were never all stored (nothing to resume or cancel)."""
    found = store.job(job)
    if not found.submitted:
        raise UserError(f"job {found.id} was never fully submitted (its items are still being stored by another "
                        "process, or its submission stopped before the end): there is nothing to run. Delete it "
                        f"with `verticals jobs delete {found.id[:8]} --force` and submit the input again")
    return found.id


@jobs_app.command("cancel")
def jobs_cancel(job: Annotated[str, typer.Argument(help="Job id or prefix.")]) -> None:
    """Cancel a job: running chunks stop at their next batch; items not started are cancelled."""
    from verticals.core.jobs import cancel_job, finish_if_done

    try:
        store, registry = _store(), _registry()
        job_id = _submitted_job(store, job)
        from verticals.config import broker_url

        if broker_url():
            from verticals.workers import get_executor

            summary = get_executor(store, registry).cancel(job_id)
            err.print(f"cancel requested for {job_id}: status {summary['status']} "
                      "(chunks not started are cancelled, running ones stop at their next batch)")
            return
        cancel_job(store, job_id)
        if store.summary(job_id)["status"] == "queued":
            store.cancel_pending(job_id)
            finish_if_done(store, registry, job_id)
        err.print(f"cancel requested for {job_id}: status {store.summary(job_id)['status']}")
    except Exception as error:
        raise _handle(error) from None


@jobs_app.command("resume")
def jobs_resume(job: Annotated[str, typer.Argument(help="Job id or prefix.")]) -> None:
    """Run the pending items of a job (after an interruption, or one submitted with --detach)."""
    job_id = None
    try:
        store, registry = _store(), _registry()
        job_id = _submitted_job(store, job)
        status = _execute(store, registry, job_id)
        _print_summary(store, job_id)
    except (Exception, KeyboardInterrupt) as error:
        raise _handle(error, job_id) from None
    raise typer.Exit(_exit_code(status))


@jobs_app.command("retry")
def jobs_retry(job: Annotated[str, typer.Argument(help="Job id or prefix.")],
               failed: Annotated[bool, typer.Option("--failed", help="Re-run the failed items.")] = True) -> None:
    """Re-run only the failed items of a job."""
    job_id = None
    try:
        store, registry = _store(), _registry()
        job_id = store.job(job).id
        count = store.reset_failed(job_id)
        err.print(f"{count} failed item(s) queued again")
        status = _execute(store, registry, job_id) if count else store.summary(job_id)["status"]
        _print_summary(store, job_id)
    except (Exception, KeyboardInterrupt) as error:
        raise _handle(error, job_id) from None
    raise typer.Exit(_exit_code(status))


# -- plugins ------------------------------------------------------------------------

@plugins_app.command("list")
def plugins_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Installed plugins: name, version, hooks, tasks, status (quarantined ones with their error)."""
    registry = _registry()
    plugins = [p.as_dict() for p in registry.plugins.values()]
    if as_json:
        out.print_json(json.dumps(plugins))
        return
    table = Table("plugin", "version", "status", "hooks", "tasks", "models")
    for plugin in plugins:
        style = "green" if plugin["status"] == "loaded" else "red" if plugin["status"] != "disabled" else "dim"
        table.add_row(plugin["name"], plugin["version"] or "", f"[{style}]{plugin['status']}[/{style}]",
                      ", ".join(plugin["hooks"]), ", ".join(plugin["tasks"]), ", ".join(plugin["models"]))
    out.print(table)
    for plugin in plugins:
        if plugin["error"] and plugin["status"] != "disabled":
            err.print(f"[red]{plugin['name']}[/red]: {plugin['error']}")


@plugins_app.command("install")
def plugins_install(
    target: Annotated[list[str], typer.Argument(help="Distribution name(s) or path(s), as pip takes them.")],
    editable: Annotated[bool, typer.Option("--editable", "-e", help="Install a local path in editable mode.")] = False,
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U", help="Upgrade if installed.")] = False,
) -> None:
    """Install plugins with pip into this environment, then run their post-install steps."""
    command = [sys.executable, "-m", "pip", "install"] + (["--upgrade"] if upgrade else [])
    for item in target:
        command += ["-e", item] if editable else [item]
    err.print(f"[dim]$ {' '.join(command)}[/dim]")
    if subprocess.call(command) != 0:
        raise _fail("pip install failed (see its output above)", 1)
    if subprocess.call([sys.executable, "-m", "verticals.cli", "plugins", "post-install"]) != 0:
        raise _fail("a plugin's post-install step failed (see above)", 1)
    subprocess.call([sys.executable, "-m", "verticals.cli", "plugins", "list"])


@plugins_app.command("post-install")
def plugins_post_install(name: Annotated[list[str] | None, typer.Argument(help="Only these plugins.")] = None) -> None:
    """Run installed plugins' post-install steps (entry points `verticals.post_install`); idempotent."""
    import importlib.metadata

    for entry_point in importlib.metadata.entry_points(group="verticals.post_install"):
        if name and entry_point.name not in name:
            continue
        err.print(f"post-install: {entry_point.name}")
        entry_point.load()()


@plugins_app.command("uninstall")
def plugins_uninstall(target: Annotated[list[str], typer.Argument(help="Distribution name(s).")]) -> None:
    """Uninstall plugins with pip."""
    command = [sys.executable, "-m", "pip", "uninstall", "-y", *target]
    err.print(f"[dim]$ {' '.join(command)}[/dim]")
    raise typer.Exit(subprocess.call(command))


# -- tasks / models / db --------------------------------------------------------------

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


@models_app.command("list")
def models_list() -> None:
    """Registered model specs and where each resolves now (nothing is loaded)."""
    from verticals.core.models import ModelHost, ModelUnavailable

    registry = _registry()
    host = ModelHost(registry.models)
    table = Table("model", "kind", "resolves to", "description")
    for name, spec in sorted(registry.models.items()):
        try:
            source = host.resolve(name)
            where = f"{source.kind}: {source.reference}" + (f" @ {source.revision}" if source.revision else "")
        except ModelUnavailable as error:
            where = f"[red]unavailable ({len(error.attempts)} sources tried)[/red]"
        table.add_row(name, spec.kind, where, spec.description)
    out.print(table)


@models_app.command("warm")
def models_warm(names: Annotated[list[str] | None, typer.Argument(help="Model names (default: all).")] = None) -> None:
    """Resolve and load models now (downloads them into the cache when a hub is reachable)."""
    from verticals.core.models import ModelHost

    registry = _registry()
    host = ModelHost(registry.models)
    failed = 0
    for name in names or sorted(registry.models):
        try:
            with err.status(f"loading {name}..."):
                model = host.get(name)
            err.print(f"[green]ok[/green] {name}: {model.source.kind} {model.source.reference} on {model.device} "
                      f"({model.precision.label()}, {host.load_seconds.get(name, 0):.1f}s)")
        except Exception as error:
            failed += 1
            err.print(f"[red]failed[/red] {name}: {error}")
    raise typer.Exit(1 if failed else 0)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations to the configured database (VERTICALS_DATABASE_URL or the SQLite file)."""
    from verticals.config import database_url
    from verticals.core.store.db import current_revision, make_engine, upgrade

    engine = make_engine(database_url())
    before = current_revision(engine)
    upgrade(engine, revision)
    err.print(f"database {engine.url.render_as_string(hide_password=True)}: {before or 'empty'} -> "
              f"{current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision and the code's head."""
    from verticals.config import database_url
    from verticals.core.store.db import current_revision, head_revision, make_engine

    engine = make_engine(database_url())
    out.print(f"database: {current_revision(engine) or 'empty'}  head: {head_revision()}")


def _register_core_commands() -> None:
    """Commands living next to what they drive: `worker` (verticals.workers.cli), `serve` (verticals.api.cli)."""
    import importlib

    for module_name in ("verticals.workers.cli", "verticals.api.cli", "verticals.eval_cli"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(app)


def main() -> None:
    """Entry point: load plugins, let them add commands, run."""
    _register_core_commands()
    try:
        registry = _registry()
        registry.hook.register_commands(cli=app)
    except Exception as error:
        err.print(f"[red]warning:[/red] plugins could not be loaded: {error}")
    app()


if __name__ == "__main__":
    main()
