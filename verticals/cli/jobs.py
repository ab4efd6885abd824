"""``verticals jobs ...``: submit, inspect, export, cancel, resume, retry, delete and prune batch jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from verticals.cli.common import (
    UserError,
    _coerce,
    _execute,
    _exit_code,
    _export,
    _extra_params,
    _field_map,
    _handle,
    _parse_pairs,
    _print_summary,
    _read_input,
    _registry,
    _secret_params,
    _store,
    err,
    out,
)

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
