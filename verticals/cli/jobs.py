"""``verticals jobs ...``: submit, inspect, export, cancel, resume, retry, delete and prune batch jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from verticals.cli.common import (
    NARROW,
    UserError,
    _copyable,
    _exit_code,
    _handle,
    _JobBar,
    _models_used,
    _service,
    _submit_and_start,
    _task_params,
    _with_progress,
    err,
    out,
)
from verticals.cli.listing import print_rows
from verticals.cli.render import _print_summary

jobs_app = typer.Typer(help="Submit, inspect, export and cancel batch jobs.", no_args_is_help=True)


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
    explain: Annotated[bool, typer.Option(
        "--explain", help="Store each result's explanation (tasks that explain; extra model calls).")] = False,
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
    job_id = None
    try:
        if priority not in ("high", "normal", "low"):
            raise UserError(f"unknown priority {priority!r}: use high, normal or low")
        service = _service()
        task_cls = service.registry.task(task)
        params = _task_params(ctx.args, param, task_cls)
        options: dict[str, Any] = {"purge_inputs": purge_inputs}
        if explain:
            options["explain"] = True
        if priority != "normal":
            options["priority"] = priority

        def stored(job: str) -> None:
            nonlocal job_id
            job_id = job
            out.print(job)

        submitted = _submit_and_start(service, task_cls, input, format, text_column, field, encoding, params,
                                      options, chunk_size, run="detach" if detach else "wait", on_stored=stored)
        job_id = submitted.job_id
        if detach:
            if service.executor.remote:
                err.print(f"{submitted.chunks} chunk(s) sent to the workers; follow with "
                          f"`verticals jobs status {job_id[:8]}`")
        else:
            _print_summary(service.store, job_id)
    except (Exception, KeyboardInterrupt) as error:
        raise _handle(error, job_id) from None


@jobs_app.command("status")
def jobs_status(job: Annotated[str, typer.Argument(help="Job id (a unique prefix is enough).")],
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Status, progress and counts of a job."""
    try:
        service = _service()
        summary = service.summary(job)
    except Exception as error:
        raise _handle(error) from None
    if as_json:
        out.print_json(json.dumps(summary))
        return
    rows: list[tuple[str, str]] = []
    for key in ("id", "task", "status", "progress", "counts", "params", "created_at", "started_at", "finished_at"):
        value = summary[key]
        if key == "progress":
            value = f"{summary['done']}/{summary['total']} ({value:.0%})"
        rows.append((key, json.dumps(value) if isinstance(value, dict) else str(value)))
        if key == "progress" and summary.get("item_progress"):
            rows.append(("running", _running_line(summary["item_progress"])))
    rows += _queue_rows(service, summary)
    if out.width < NARROW:  # no room for a column of names: "name: value" lines, the id whole on its line
        for key, value in rows:
            out.print(Text.assemble((f"{key}:", "bold"), " ", value))
        return
    table = Table(show_header=False, box=None)
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


def _running_line(running: dict[str, Any]) -> str:
    """The running items' own progress (``RunContext.progress``): ``2 item(s), 40% done: note (at ...)``."""
    share = f", {running['done'] / running['items']:.0%} done" if running.get("items") else ""
    note = f": {running['note']}" if running.get("note") else ""
    at = f" (reported {running['updated_at']})" if running.get("updated_at") else ""
    return f"{running.get('items', 0)} item(s){share}{note}{at}"


def _queue_rows(service, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Per-queue progress of a job run by workers: its queue and priority, chunks, the broker's backlog."""
    celery = (summary.get("options") or {}).get("celery")
    info = service.queue_status(summary["id"])
    if not celery and "queue" not in info:
        return []
    queue = info.get("queue") or (celery or {}).get("queue") or "-"
    priority = info.get("priority") or (summary.get("options") or {}).get("priority") or "normal"
    rows = [("queue", f"{queue} (priority {priority})"),
            ("chunks", f"{info['done']} done, {info['running']} running, {info['waiting']} waiting "
                       f"of {info['chunks']}")]
    if info.get("broker_backlog") is not None:
        rows.append(("broker", f"{info['broker_backlog']} message(s) waiting in queue {queue} (all jobs)"))
    return rows


@jobs_app.command("list")
def jobs_list(
    limit: Annotated[int, typer.Option(help="How many (newest first).")] = 20,
    status: Annotated[list[str] | None, typer.Option(
        "--status", help="Only jobs with this status (repeatable): queued, running, interrupted, succeeded, partial, "
                         "failed, cancelled.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only jobs of this task.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per job) on stdout.")] = False,
) -> None:
    """Recent jobs."""
    known = ("queued", "running", "interrupted", "succeeded", "partial", "failed", "cancelled")
    status = status or []
    try:
        for wanted in status:
            if wanted not in known:
                raise UserError(f"unknown status {wanted!r}: use {', '.join(known)}")
        summaries = _service().list(limit, statuses=status, task=task)
    except Exception as error:
        raise _handle(error) from None
    if as_json:
        keys = ("id", "task", "status", "total", "done", "counts", "created_at", "started_at", "finished_at")
        sys.stdout.write(json.dumps([{key: summary[key] for key in keys} for summary in summaries]) + "\n")
        return
    if not summaries:
        err.print("no jobs match these filters" if status or task else
                  "no jobs yet: start one with `verticals run TASK INPUT`")
        return
    print_rows(out, ("id", "task", "status", "progress", "created"),
               [(summary["id"][:12], summary["task"], summary["status"], f"{summary['done']}/{summary['total']}",
                 summary["created_at"][:19].replace("T", " ")) for summary in summaries])


@jobs_app.command("delete")
def jobs_delete(
    jobs: Annotated[list[str], typer.Argument(help="Job id(s) or unique prefixes.")],
    force: Annotated[bool, typer.Option("--force", help="Delete even a job that is queued or running (e.g. one "
                                                        "whose process died).")] = False,
) -> None:
    """Delete jobs with their items, results and artifacts."""
    from verticals.core.jobs.service import JobConflict

    try:
        service = _service()
        for job in jobs:
            try:
                summary = service.delete(job, force=force)
            except JobConflict as error:
                found = service.job(job).id[:8]
                raise UserError(f"{error} (`verticals jobs cancel {found}`, or `verticals jobs delete {found} "
                                "--force`)") from None
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
    from verticals.core.jobs.engine import FINISHED, jobs_to_prune, parse_age

    try:
        service = _service()
        chosen = jobs_to_prune(service.store, parse_age(older_than), status or FINISHED)
        for summary in chosen:
            if not dry_run:
                service.delete(summary["id"])
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
    """Print results as JSON lines (seq, status, output, error, provenance) on stdout."""
    try:
        rows = _service().results(job, status=status, include_inputs=False, offset=offset, limit=limit,
                                  provenance=True)
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
    except Exception as error:
        raise _handle(error) from None


@jobs_app.command("export")
def jobs_export(
    job: Annotated[str, typer.Argument(help="Job id or prefix.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".csv, .jsonl, .parquet or a folder.")],
    include_inputs: Annotated[bool | None, typer.Option("--include-inputs/--no-inputs")] = None,
) -> None:
    """Write a job's results to a file."""
    from verticals.core.io import check_output

    try:
        check_output(output)  # the same rules as `verticals run -o` (a missing folder is not created on the way)
        count = _service().export(job, output, include_inputs)
    except Exception as error:
        raise _handle(error) from None
    _copyable(f"wrote {count} results to", str(output))


@jobs_app.command("cancel")
def jobs_cancel(job: Annotated[str, typer.Argument(help="Job id or prefix.")]) -> None:
    """Cancel a job: running chunks stop at their next batch; items not started are cancelled."""
    try:
        summary = _service().cancel(job)
    except Exception as error:
        raise _handle(error) from None
    err.print(f"cancel requested for {summary['id']}: status {summary['status']} "
              "(chunks not started are cancelled, running ones stop at their next batch)")


@jobs_app.command("resume")
def jobs_resume(job: Annotated[str, typer.Argument(help="Job id or prefix.")]) -> None:
    """Run the pending items of a job (after an interruption, or one submitted with --detach)."""
    from verticals.core.jobs.service import resumable

    job_id = None
    try:
        service = _service()
        job_id = service.job(job).id
        before = service.summary(job_id)
        if not resumable(before):  # JobService.resume's rule, in the CLI's words
            err.print(_nothing_to_resume(before))
            if before["counts"].get("failed"):
                _copyable(f"its {before['counts']['failed']} failed item(s) run again with:",
                          f"verticals jobs retry {job_id[:12]}")
            return
        status = _with_progress(service, job_id,
                                lambda on_progress: service.resume(job_id, on_progress=on_progress))
        _print_summary(service.store, job_id)
        _write_remembered_output(service, job_id)
    except (Exception, KeyboardInterrupt) as error:
        raise _handle(error, job_id) from None
    raise typer.Exit(_exit_code(status))


def _nothing_to_resume(summary: dict[str, Any]) -> str:
    """What ``jobs resume`` says of a finished job: nothing of it is pending; what would run its items again."""
    counts = summary["counts"]
    said = f"job {summary['id']} is {summary['status']}: nothing is pending, so there is nothing to resume"
    if counts.get("cancelled"):
        said += (f"; its {counts['cancelled']} cancelled item(s) are not run again (cancelling is final: submit "
                 "them again to run them)")
    return said


def _write_remembered_output(service, job_id: str) -> None:
    """The ``-o`` file of the ``verticals run`` that started the job (stopped before it could write it)."""
    output = (service.job(job_id).options or {}).get("output")
    if not isinstance(output, dict) or not output.get("path"):
        return
    count = service.export(job_id, Path(output["path"]), output.get("include_inputs"))
    _copyable(f"wrote {count} results to", str(output["path"]))


def _retried(summary: dict[str, Any], count: int) -> str:
    """What ``jobs retry`` did: the failed items queued again, and what it leaves (cancelled items)."""
    said = f"{count} failed item(s) queued again" if count else f"job {summary['id'][:12]} has no failed item to retry"
    cancelled = summary["counts"].get("cancelled")
    if cancelled:
        said += (f"; its {cancelled} cancelled item(s) are not retried (cancelling is final: submit them again "
                 "to run them)")
    return said


@jobs_app.command("retry")
def jobs_retry(job: Annotated[str, typer.Argument(help="Job id or prefix.")],
               failed: Annotated[bool, typer.Option("--failed", help="Re-run the failed items.")] = True) -> None:
    """Re-run only the failed items of a finished job."""
    job_id = None
    try:
        service = _service()
        job_id = service.job(job).id
        with _JobBar(service) as bar:
            def requeued(count: int) -> None:
                err.print(_retried(service.summary(job_id), count))
                if count:
                    bar.show(job_id)

            # a broker that is down: refused before the failed items are put back (JobService.retry)
            count = service.retry(job_id, run="wait", on_requeued=requeued, on_progress=bar.advance)
        if not count:  # nothing queued: a no-op that said so, exit 0 (as `jobs resume` with nothing pending)
            return
        _models_used(service)
        status = service.summary(job_id)["status"]
        _print_summary(service.store, job_id)
    except (Exception, KeyboardInterrupt) as error:
        raise _handle(error, job_id) from None
    raise typer.Exit(_exit_code(status))
